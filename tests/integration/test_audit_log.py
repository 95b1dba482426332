"""End to end on a real Kafka-protocol broker: audit records on the audit topic, two
checkpointers (two gateway instances), then the auditor's commands on the exported bundle."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable

import pytest

from broker.audit import Checkpoint, open_checkpoint
from broker.clock import FixedClock
from broker.cosign import accord_bytes
from broker.crypto import SigningKey
from broker.gateway._checkpoints import same_log
from broker.ledger import (
    CheckpointerStats,
    SavedPosition,
    checkpoint_origin,
    is_checkpoint_record,
    parse_checkpoint_record,
    run_checkpointer,
)
from broker.pipeline.records import parse_audit_record
from broker.schema.labels import Classification
from broker.transport.kafka import (
    TopicSpec,
    create_topics,
    open_consumer,
    open_producer,
    open_reader,
)
from broker.transport.testing import KafkaUnderTest
from tests.unit.replay.audit_log import NOW, AuditLog, decide, labels

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SENSITIVE = labels(classification=Classification.OFFICIAL_SENSITIVE)
PASSPHRASE = b"correct horse battery staple"
UNDER_V1, UNDER_V2 = 6, 4
HANG_GUARD_S = 120


def broker(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``broker`` command line as an auditor would."""
    return subprocess.run(
        [sys.executable, "-m", "broker", *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
        env={**os.environ, "BROKER_TEST_PASSPHRASE": PASSPHRASE.decode()},
    )


async def _run_gateways(kafka: KafkaUnderTest, log: AuditLog, topic: str) -> list[bytes]:
    """Two checkpointers (one per gateway key) follow the topic while records are produced;
    returns the records in the order produced."""
    await create_topics(kafka.bootstrap, [TopicSpec(topic, partitions=1)])
    v1, v2 = log.accords
    keys = list(log.fixture.gateways.values())
    records = [decide(v1, SENSITIVE, key=keys[i % 2], at=NOW) for i in range(UNDER_V1)]
    records += [decide(v2, SENSITIVE, key=keys[i % 2], at=NOW) for i in range(UNDER_V2)]
    stop = asyncio.Event()
    done = [asyncio.Event(), asyncio.Event()]

    def watcher(which: int) -> Callable[[Checkpoint], None]:
        def seen(checkpoint: Checkpoint) -> None:
            if checkpoint.size == len(records):
                done[which].set()

        return seen

    async def gateway(which: int) -> None:
        settings = kafka.consumer_settings(kafka.group(f"checkpointer-{which}"))
        async with (
            open_consumer(settings, [topic]) as source,
            open_producer(kafka.producer_settings()) as sink,
        ):
            await run_checkpointer(
                source=source,
                sink=sink,
                topic=topic,
                key=keys[which],
                origin=checkpoint_origin(topic),
                registry=lambda: log.fixture.registry,
                clock=FixedClock(NOW),
                stop=stop,
                every_records=4,
                on_checkpoint=watcher(which),
            )

    tasks = [asyncio.create_task(gateway(i)) for i in (0, 1)]
    async with open_producer(kafka.producer_settings()) as producer:
        for value in records:
            await producer.send(topic, value)
    await asyncio.gather(*(event.wait() for event in done))
    stop.set()
    await asyncio.gather(*tasks)
    return records


def test_the_exported_log_verifies_replays_proves_and_catches_one_changed_byte(
    kafka: KafkaUnderTest, tmp_path: pathlib.Path
) -> None:
    """Export -> verify passes (also reading the topic with ``--config``); a copy with one byte
    changed fails verify and report with the record's index; replay agrees across the accord
    change; an inclusion proof verifies."""
    log = AuditLog.create(gateways=2)
    topic = kafka.topic("audit")
    records = asyncio.run(_run_gateways(kafka, log, topic))
    registry = tmp_path / "registry.json"
    registry.write_bytes(log.fixture.data)
    accords = tmp_path / "accords"
    accords.mkdir()
    for accord in log.accords:
        (accords / f"gb-rs-v{accord.version}.yaml").write_bytes(accord_bytes(accord))
    bundle = tmp_path / "audit.bundle"

    exported = broker(
        "audit", "export", "--bootstrap", kafka.bootstrap, "--topic", topic,
        "--registry", str(registry), "--accords", str(accords), "-o", str(bundle),
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert "exported" in exported.stdout

    verified = broker("audit", "verify", str(bundle))
    assert verified.returncode == 0, verified.stderr
    assert f"{len(records)} records signed" in verified.stdout

    # the binary form of the same log verifies the same (docs/AUDIT.md, "Bundle formats")
    binary = tmp_path / "audit.bin"
    exported = broker(
        "audit", "export", "--bootstrap", kafka.bootstrap, "--topic", topic, "--format", "binary",
        "--registry", str(registry), "--accords", str(accords), "-o", str(binary),
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert binary.read_bytes()[:6] == b"\x89XBAB\x02"
    verified = broker("audit", "verify", str(binary))
    assert verified.returncode == 0, verified.stderr
    assert f"{len(records)} records signed" in verified.stdout

    config = tmp_path / "auditor.yaml"
    config.write_text(json.dumps(_plaintext_config(kafka.bootstrap)), encoding="utf-8")
    live = broker("audit", "verify", "--topic", topic, "--config", str(config),
                  "--registry", str(registry))  # fmt: skip
    assert live.returncode == 0, live.stderr
    assert f"{len(records)} records signed" in live.stdout

    lines = bundle.read_bytes().split(b"\n")
    leaf = 4
    target = next(i for i, line in enumerate(lines) if parse_line_value(line) == records[leaf])
    damaged = bytearray(lines[target])
    damaged[len(damaged) // 2] ^= 0x01
    copy = tmp_path / "copy.bundle"
    copy.write_bytes(b"\n".join([*lines[:target], bytes(damaged), *lines[target + 1 :]]))
    refused = broker("audit", "verify", str(copy))
    assert refused.returncode == 11
    assert f"modified at index {leaf}" in refused.stderr
    page = tmp_path / "report.html"
    reported = broker("audit", "report", str(copy), "--html", str(page))
    assert reported.returncode == 11, "a report on a log that does not verify fails..."
    assert "DOES NOT VERIFY" in page.read_text(encoding="utf-8"), "...after writing the report"

    replayed = broker("audit", "replay", str(bundle))
    assert replayed.returncode == 0, replayed.stderr
    assert f"gb-rs v1: {UNDER_V1}, gb-rs v2: {UNDER_V2}" in replayed.stdout

    message_id = parse_audit_record(records[7]).message_id
    assert message_id is not None
    proof = tmp_path / "proof.json"
    proved = broker("audit", "prove", str(bundle), "--message-id", message_id, "-o", str(proof))
    assert proved.returncode == 0, proved.stderr
    checked = broker("audit", "verify-proof", str(proof), "--registry", str(registry))
    assert checked.returncode == 0, checked.stderr
    assert f"message {message_id} is record 7" in checked.stdout


def _plaintext_config(bootstrap: str) -> dict[str, object]:
    """The gateway's configuration; its ``kafka`` section (all ``--config`` reads) is PLAINTEXT."""
    return {
        "kafka": {"bootstrap": bootstrap, "security": {"protocol": "PLAINTEXT"}},
        "registry": {"path": "registry.json", "trusted_roots": "roots.json"},
        "keys": {"signing_key": "gateway.key", "passphrase": {"env": "UNUSED_PASSPHRASE"}},
        "store": {"path": "dedup.sqlite"},
    }


def parse_line_value(line: bytes) -> bytes | None:
    """The record bytes a bundle line holds, or None for the header and blank lines."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    value = document.get("value") if isinstance(document, dict) else None
    return value.encode("utf-8") if isinstance(value, str) else None


async def test_a_restarted_checkpointer_resumes_from_its_saved_position(
    kafka: KafkaUnderTest, tmp_path: pathlib.Path
) -> None:
    """On a real broker: a checkpointer saves its position; restarted from it, reading from
    that offset with an assigned partition, it judges only the newer records and signs the
    same root a checkpointer reading the whole log signs."""
    log, topic = AuditLog.create(gateways=2), kafka.topic("audit-resume")
    await create_topics(kafka.bootstrap, [TopicSpec(topic, partitions=1)])
    first_key, second_key = log.fixture.gateways.values()
    position_file = tmp_path / "audit-checkpointer.json"

    async def checkpoint(key: SigningKey, size: int, *, resume: bool) -> CheckpointerStats:
        saved = (
            SavedPosition.load(position_file, origin=checkpoint_origin(topic), registry=registry)
            if resume
            else None
        )
        stop, roots = asyncio.Event(), []

        def seen(checkpoint: Checkpoint) -> None:
            roots.append(checkpoint)
            if checkpoint.size == size:
                stop.set()

        settings = kafka.consumer_settings(kafka.group("resume"))
        reader = (
            open_consumer(settings, [topic])
            if saved is None
            else open_reader(settings, topic, offset=saved.through)
        )
        async with reader as source, open_producer(kafka.producer_settings()) as sink:
            return await asyncio.wait_for(
                run_checkpointer(
                    source=source,
                    sink=sink,
                    topic=topic,
                    key=key,
                    origin=checkpoint_origin(topic),
                    registry=lambda: registry,
                    clock=FixedClock(NOW),
                    stop=stop,
                    every_records=100,
                    every_seconds=0.5,
                    on_checkpoint=seen,
                    resume=saved,
                    on_position=lambda p: p.save(position_file),
                ),
                timeout=HANG_GUARD_S,
            )

    registry = log.fixture.registry
    async with open_producer(kafka.producer_settings()) as producer:
        for _ in range(5):
            await producer.send(topic, decide(log.accords[0], SENSITIVE, key=first_key, at=NOW))
        first = await checkpoint(first_key, 5, resume=False)
        for _ in range(3):
            await producer.send(topic, decide(log.accords[0], SENSITIVE, key=first_key, at=NOW))
    resumed = await checkpoint(first_key, 8, resume=True)
    assert (first.leaves, resumed.leaves) == (5, 3)
    whole = await checkpoint(second_key, 8, resume=False)
    assert whole.leaves == 8
    async with open_consumer(kafka.consumer_settings(kafka.group("read")), [topic]) as c:
        values = [r.value or b"" for r in await c.read(8 + 3, timeout_s=60)]
    keys = [first_key.public_key(), second_key.public_key()]
    roots = {
        open_checkpoint(parse_checkpoint_record(v).note, log_keys=keys).root
        for v in values
        if is_checkpoint_record(v) and open_checkpoint(
            parse_checkpoint_record(v).note, log_keys=keys
        ).size == 8
    }  # fmt: skip
    assert len(roots) == 1, "the resumed and the whole-log checkpointer agree"
    assert (resumed.forks, whole.forks) == (0, 0)

    # a gateway resumes only on the log the position was saved from: a topic recreated under
    # the same name, whatever its later records copy, is another log
    saved = SavedPosition.load(position_file, origin=checkpoint_origin(topic), registry=registry)
    assert saved is not None
    settings = kafka.consumer_settings(kafka.group("same"))
    assert await same_log(settings, topic, saved)
    other = kafka.topic("audit-recreated")
    await create_topics(kafka.bootstrap, [TopicSpec(other, partitions=1)])
    async with open_producer(kafka.producer_settings()) as producer:
        await producer.send(other, decide(log.accords[0], SENSITIVE, key=first_key, at=NOW))
    assert not await same_log(settings, other, saved)
