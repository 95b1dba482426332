"""TLS and mTLS to Kafka, end to end, through a TLS-terminating proxy.

The embedded broker cannot speak TLS itself, so each test puts a small asyncio proxy in front
of a dedicated embedded broker: the proxy terminates TLS (requiring a client certificate from
our throwaway CA) and forwards plaintext to the broker on loopback, and the broker advertises
the proxy's address so clients reconnect through it. Certificates are made with the openssl
command. SASL/SCRAM cannot be exercised here: the embedded broker's credential store keeps
nothing, so every SCRAM login fails; SASL is specified by its option mapping in
``tests/unit/transport/test_security.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker.adapter import serve_config
from broker.config import GatewayConfig, kafka_client_security, load_config, quarantine_topic
from broker.errors import TransportError, UsageError
from broker.gateway import serve_gateway
from broker.gateway.quarantine import release
from broker.keys.testing import build_registry
from broker.pipeline import ReasonCode, SourcePosition, sign_quarantine_record
from broker.pipeline.records import format_time
from broker.runtime import StopSignal
from broker.transport.embedded import HOST, EmbeddedBroker, free_port
from broker.transport.kafka import (
    ConsumerSettings,
    ProducerSettings,
    TopicSpec,
    create_topics,
    open_consumer,
    open_producer,
)
from broker.transport.security import PLAINTEXT, ClientSecurity
from broker.transport.testing import KafkaUnderTest

pytestmark = pytest.mark.kafka

BROKER = Path(sys.executable).with_name("broker")
# guards against a hung command, never a measurement
HANG_GUARD_S = 60


@dataclasses.dataclass(frozen=True)
class Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate; plus a rogue CA."""

    root: Path

    def __getitem__(self, name: str) -> Path:
        return self.root / name


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)  # noqa: S607


