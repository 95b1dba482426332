"""The checkpointer signs the audit log on its own topic, and reading stops at the log's end."""

from __future__ import annotations

import asyncio

import pytest

from broker import errors
from broker.audit import Checkpoint, leaf_hash, root_hash, verify_log_signature
from broker.clock import FixedClock
from broker.crypto import SigningKey, Suite
from broker.ledger import (
    CheckpointerStats,
    encode_checkpoint_record,
    is_checkpoint_record,
    parse_checkpoint_record,
    read_log,
    run_checkpointer,
)
from tests.unit.replay.audit_log import NOW, AuditLog, MemoryTopic, decide, labels

ORIGIN = "broker/xb.audit"


def _records(log: AuditLog, count: int) -> list[bytes]:
    return [decide(log.accords[0], labels(), key=log.gateway_key, at=NOW) for _ in range(count)]


async def _checkpoint_until(
    topic: MemoryTopic, key: SigningKey, *, size: int, every: int = 4
) -> CheckpointerStats:
    """Run a checkpointer until it has signed ``size`` leaves, then stop it."""
    stop, reached = asyncio.Event(), asyncio.Event()

    def seen(checkpoint: Checkpoint) -> None:
        if checkpoint.size >= size:
            reached.set()

    task = asyncio.create_task(
        run_checkpointer(
            source=topic.reader(),
            sink=topic,
            topic=topic.name,
            key=key,
            origin=ORIGIN,
            clock=FixedClock(NOW),
            stop=stop,
            every_records=every,
            on_checkpoint=seen,
        )
    )
    await reached.wait()
    stop.set()
    return await task


def _checkpoints(topic: MemoryTopic) -> list[tuple[int, bytes]]:
    return [(i, v) for i, v in enumerate(topic.values) if is_checkpoint_record(v)]


async def test_checkpoints_every_n_records_cover_the_log_exactly() -> None:
    """Once ``every_records`` new leaves have arrived a signed checkpoint is appended whose
    root is the tree head of exactly the audit records before it and which lists their leaf
    hashes; stopping signs what is left."""
    log, topic = AuditLog.create(), MemoryTopic()
    records = _records(log, 10)
    stop, signed = asyncio.Event(), asyncio.Queue[Checkpoint]()
    task = asyncio.create_task(
        run_checkpointer(
            source=topic.reader(),
            sink=topic,
            topic=topic.name,
            key=log.gateway_key,
            origin=ORIGIN,
            clock=FixedClock(NOW),
            stop=stop,
            every_records=4,
            on_checkpoint=signed.put_nowait,
        )
    )
    for batch in (records[:4], records[4:8]):
        for value in batch:
            await topic.send(topic.name, value)
        await signed.get()
    for value in records[8:]:
        await topic.send(topic.name, value)
    stop.set()
    stats = await task
    assert stats.leaves == 10
    sizes = []
    for _, value in _checkpoints(topic):
        record = parse_checkpoint_record(value)
        checkpoint = record.checkpoint(gateway_keys=[log.gateway_key.public_key()])
        assert checkpoint.root == root_hash([leaf_hash(v) for v in records[: checkpoint.size]])
        assert list(record.leaves) == [
            leaf_hash(v) for v in records[record.first : checkpoint.size]
        ]
        sizes.append(checkpoint.size)
    assert sizes == [4, 8, 10]


async def test_a_restarted_checkpointer_does_not_sign_the_same_range_twice() -> None:
    """After a restart the checkpointer reads its own earlier checkpoints and continues."""
    log, topic = AuditLog.create(), MemoryTopic()
    for value in _records(log, 8):
        await topic.send(topic.name, value)
    await _checkpoint_until(topic, log.gateway_key, size=8)
    for value in _records(log, 4):
        await topic.send(topic.name, value)
    await _checkpoint_until(topic, log.gateway_key, size=12)
    sizes = [
        verify_log_signature(
            parse_checkpoint_record(v).note, gateway_keys=[log.gateway_key.public_key()]
        ).size
        for _, v in _checkpoints(topic)
    ]
    # the backlog is signed once, at the log's end; the restart adds only the new range
    assert sizes == [8, 12]


