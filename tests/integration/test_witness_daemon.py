"""The witness daemon against a real Kafka-protocol broker: it cosigns what a real checkpointer
signs, refuses a checkpoint that forks the log (and says so), keeps its view across restarts,
and will not start from a state file that does not verify.

The witness runs in-process (``serve_witness``) on real files: a signed registry, an encrypted
witness key, a state directory; the checkpointer is the real one, on the same topic.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import pathlib
import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial

import pytest

from broker import errors, keys
from broker.audit import Checkpoint, MerkleLog, leaf_hash, read_checkpoint, sign_checkpoint
from broker.clock import SystemClock
from broker.config import WitnessConfig, audit_topic, load_config, witness_topic
from broker.keys.testing import RegistryFixture, build_registry
from broker.ledger import (
    checkpoint_origin,
    encode_checkpoint_record,
    registered_cosigners,
    run_checkpointer,
)
from broker.runtime import Health, Metrics, StopSignal
from broker.transport.kafka import TopicSpec, create_topics, open_consumer, open_producer
from broker.transport.testing import KafkaUnderTest
from broker.witness import serve_witness
from tests.unit.replay.audit_log import accord_v1, decide, labels

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PASSPHRASE = "correct horse battery staple witness"
#: a bound on a hang, not a performance threshold
WAIT_S = 90


class Federation:
    """Just enough of one: a registry, an audit and a witness topic, a witness config."""

    def __init__(self, kafka: KafkaUnderTest, tmp: pathlib.Path) -> None:
        self.kafka, self.tmp = kafka, tmp
        self.prefix = f"w{uuid.uuid4().hex[:10]}."
        self.fixture: RegistryFixture = build_registry(
            now=dt.datetime.now(dt.UTC), partners=("GB", "RS")
        )
        self.audit, self.witnessed = audit_topic(self.prefix), witness_topic(self.prefix)
        self.gateway_key = next(iter(self.fixture.gateways.values()))

    def config(self) -> WitnessConfig:
        (self.tmp / "registry.json").write_bytes(self.fixture.data)
        (self.tmp / "trusted.json").write_bytes(self.fixture.data)
        witness_key = next(iter(self.fixture.witnesses.values()))
        key_file = self.tmp / "witness.key"
        if not key_file.exists():
            keys.save_private_key(key_file, witness_key, passphrase=PASSPHRASE.encode())
        document = {
            "kafka": {
                "bootstrap": self.kafka.bootstrap,
                "topic_prefix": self.prefix,
                "session_timeout_ms": self.kafka.session_timeout_ms,
            },
            "registry": {"path": "registry.json", "trusted_roots": "trusted.json"},
            "keys": {"signing_key": "witness.key", "passphrase": {"env": "XB_TEST_PASSPHRASE"}},
            "witness": {"state_dir": "state"},
        }
        (self.tmp / "witness.yaml").write_text(json.dumps(document))
        return load_config(self.tmp / "witness.yaml", WitnessConfig, env={})

    def records(self, count: int) -> list[bytes]:
        now = dt.datetime.now(dt.UTC)
        return [decide(accord_v1(), labels(), key=self.gateway_key, at=now) for _ in range(count)]

    async def append(self, values: list[bytes]) -> None:
        async with open_producer(self.kafka.producer_settings()) as producer:
            for value in values:
                await producer.send(self.audit, value)

    async def checkpoint_through(self, size: int) -> None:
        """Run the real checkpointer until it has signed ``size`` leaves."""
        reached, stop = asyncio.Event(), asyncio.Event()

        def seen(checkpoint: Checkpoint) -> None:
            if checkpoint.size >= size:
                reached.set()

        settings = self.kafka.consumer_settings(self.kafka.group("checkpointer"))
        async with (
            open_consumer(settings, [self.audit]) as source,
            open_producer(self.kafka.producer_settings()) as sink,
        ):
            task = asyncio.create_task(
                run_checkpointer(
                    source=source,
                    sink=sink,
                    topic=self.audit,
                    key=self.gateway_key,
                    origin=checkpoint_origin(self.audit),
                    registry=lambda: self.fixture.registry,
                    clock=SystemClock(),
                    stop=stop,
                    every_records=4,
                    every_seconds=1.0,
                    on_checkpoint=seen,
                )
            )
            await asyncio.wait_for(reached.wait(), WAIT_S)
            stop.set()
            await task

    async def cosigned(self, want: Callable[[Checkpoint], bool]) -> bytes:
        """The first cosigned note on the witness topic whose checkpoint ``want`` accepts."""
        settings = self.kafka.consumer_settings(self.kafka.group("reader"))
        async with open_consumer(settings, [self.witnessed]) as reader:
            async with asyncio.timeout(WAIT_S):
                while True:
                    for record in await reader.fetch(timeout_ms=500):
                        note = record.value or b""
                        if want(read_checkpoint(note)[0]):
                            return note


@pytest.fixture
async def federation(
    kafka: KafkaUnderTest, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> Federation:
    monkeypatch.setenv("XB_TEST_PASSPHRASE", PASSPHRASE)
    made = Federation(kafka, tmp_path)
    await create_topics(kafka.bootstrap, [TopicSpec(made.audit), TopicSpec(made.witnessed)])
    return made


@pytest.fixture
async def witness(federation: Federation) -> AsyncIterator[Metrics]:
    """A running witness daemon; its metrics."""
    metrics, stop = Metrics(), StopSignal()
    task = asyncio.create_task(
        serve_witness(federation.config(), stop, metrics=metrics, health=Health())
    )
    yield metrics
    stop.set("test done")
    await asyncio.wait_for(task, WAIT_S)


def _of_size(size: int, checkpoint: Checkpoint) -> bool:
    return checkpoint.size == size


def _refused(metrics: Metrics, reason: str) -> float:
    return metrics.counter(
        "xb_witness_refused_total",
        "Checkpoint records not cosigned: unregistered, or inconsistent with what was seen",
        ("reason",),
    ).value(reason=reason)


async def test_the_witness_cosigns_the_log_and_refuses_a_fork(
    federation: Federation, witness: Metrics
) -> None:
    """Checkpoints of one history are cosigned, under the registered name, newest first; a
    checkpoint a registered gateway key signed over another history is refused and counted,
    and the honest log goes on being cosigned after it."""
    history = federation.records(8)
    await federation.append(history)
    await federation.checkpoint_through(8)
    note = await federation.cosigned(lambda c: c.size == 8)
    cosigners = registered_cosigners(note, federation.fixture.registry)
    assert [c.name for c in cosigners] == ["witness-1"]

    forged = federation.records(8)  # the same size, other records: a second history
    fork = MerkleLog()
    fork.extend(leaf_hash(v) for v in forged)
    note_of_fork = sign_checkpoint(
        Checkpoint(checkpoint_origin(federation.audit), 8, fork.root(), dt.datetime.now(dt.UTC)),
        key=federation.gateway_key,
    )
    record = encode_checkpoint_record(
        note_of_fork, first=0, leaves=[leaf_hash(v) for v in forged], refused=[], through=0
    )
    await federation.append([record])
    await federation.append(federation.records(4))
    await federation.checkpoint_through(12)
    grown = await federation.cosigned(lambda c: c.size == 12)
    assert registered_cosigners(grown, federation.fixture.registry)
    assert _refused(witness, "inconsistent") == 1


async def test_a_restarted_witness_keeps_its_view_and_refuses_an_edited_state(
    federation: Federation,
) -> None:
    """The state file carries the view across a restart (the next cosignature proves growth
    from it); an edited state file stops the daemon with AuditError."""
    await federation.append(federation.records(4))
    await federation.checkpoint_through(4)
    for size in (4, 8):
        stop = StopSignal()
        task = asyncio.create_task(serve_witness(federation.config(), stop, health=Health()))
        await federation.cosigned(partial(_of_size, size))
        stop.set("restart")
        await asyncio.wait_for(task, WAIT_S)
        state = json.loads(next((federation.tmp / "state").glob("*.json")).read_text())
        assert read_checkpoint(state["note"].encode())[0].size == size
        assert state["published"] is True
        await federation.append(federation.records(4))
        await federation.checkpoint_through(size + 4)

    path = next((federation.tmp / "state").glob("*.json"))
    state = json.loads(path.read_text())
    state["edge"][0] = base64.b64encode(bytes(32)).decode()  # a tree it never saw
    path.write_text(json.dumps(state))
    with pytest.raises(errors.AuditError, match="does not verify"):
        await serve_witness(federation.config(), StopSignal(), health=Health())