def _make_ca(name: str, *, cwd: Path) -> None:
    _openssl(
        *["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
        *["-days", "2", "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.crt"],
        *["-addext", "basicConstraints=critical,CA:TRUE"],
        *["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        cwd=cwd,
    )


def _make_leaf(name: str, *, ca: str, extensions: str, cwd: Path) -> None:
    (cwd / f"{name}.ext").write_text(
        f"basicConstraints=CA:FALSE\n{extensions}\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(
        *["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
        *["-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr"],
        cwd=cwd,
    )
    _openssl(
        *["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key"],
        *["-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext"],
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Throwaway certificates: never valid for more than two days, never leave the temp dir."""
    root = tmp_path_factory.mktemp("tls-pki")
    _make_ca("exchange-ca", cwd=root)
    _make_ca("rogue-ca", cwd=root)
    server_ext = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"
    _make_leaf("kafka-proxy", ca="exchange-ca", extensions=server_ext, cwd=root)
    _make_leaf("agency-gb", ca="exchange-ca", extensions="extendedKeyUsage=clientAuth", cwd=root)
    return Pki(root)


class TlsProxy:
    """Terminates TLS (client certificate required) and forwards bytes to a plaintext port."""

    def __init__(self, pki: Pki, upstream_port: int) -> None:
        self.context = ssl.create_default_context(
            ssl.Purpose.CLIENT_AUTH, cafile=pki["exchange-ca.crt"]
        )
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_cert_chain(pki["kafka-proxy.crt"], pki["kafka-proxy.key"])
        self.upstream_port = upstream_port
        #: the subject of every client certificate a connection was accepted with
        self.peers: list[Any] = []
        self._handlers: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[int]:
        server = await asyncio.start_server(self._handle, HOST, 0, ssl=self.context)
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            self.peers.append(writer.get_extra_info("peercert")["subject"])
            up_reader, upstream = await asyncio.open_connection(HOST, self.upstream_port)
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        finally:
            self._handlers.discard(task)
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()
                    with contextlib.suppress(OSError, asyncio.CancelledError):
                        await stream.wait_closed()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read(65_536):
            sink.write(data)
            await sink.drain()
    # one side hung up: end the other, so neither connection outlives its peer
    sink.close()


@dataclasses.dataclass(frozen=True)
class Exchange:
    bootstrap: str
    proxy: TlsProxy


@pytest.fixture
async def exchange(pki: Pki) -> AsyncIterator[Exchange]:
    """A dedicated embedded broker that advertises the TLS proxy in front of it, whichever
    broker the session's other tests use (the real cluster's own TLS is tested in
    tests/authz)."""
    upstream_port = free_port()
    proxy = TlsProxy(pki, upstream_port)
    async with proxy.serving() as proxy_port:
        with EmbeddedBroker(port=upstream_port, advertised_port=proxy_port):
            yield Exchange(bootstrap=f"{HOST}:{proxy_port}", proxy=proxy)


def _mtls(pki: Pki) -> ClientSecurity:
    return ClientSecurity.tls(
        ca_file=pki["exchange-ca.crt"],
        cert_file=pki["agency-gb.crt"],
        key_file=pki["agency-gb.key"],
    )


async def test_an_mtls_round_trip_goes_through_the_proxy(
    exchange: Exchange, pki: Pki, kafka: KafkaUnderTest
) -> None:
    """Topic creation, an acks=all produce and a group read all work over mTLS, and the proxy
    saw our client certificate on every connection."""
    security, topic = _mtls(pki), kafka.topic("tls")
    await create_topics(exchange.bootstrap, [TopicSpec(topic)], security=security)
    producer = ProducerSettings(bootstrap=exchange.bootstrap, client_id="gb", security=security)
    async with open_producer(producer) as sink:
        delivery = await sink.send(topic, b"over tls", key=b"k")
    assert delivery.offset == 0
    consumer = ConsumerSettings(
        bootstrap=exchange.bootstrap,
        group_id=kafka.group("tls"),
        client_id="gb",
        session_timeout_ms=kafka.session_timeout_ms,
        security=security,
    )
    async with open_consumer(consumer, [topic]) as source:
        records = await source.read(1, timeout_s=30)
        await source.commit(records)
    assert [(r.key, r.value) for r in records] == [(b"k", b"over tls")]
    assert exchange.proxy.peers
    assert all(peer == ((("commonName", "agency-gb"),),) for peer in exchange.proxy.peers)


def _no_client_certificate(pki: Pki) -> ClientSecurity:
    return ClientSecurity.tls(ca_file=pki["exchange-ca.crt"])


def _trusting_the_wrong_ca(pki: Pki) -> ClientSecurity:
    return ClientSecurity.tls(
        ca_file=pki["rogue-ca.crt"], cert_file=pki["agency-gb.crt"], key_file=pki["agency-gb.key"]
    )


def _plaintext(pki: Pki) -> ClientSecurity:
    return PLAINTEXT


@pytest.mark.parametrize(
    "client",
    [_no_client_certificate, _trusting_the_wrong_ca, _plaintext],
    ids=["no-client-certificate", "wrong-ca", "plaintext"],
)
async def test_clients_the_proxy_or_the_client_cannot_authenticate_are_refused(
    exchange: Exchange, pki: Pki, client: Any
) -> None:
    """Without a certificate, trusting another CA, or without TLS: no connection, our error."""
    settings = ProducerSettings(
        bootstrap=exchange.bootstrap,
        client_id="intruder",
        request_timeout_ms=10_000,
        security=client(pki),
    )
    with pytest.raises(TransportError, match="connecting a producer"):
        async with open_producer(settings):
            pass
    assert exchange.proxy.peers == []


def _write_config(
    tmp_path: Path, pki: Pki, bootstrap: str, session_timeout_ms: int, *, role: str = "gateway"
) -> Path:
    # Only the kafka section is used by these commands; the other paths need not exist.
    config: dict[str, Any] = {
        "kafka": {
            "bootstrap": bootstrap,
            "session_timeout_ms": session_timeout_ms,
            "engine": "embedded",
            "security": {
                "protocol": "SSL",
                "ca_file": str(pki["exchange-ca.crt"]),
                "cert_file": str(pki["agency-gb.crt"]),
                "key_file": str(pki["agency-gb.key"]),
            },
        },
        "registry": {"path": "registry.json", "trusted_roots": "roots.json"},
        "keys": {"signing_key": "daemon.key", "passphrase": {"env": "UNUSED_PASSPHRASE"}},
        "store": {"path": "state.sqlite"},
    }
    if role == "adapter":
        config["partner"] = "GB"
        config["keys"]["decryption_keys"] = ["kem.key"]
    path = tmp_path / f"{role}.yaml"
    path.write_text(json.dumps(config))
    return path


async def test_the_cli_and_quarantine_release_use_the_configured_tls(
    exchange: Exchange, pki: Pki, kafka: KafkaUnderTest, tmp_path: Path
) -> None:
    """From a configuration file with ``security: SSL`` to the wire: ``broker kafka topics
    create --config`` and a quarantine release (read, then re-produce) both connect with mTLS."""
    path = _write_config(tmp_path, pki, exchange.bootstrap, kafka.session_timeout_ms)
    command = await asyncio.create_subprocess_exec(
        *[str(BROKER), "kafka", "topics", "create", "--config", str(path), "--partners", "GB"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(command.communicate(), timeout=HANG_GUARD_S)
    assert command.returncode == 0, err.decode()
    assert "xb.quarantine" in out.decode()

    # a registry with a gateway key, and a record that gateway quarantined, whose original
    # is still on its outbox: release reads it back and re-produces it
    now = dt.datetime.now(dt.UTC)
    world = build_registry(now=now, partners=("GB",), roots=1, threshold=1)
    (tmp_path / "registry.json").write_bytes(world.data)
    (tmp_path / "roots.json").write_bytes(world.data)
    config = load_config(path, GatewayConfig, env={})
    original = b"original envelope bytes"
    settings = ProducerSettings(
        bootstrap=exchange.bootstrap, client_id="test", security=kafka_client_security(config.kafka)
    )
    async with open_producer(settings) as producer:
        source = await producer.send("xb.outbox.GB", original)
        fields = {
            "id": f"xb.outbox.GB/{source.partition}/{source.offset}",
            "reason_code": ReasonCode.MALFORMED,
            "reason": "not an envelope",
            "quarantined_at": format_time(now),
            "source": SourcePosition(
                topic="xb.outbox.GB", partition=source.partition, offset=source.offset
            ),
            "message_id": None,
            "sender": None,
            "recipient": None,
            "decision": None,
        }
        gateway_key = next(iter(world.gateways.values()))
        record = sign_quarantine_record(fields, original, gateway_key=gateway_key)
        await producer.send(quarantine_topic(config.kafka.topic_prefix), record.to_bytes())

    delivery = await release(config, record.id)

    assert delivery.topic == "xb.outbox.GB"
    assert (delivery.partition, delivery.offset) != (source.partition, source.offset)
    assert all(peer == ((("commonName", "agency-gb"),),) for peer in exchange.proxy.peers)


@pytest.mark.parametrize(
    ("role", "serve"),
    [("gateway", serve_gateway), ("adapter", serve_config)],
    ids=["gateway", "adapter"],
)
async def test_both_daemons_refuse_to_start_with_a_missing_ca_naming_it(
    tmp_path: Path, pki: Pki, role: str, serve: Any
) -> None:
    """The Kafka certificates are loaded before anything else opens: one line, the path."""
    path = _write_config(tmp_path, pki, "kafka.example:9093", 3_000, role=role)
    missing = tmp_path / "no-such-ca.pem"
    path.write_text(path.read_text().replace(str(pki["exchange-ca.crt"]), str(missing)))
    config = load_config(path, env={})
    with pytest.raises(UsageError, match="cannot read the CA bundle") as caught:
        await serve(config, StopSignal())
    assert str(missing) in caught.value.diagnostics()