async def test_two_instances_agree_on_every_root() -> None:
    """Two gateway instances checkpointing one topic sign the same root for the same size."""
    log, topic = AuditLog.create(), MemoryTopic()
    other = SigningKey.generate(Suite.CLASSIC)
    for value in _records(log, 8):
        await topic.send(topic.name, value)
    first = await _checkpoint_until(topic, log.gateway_key, size=8)
    second = await _checkpoint_until(topic, other, size=8)
    roots: dict[int, bytes] = {}
    for _, value in _checkpoints(topic):
        note = parse_checkpoint_record(value).note
        for key in (log.gateway_key, other):
            try:
                checkpoint = verify_log_signature(note, gateway_keys=[key.public_key()])
            except errors.AuditError:
                continue
            assert roots.setdefault(checkpoint.size, checkpoint.root) == checkpoint.root
    assert (first.forks, second.forks) == (0, 0)
    assert set(roots) == {8}


async def test_a_checkpoint_with_another_root_is_reported_as_a_fork() -> None:
    """A checkpoint on the topic whose root differs from ours at its size counts as a fork."""
    log, topic = AuditLog.create(), MemoryTopic()
    for value in _records(log, 4):
        await topic.send(topic.name, value)
    from broker.audit import sign_checkpoint

    rogue = Checkpoint(origin=ORIGIN, size=4, root=bytes(32), timestamp=NOW)
    await topic.send(
        topic.name,
        encode_checkpoint_record(sign_checkpoint(rogue, key=log.gateway_key), first=4, leaves=[]),
    )
    stats = await _checkpoint_until(topic, log.gateway_key, size=4)
    assert stats.forks == 1


@pytest.mark.parametrize(("every_records", "every_seconds"), [(0, 60.0), (5000, 60.0), (10, 0.0)])
async def test_impossible_intervals_are_refused(every_records: int, every_seconds: float) -> None:
    """Intervals outside the limits are a UsageError before anything is read."""
    log, topic = AuditLog.create(), MemoryTopic()
    with pytest.raises(errors.UsageError):
        await run_checkpointer(
            source=topic.reader(),
            sink=topic,
            topic=topic.name,
            key=log.gateway_key,
            origin=ORIGIN,
            clock=FixedClock(NOW),
            stop=asyncio.Event(),
            every_records=every_records,
            every_seconds=every_seconds,
        )


async def test_reading_stops_at_the_requested_count_in_offset_order() -> None:
    """read_log yields records in order and stops at ``count`` without waiting for quiet."""
    topic = MemoryTopic()
    for i in range(5):
        await topic.send(topic.name, b"r%d" % i)
    got = [r.value async for r in read_log(topic.reader(), count=3)]
    assert got == [b"r0", b"r1", b"r2"]


async def test_reading_an_empty_topic_ends_after_the_first_wait() -> None:
    """An empty topic yields nothing: the reader gives up after ``first_wait_s``."""
    got = [r async for r in read_log(MemoryTopic().reader(), first_wait_s=0.5, quiet_s=0.5)]
    assert got == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("not json", b'{"from":0,'),
        ("extra field", b'{"extra":1,"from":0,"kind":"checkpoint","leaves":"","note":"","v":1}'),
        ("partial hash", b'{"from":0,"kind":"checkpoint","leaves":"AAAA","note":"x","v":1}'),
        ("negative from", b'{"from":-1,"kind":"checkpoint","leaves":"","note":"x","v":1}'),
        ("spaced", b'{"from": 0,"kind":"checkpoint","leaves":"","note":"x","v":1}'),
    ],
)
def test_malformed_checkpoint_records_are_refused(name: str, value: bytes) -> None:
    """Anything but the exact canonical checkpoint record is an AuditError."""
    with pytest.raises(errors.AuditError):
        parse_checkpoint_record(value)
