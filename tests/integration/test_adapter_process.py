"""``broker adapter run`` as an operator runs it: a process on real files and a real broker.

It starts, reports ready, takes a submission written by ``broker send`` from the spool,
produces the sealed envelope to outbox.GB with the routing header, and on SIGTERM drains and
exits 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import pathlib
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from broker import cosign, envelope, keys
from broker.config import outbox_topic, topic_plan
from broker.demo.federation import redated
from broker.ids import PartnerCode
from broker.keys.testing import build_registry
from broker.policy import parse_accord
from broker.schema import (
    TLP,
    DataCategory,
    HandlingCode,
    Purpose,
    message_bytes,
    parse_message,
    redact,
)
from broker.transport.kafka import Record, TopicSpec, create_topics, open_consumer
from broker.transport.testing import KafkaUnderTest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = pathlib.Path(__file__).resolve().parents[2]
GB, RS = PartnerCode("GB"), PartnerCode("RS")
PASSPHRASE = "correct horse battery staple adapter"


def _write_files(tmp: pathlib.Path, kafka: KafkaUnderTest, prefix: str) -> pathlib.Path:
    now = dt.datetime.now(dt.UTC)
    world = build_registry(now=now)
    (tmp / "registry.json").write_bytes(world.data)
    (tmp / "trusted.json").write_bytes(world.data)
    (tmp / "accords").mkdir()
    # the shipped rules in force around now: the daemon runs on the wall clock
    shipped = (ROOT / "policies" / "gb-rs.yaml").read_text(encoding="utf-8")
    text = redated(shipped, now=now).encode()
    (tmp / "accords" / "gb-rs.yaml").write_bytes(text)
    accord = parse_accord(text, source="gb-rs.yaml")
    signatures = None
    for partner in (GB, RS):
        signatures = cosign.sign_accord(
            accord, signatures, key=world.partners[partner].policy, partner=partner
        )
    assert signatures is not None
    cosign.write_signature_file(tmp / "accords" / "gb-rs.yaml.sigs.json", signatures)
    mine = world.partners[GB]
    keys.save_private_key(tmp / "sign.key", mine.signing, passphrase=PASSPHRASE.encode())
    keys.save_private_key(tmp / "kem.key", mine.decryption, passphrase=PASSPHRASE.encode())
    config = {
        "partner": "GB",
        "kafka": {
            "bootstrap": kafka.bootstrap,
            "topic_prefix": prefix,
            "session_timeout_ms": kafka.session_timeout_ms,
            "engine": kafka.kafka_access.engine,
        },
        "registry": {"path": "registry.json", "trusted_roots": "trusted.json"},
        "accords": {"dir": "accords"},
        "keys": {
            "signing_key": "sign.key",
            "decryption_keys": ["kem.key"],
            "passphrase": {"env": "XB_TEST_PASSPHRASE"},
        },
        "store": {"path": "inbox.sqlite"},
        "spool": {"dir": "spool"},
    }
    path = tmp / "adapter.yaml"
    path.write_text(json.dumps(config))
    return path


def _lines(process: subprocess.Popen[str]) -> Iterator[dict[str, object]]:
    """The daemon's JSON log lines as they come; ends when the process closes stderr."""
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("{"):
            yield json.loads(line)


def _until(lines: Iterator[dict[str, object]], event: str) -> dict[str, object]:
    for entry in lines:
        if entry.get("event") == event:
            return entry
    pytest.fail(f"the adapter exited before logging {event}")


def test_the_adapter_process_sends_from_its_spool_and_drains(
    kafka: KafkaUnderTest, tmp_path: pathlib.Path
) -> None:
    """Ready, one submission sent with the routing header, SIGTERM, exit 0, journal empty."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    config = _write_files(tmp_path, kafka, prefix)
    # a real cluster creates no topic on first use: provision them, as a deployment does
    plan = topic_plan(
        ["GB", "RS"], prefix=prefix, partitions=1, replication_factor=1, min_insync_replicas=1
    )
    specs = [TopicSpec(t.name, t.partitions, t.replication_factor, dict(t.configs)) for t in plan]
    asyncio.run(create_topics(kafka.bootstrap, specs, security=kafka.security))
    env = {**os.environ, "XB_TEST_PASSPHRASE": PASSPHRASE}
    process = subprocess.Popen(
        [sys.executable, "-m", "broker", "adapter", "run", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = _lines(process)
        _until(lines, "adapter_ready")
        original = parse_message((ROOT / "schemas/examples/network.report.json").read_bytes())
        message = redact(
            original.model_copy(
                update={
                    "handling": HandlingCode.H2,
                    "handling_conditions": (),
                    "purposes": frozenset({Purpose.PEOPLE_SMUGGLING}),
                    "tlp": TLP.AMBER,
                    "expires": None,
                }
            ),
            [DataCategory.SOURCE_IDENTIFYING, DataCategory.FINANCIAL],
        )
        (tmp_path / "msg.json").write_bytes(message_bytes(message))
        sent = subprocess.run(
            [
                sys.executable,
                "-m",
                "broker",
                "send",
                "--config",
                str(config),
                "--to",
                "RS",
                str(tmp_path / "msg.json"),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        logged = _until(lines, "envelopes_sent")
        process.send_signal(signal.SIGTERM)
        _until(lines, "adapter_stopped")
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    # handled: out of incoming/, and its plaintext copy gone once Kafka acknowledged the view
    assert not list((tmp_path / "spool" / "incoming").iterdir())
    assert not list((tmp_path / "spool" / "sent").glob("*.json"))
    record = asyncio.run(_first_record(kafka, outbox_topic(prefix, GB)))
    assert dict(record.headers) == {"xb-recipient": b"RS"}
    assert record.value is not None
    header = envelope.parse(record.value).header
    assert logged["message_ids"] == [header.message_id]
    assert record.key == header.message_id.encode()


async def _first_record(kafka: KafkaUnderTest, topic: str) -> Record:
    async with open_consumer(kafka.consumer_settings(kafka.group("outbox")), [topic]) as reader:
        (record,) = await reader.read(1, timeout_s=30)
    return record
