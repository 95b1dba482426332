"""The system under attack: a federation of real daemon processes on the embedded broker.

Each test module gets its own federation (GB, RS and XK with the gateway; XK is the hostile
partner, holding its own keys and nothing else), provisioned by ``broker.demo.federation`` as
``broker demo`` does. The attacker's tools are :mod:`.rawkafka` and :mod:`.wire`; what the
exchange made of an attack is read the way an operator or a partner reads it: the quarantine
topic (records parsed and their signatures checked from docs/GATEWAY.md), ``broker adapter
rejected list --json``, the delivery directories, ``/healthz`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.demo.federation import Federation, provision
from broker.transport.testing import KafkaUnderTest

from . import wire
from .rawkafka import RawKafka

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
#: a bound on a hang, never a performance threshold
PATIENCE_S = 60.0
DAEMONS = ("gateway", "GB", "RS", "XK")
ACCORDS = [ROOT / "policies" / "gb-rs.yaml", ROOT / "policies" / "gb-xk.yaml"]
#: the one unit XK lists in the registry (KEYS.md, "units"); GB and RS list none
XK_UNITS = [("Policia e Kosovës", "Hetimet Kufitare")]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def eventually(probe: Callable[[], T | None], *, what: str) -> T:
    """Poll ``probe`` until it returns something non-empty (the daemons are other processes)."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {PATIENCE_S:.0f} s for {what}")
        time.sleep(0.2)


@dataclasses.dataclass
class Exchange:
    """The running federation, seen from outside."""

    federation: Federation

    @property
    def bootstrap(self) -> str:
        return self.federation.bootstrap

    def topic(self, stem: str) -> str:
        """``outbox.XK`` -> ``<prefix>outbox.XK``."""
        return f"{self.federation.prefix}{stem}"

    @property
    def registry(self) -> wire.Registry:
        return wire.Registry.read(self.federation.registry_path)

    def signing_key(self, name: str) -> ed25519.Ed25519PrivateKey:
        """A daemon's own signing key, as the partner holding it would load it."""
        root = self.federation.root
        return wire.load_signing_key(
            root / "keys" / name / "signing.pem", self.federation.passphrase_file(name)
        )

    def accord_digest(self, accord: str) -> str:
        """The digest every party co-signed (``<accord>.yaml.sigs.json``, ACCORDS.md)."""
        document = json.loads(
            (self.federation.accords_dir / f"{accord}.yaml.sigs.json").read_text()
        )
        return str(document["digest"])

    def seal(self, sender: str, recipient: str, accord: str, **kwargs: Any) -> wire.Envelope:
        """An envelope from ``sender`` (whose key the attacker holds only if it is its own)."""
        message = kwargs.pop("message", None) or wire.envelope_message(case_id=case_id())
        labels = kwargs.pop("labels", None) or wire.labels_of(message)
        return wire.seal(
            message=message,
            labels=labels,
            sender=sender,
            sender_key=kwargs.pop("sender_key", None) or self.signing_key(sender),
            recipient=recipient,
            registry=self.registry,
            accord_id=accord,
            accord_digest=self.accord_digest(accord),
            **kwargs,
        )

    # -- what the exchange made of it ---------------------------------------------------------

    def quarantine(self) -> list[dict[str, Any]]:
        """Every record of the quarantine topic that parses as JSON, with ``_verified``: whether
        the registered gateway key signed it (checked from GATEWAY.md alone)."""

        async def read() -> list[bytes]:
            async with RawKafka(self.bootstrap) as kafka:
                found = await kafka.read(self.topic("quarantine"))
            return [r.value or b"" for records in found.values() for r in records]

        gateway = self.registry.gateway_public()
        records = []
        for value in run(read()):
            try:
                record = json.loads(value)
            except ValueError:
                continue
            if isinstance(record, dict):
                record["_verified"] = _gateway_signed(record, gateway)
                records.append(record)
        return records

    def quarantined(self, position: str) -> dict[str, Any]:
        """The verified quarantine record of what was read at ``position``, once it is there."""

        def probe() -> dict[str, Any] | None:
            mine = [r for r in self.quarantine() if r.get("id") == position and r["_verified"]]
            return mine[0] if mine else None

        return eventually(probe, what=f"the quarantine record of {position}")

    def rejected(self, partner: str, *positions: str) -> dict[str, dict[str, Any]]:
        """The rows of ``partner``'s rejected table for what it read at ``positions``."""

        def probe() -> dict[str, dict[str, Any]] | None:
            rows = json.loads(self.cli("adapter", "rejected", "list", "--json", config=partner))
            found = {f"{r['topic']}/{r['partition']}/{r['offset']}": dict(r) for r in rows}
            return found if set(positions) <= set(found) else None

        return eventually(probe, what=f"{partner}'s refusal of {', '.join(positions)}")

    def envelopes(self, stem: str, case: str) -> list[bytes]:
        """The envelopes on topic ``stem`` whose clear header names case ``case``."""

        async def read() -> list[bytes]:
            async with RawKafka(self.bootstrap) as kafka:
                found = await kafka.read(self.topic(stem))
            return [r.value for records in found.values() for r in records if r.value]

        mine = []
        for value in run(read()):
            envelope = value[value.index(wire.MAGIC) :] if wire.MAGIC in value else b""
            if envelope and wire.parse_envelope(envelope).header_fields.get("case_id") == case:
                mine.append(value)
        return mine

    def cli(self, *args: str, config: str | None = None, expect: int = 0) -> str:
        """Run ``broker ARGS [--config <config>]``: its stdout, or with a failure expected,
        its stdout and stderr (the exit status is checked)."""
        where = [] if config is None else ["--config", str(self.federation.config_path(config))]
        done = subprocess.run(
            [sys.executable, "-m", "broker", *args, *where],
            capture_output=True,
            text=True,
            timeout=PATIENCE_S,
            check=False,
            cwd=self.federation.root,
        )
        assert done.returncode == expect, done.stderr
        return done.stdout if expect == 0 else done.stdout + done.stderr

    def delivered(self, recipient: str, case: str) -> list[dict[str, Any]]:
        """The messages of case ``case`` in ``recipient``'s delivery directory."""
        found = []
        for path in self.federation.delivery_dir(recipient).glob("*.json"):
            document = json.loads(path.read_bytes())
            if document["message"].get("case_id") == case:
                found.append(document)
        return found

    def send(self, sender: str, recipient: str) -> str:
        """Submit a legitimate report through ``sender``'s spool; its case id."""
        case = case_id()
        submission = {"message": wire.envelope_message(case_id=case), "to": [recipient]}
        # ADAPTER.md: write it beside incoming/, then rename it in, so it is never seen half-made
        spool = self.federation.spool_dir(sender)
        (spool / f".{case}.json").write_text(json.dumps(submission))
        (spool / f".{case}.json").rename(spool / "incoming" / f"{case}.json")
        return case

    def flows(self, sender: str = "GB", recipient: str = "RS") -> None:
        """Legitimate traffic still gets through: a fresh report is delivered, once."""
        case = self.send(sender, recipient)
        eventually(lambda: self.delivered(recipient, case), what=f"{sender} -> {recipient} flow")

    def healthy(self, name: str) -> bool:
        """``/healthz`` answers 200 and the process is alive."""
        if not self.federation.is_running(name):
            return False
        url = f"http://127.0.0.1:{self.federation.port(name)}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def all_healthy(self) -> None:
        for name in DAEMONS:
            assert self.healthy(name), f"{name} is not healthy: {self.federation.log_path(name)}"


def case_id() -> str:
    return f"XB-ADV-{uuid.uuid4().hex[:10].upper()}"


def _gateway_signed(record: dict[str, Any], gateway: ed25519.Ed25519PublicKey) -> bool:
    """GATEWAY.md: the signature covers ``domain | u32 len | canonical JSON without it``."""
    signature = record.get("signature")
    if not isinstance(signature, str):
        return False
    unsigned = wire.canonical({k: v for k, v in record.items() if k != "signature"})
    try:
        gateway.verify(base64.b64decode(signature), wire.QUARANTINE_DOMAIN + wire.lp(unsigned))
    except (InvalidSignature, ValueError):
        return False
    return True


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def exchange(kafka: KafkaUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """A federation of its own for the module, every daemon running and healthy."""
    federation = provision(
        tmp_path_factory.mktemp("federation"),
        bootstrap=kafka.bootstrap,
        partners=("GB", "RS", "XK"),
        accords=ACCORDS,
        prefix=f"a{uuid.uuid4().hex[:10]}.",
        units={"XK": XK_UNITS},
    )
    run(federation.create_topics(partitions=1))
    with federation:
        federation.start_many(DAEMONS)
        yield Exchange(federation)
