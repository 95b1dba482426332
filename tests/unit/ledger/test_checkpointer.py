"""The checkpointer signs the audit log on its own topic, covers only valid gateway records,
and reading stops at the log's end."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import pathlib

import pytest

from broker import errors
from broker.audit import Checkpoint, leaf_hash, open_checkpoint, root_hash, sign_checkpoint
from broker.clock import FixedClock
from broker.crypto import SigningKey, Suite, sha256
from broker.ledger import (
    CheckpointerStats,
    CheckpointRecord,
    PositionMismatch,
    Refusal,
    RefusedRecord,
    SavedPosition,
    SeenCheckpoint,
    WrittenLeaves,
    encode_checkpoint_record,
    is_checkpoint_record,
    judge_record,
    parse_checkpoint_record,
    read_log,
    run_checkpointer,
)
from broker.pipeline.records import parse_audit_record
from tests.unit.replay.audit_log import NOW, AuditLog, MemoryTopic, decide, labels

ORIGIN = "broker/xb.audit"
#: one registry for the module, with two gateway keys (two-instance tests use both)
REGISTRY = AuditLog.create(gateways=2)


def _records(log: AuditLog, count: int) -> list[bytes]:
    return [decide(log.accords[0], labels(), key=log.gateway_key, at=NOW) for _ in range(count)]


async def _checkpoint_until(
    topic: MemoryTopic,
    log: AuditLog,
    key: SigningKey | None = None,
    *,
    through: int,
    every: int = 4,
    refused: list[RefusedRecord] | None = None,
    resume: SavedPosition | None = None,
    saved: list[SavedPosition] | None = None,
) -> CheckpointerStats:
    """Run a checkpointer until it has judged every record before offset ``through``; from
    ``resume``'s position when given, keeping each new position in ``saved``."""
    stop, reached = asyncio.Event(), asyncio.Event()
    written: list[CheckpointRecord] = []

    def seen(_: Checkpoint) -> None:
        written.append(parse_checkpoint_record(_last_checkpoint(topic)))
        if written[-1].through >= through:
            reached.set()

    task = asyncio.create_task(
        run_checkpointer(
            source=MemoryTopic.Reader(topic, 0 if resume is None else resume.through),
            sink=topic,
            topic=topic.name,
            key=key or log.gateway_key,
            origin=ORIGIN,
            registry=lambda: log.fixture.registry,
            clock=FixedClock(NOW),
            stop=stop,
            every_records=every,
            every_seconds=0.2,
            on_checkpoint=seen,
            on_refused=None if refused is None else refused.append,
            resume=resume,
            on_position=None if saved is None else saved.append,
        )
    )
    await reached.wait()
    stop.set()
    return await task


def _last_checkpoint(topic: MemoryTopic) -> bytes:
    return next(v for v in reversed(topic.values) if v is not None and is_checkpoint_record(v))


def _checkpoints(topic: MemoryTopic) -> list[CheckpointRecord]:
    """The checkpoint records a registered gateway wrote (not the forgeries among them)."""
    found = []
    for value in topic.values:
        if value is not None and is_checkpoint_record(value):
            judged = judge_record(value, registry=REGISTRY.fixture.registry)
            if isinstance(judged, SeenCheckpoint):
                found.append(judged.record)
    return found


async def test_checkpoints_every_n_records_cover_the_log_exactly() -> None:
    """Once ``every_records`` new leaves have arrived a signed checkpoint is appended whose
    root is the tree head of exactly the audit records before it and which lists their leaf
    hashes; stopping signs what is left."""
    log, topic = REGISTRY, MemoryTopic()
    records = _records(log, 10)
    stop, signed = asyncio.Event(), asyncio.Queue[Checkpoint]()
    task = asyncio.create_task(
        run_checkpointer(
            source=topic.reader(),
            sink=topic,
            topic=topic.name,
            key=log.gateway_key,
            origin=ORIGIN,
            registry=lambda: log.fixture.registry,
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
    for record in _checkpoints(topic):
        checkpoint = open_checkpoint(record.note, log_keys=[log.gateway_key.public_key()])
        assert checkpoint.root == root_hash([leaf_hash(v) for v in records[: checkpoint.size]])
        assert list(record.leaves) == [
            leaf_hash(v) for v in records[record.first : checkpoint.size]
        ]
        assert record.refused == ()
        sizes.append(checkpoint.size)
    assert sizes == [4, 8, 10]
    assert [r.through for r in _checkpoints(topic)] == [4, 9, 12]


FORGERIES: dict[str, tuple[bytes | None, Refusal]] = {
    "no value at all": (None, Refusal.MALFORMED),
    "not UTF-8": (b"\xff\xfe{garbage", Refusal.MALFORMED),
    "empty": (b"", Refusal.MALFORMED),
    "JSON, not a record": (b'{"accord_digest":1}', Refusal.MALFORMED),
    "a checkpoint look-alike": (b'{"from":0,"kind":"checkpoint"}', Refusal.BAD_CHECKPOINT),
}


async def test_records_that_are_not_valid_gateway_records_are_refused_and_listed() -> None:
    """Garbage, a record signed by an unregistered key, a registered key's signature over
    other bytes, an unregistered checkpoint: none becomes a leaf, each is listed by offset
    with its reason in the next checkpoint record and raised once as an alert."""
    log, topic = REGISTRY, MemoryTopic()
    genuine = _records(log, 3)
    stranger = SigningKey.generate(Suite.CLASSIC)
    forged_key = decide(log.accords[0], labels(), key=stranger, at=NOW)
    tampered = genuine[0].replace(b'"decision":"allow"', b'"decision":"deny"')
    rogue = sign_checkpoint(
        Checkpoint(origin=ORIGIN, size=0, root=root_hash([]), timestamp=NOW), key=stranger
    )
    rogue_record = encode_checkpoint_record(rogue, first=0, leaves=[], refused=[], through=0)
    hostile: list[tuple[bytes | None, Refusal]] = [
        *FORGERIES.values(),
        (forged_key, Refusal.UNKNOWN_KEY),
        (tampered, Refusal.BAD_SIGNATURE),
        (rogue_record, Refusal.BAD_CHECKPOINT),
    ]
    await topic.send(topic.name, genuine[0])
    for value, _ in hostile:
        await topic.send(topic.name, value)
    for value in genuine[1:]:
        await topic.send(topic.name, value)
    alerts: list[RefusedRecord] = []
    stats = await _checkpoint_until(topic, log, through=len(topic.values), refused=alerts)
    (record,) = _checkpoints(topic)
    checkpoint = open_checkpoint(record.note, log_keys=[log.gateway_key.public_key()])
    assert checkpoint.size == 3
    assert checkpoint.root == root_hash([leaf_hash(v) for v in genuine])
    expected = [(offset, reason) for offset, (_, reason) in enumerate(hostile, start=1)]
    assert list(record.refused) == expected
    assert [(a.offset, a.reason) for a in alerts] == expected
    assert (stats.leaves, stats.refused) == (3, len(hostile))


async def test_a_refusal_alone_is_checkpointed_with_an_unchanged_root() -> None:
    """Junk after the last checkpoint gets a checkpoint of the same tree that lists it."""
    log, topic = REGISTRY, MemoryTopic()
    for value in _records(log, 4):
        await topic.send(topic.name, value)
    await _checkpoint_until(topic, log, through=4)
    await topic.send(topic.name, b"junk")
    await _checkpoint_until(topic, log, through=6)
    first, second = _checkpoints(topic)
    assert (first.first, len(first.leaves), first.refused) == (0, 4, ())
    assert (second.first, second.leaves, second.refused) == (4, (), ((5, Refusal.MALFORMED),))
    roots = {
        open_checkpoint(r.note, log_keys=[log.gateway_key.public_key()]).root
        for r in (first, second)
    }
    assert len(roots) == 1


async def test_a_restarted_checkpointer_does_not_list_the_same_range_twice() -> None:
    """After a restart the checkpointer reads its own earlier checkpoints and continues; a
    refusal an earlier checkpoint listed is not raised again."""
    log, topic = REGISTRY, MemoryTopic()
    for value in [*_records(log, 4), b"junk", *_records(log, 4)]:
        await topic.send(topic.name, value)
    alerts: list[RefusedRecord] = []
    await _checkpoint_until(topic, log, through=9, refused=alerts)
    for value in _records(log, 4):
        await topic.send(topic.name, value)
    await _checkpoint_until(topic, log, through=14, refused=alerts)
    sizes = [
        open_checkpoint(r.note, log_keys=[log.gateway_key.public_key()]).size
        for r in _checkpoints(topic)
    ]
    # the backlog is signed once, at the log's end; the restart adds only the new range
    assert sizes == [8, 12]
    assert [a.offset for a in alerts] == [4]


async def test_two_instances_agree_on_every_root() -> None:
    """Two gateway instances checkpointing one topic sign the same root for the same size."""
    log, topic = REGISTRY, MemoryTopic()
    first_key, second_key = log.fixture.gateways.values()
    for value in [*_records(log, 4), b"junk", *_records(log, 4)]:
        await topic.send(topic.name, value)
    first = await _checkpoint_until(topic, log, first_key, through=9)
    second = await _checkpoint_until(topic, log, second_key, through=10)
    roots: dict[int, bytes] = {}
    for record in _checkpoints(topic):
        checkpoint = open_checkpoint(
            record.note, log_keys=[first_key.public_key(), second_key.public_key()]
        )
        assert roots.setdefault(checkpoint.size, checkpoint.root) == checkpoint.root
        assert record.refused == ((4, Refusal.MALFORMED),)
    assert (first.forks, second.forks) == (0, 0)
    assert set(roots) == {8}


async def test_a_registered_checkpoint_with_another_root_is_reported_as_a_fork() -> None:
    """A checkpoint a registered gateway signed whose root differs from ours is a fork."""
    log, topic = REGISTRY, MemoryTopic()
    for value in _records(log, 4):
        await topic.send(topic.name, value)
    rogue = Checkpoint(origin=ORIGIN, size=4, root=bytes(32), timestamp=NOW)
    note = sign_checkpoint(rogue, key=log.gateway_key)
    await topic.send(
        topic.name,
        encode_checkpoint_record(note, first=4, leaves=[], refused=[], through=4),
    )
    stats = await _checkpoint_until(topic, log, through=5)
    assert stats.forks == 1


@pytest.mark.parametrize(("every_records", "every_seconds"), [(0, 60.0), (5000, 60.0), (10, 0.0)])
async def test_impossible_intervals_are_refused(every_records: int, every_seconds: float) -> None:
    """Intervals outside the limits are a UsageError before anything is read."""
    log, topic = REGISTRY, MemoryTopic()
    with pytest.raises(errors.UsageError):
        await run_checkpointer(
            source=topic.reader(),
            sink=topic,
            topic=topic.name,
            key=log.gateway_key,
            origin=ORIGIN,
            registry=lambda: log.fixture.registry,
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


LEAF = base64.b64encode(bytes(32)).decode()
MALFORMED_RECORDS = {
    "not json": b'{"from":0,',
    "version 1": b'{"from":0,"kind":"checkpoint","leaves":"","note":"x","v":1}',
    "extra field": (
        b'{"extra":1,"from":0,"kind":"checkpoint","leaves":"","note":"","refused":[],'
        b'"through":0,"v":2}'
    ),
    "partial hash": (
        b'{"from":0,"kind":"checkpoint","leaves":"AAAA","note":"x","refused":[],"through":0,"v":2}'
    ),
    "negative from": (
        b'{"from":-1,"kind":"checkpoint","leaves":"","note":"x","refused":[],"through":0,"v":2}'
    ),
    "spaced": (
        b'{"from": 0,"kind":"checkpoint","leaves":"","note":"x","refused":[],"through":0,"v":2}'
    ),
    "refusal past through": (
        b'{"from":0,"kind":"checkpoint","leaves":"","note":"x","refused":[[3,"malformed"]],'
        b'"through":3,"v":2}'
    ),
    "refusals out of order": (
        b'{"from":0,"kind":"checkpoint","leaves":"","note":"x",'
        b'"refused":[[2,"malformed"],[1,"malformed"]],"through":3,"v":2}'
    ),
    "unknown reason": (
        b'{"from":0,"kind":"checkpoint","leaves":"","note":"x","refused":[[1,"boring"]],'
        b'"through":3,"v":2}'
    ),
}


@pytest.mark.parametrize("value", MALFORMED_RECORDS.values(), ids=MALFORMED_RECORDS.keys())
def test_malformed_checkpoint_records_are_refused(value: bytes) -> None:
    """Anything but the exact canonical version 2 checkpoint record is an AuditError."""
    with pytest.raises(errors.AuditError):
        parse_checkpoint_record(value)


def test_a_genuine_record_is_never_mistaken_for_a_checkpoint() -> None:
    """Canonical audit records start with ``{"accord_digest"``: no genuine one looks like a
    checkpoint record, whatever its fields hold."""
    value = _records(REGISTRY, 1)[0]
    assert not is_checkpoint_record(value)
    assert parse_audit_record(value).decision == "allow"


async def test_records_this_process_wrote_are_admitted_without_judging_them_again() -> None:
    """A gateway's checkpointer takes the records its own process signed on trust (it made
    those bytes), each once; the same bytes written a second time are judged in full. The
    proof that the shortcut is taken: bytes it never signed, noted as written, are admitted,
    and refused when not noted."""
    log, topic = REGISTRY, MemoryTopic()
    stranger = SigningKey.generate(Suite.CLASSIC)
    unjudged = decide(log.accords[0], labels(), key=stranger, at=NOW)
    written = WrittenLeaves()
    written.add(leaf_hash(unjudged))
    for value in [unjudged, unjudged]:
        await topic.send(topic.name, value)
    stop, reached = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_checkpointer(
            source=topic.reader(),
            sink=topic,
            topic=topic.name,
            key=log.gateway_key,
            origin=ORIGIN,
            registry=lambda: log.fixture.registry,
            clock=FixedClock(NOW),
            stop=stop,
            every_records=2,
            every_seconds=0.2,
            on_checkpoint=lambda _: reached.set(),
            written=written,
        )
    )
    await reached.wait()
    stop.set()
    stats = await task
    assert (stats.leaves, stats.refused) == (1, 1)
    assert len(written) == 0


def test_written_leaves_are_bounded_and_claimed_once() -> None:
    """Past its capacity the oldest are forgotten (then judged in full); each is claimed once
    per time it was written."""
    written = WrittenLeaves(capacity=2)
    for leaf in (b"a" * 32, b"b" * 32, b"c" * 32, b"c" * 32):
        written.add(leaf)
    assert not written.take(b"a" * 32)
    assert written.take(b"b" * 32)
    assert written.take(b"c" * 32)
    assert written.take(b"c" * 32)
    assert not written.take(b"c" * 32)


async def test_a_stopping_checkpointer_covers_the_records_its_gateway_wrote_last() -> None:
    """Asked to stop before it has read them, it reads on until the records its own gateway
    wrote have come back: the last checkpoint leaves none of them uncovered."""
    log, topic = REGISTRY, MemoryTopic()
    written = WrittenLeaves()
    for value in _records(log, 2):
        written.add(leaf_hash(value))
        await topic.send(topic.name, value)
    stop = asyncio.Event()
    stop.set()
    stats = await run_checkpointer(
        source=topic.reader(),
        sink=topic,
        topic=topic.name,
        key=log.gateway_key,
        origin=ORIGIN,
        registry=lambda: log.fixture.registry,
        clock=FixedClock(NOW),
        stop=stop,
        every_records=1000,
        every_seconds=60.0,
        written=written,
    )
    assert (stats.leaves, stats.written, len(written)) == (2, 1, 0)
    assert _checkpoints(topic)[-1].through == 2


async def test_a_resumed_checkpointer_reads_only_what_came_after_its_last_checkpoint(
    tmp_path: pathlib.Path,
) -> None:
    """From its saved position a restarted checkpointer judges only the new records, and signs
    the very roots a checkpointer reading the whole log signs."""
    log, topic = REGISTRY, MemoryTopic()
    for value in [*_records(log, 4), b"junk", *_records(log, 4)]:
        await topic.send(topic.name, value)
    saved: list[SavedPosition] = []
    await _checkpoint_until(topic, log, through=9, saved=saved)
    saved[-1].save(tmp_path / "position.json")
    position = SavedPosition.load(
        tmp_path / "position.json", origin=ORIGIN, registry=log.fixture.registry
    )
    assert position == saved[-1]
    assert (position.checkpoint.size, position.through) == (8, 9)
    assert position.first == (0, sha256(topic.contents()[0]))
    for value in [*_records(log, 3), b"more junk"]:
        await topic.send(topic.name, value)
    resumed = await _checkpoint_until(topic, log, through=14, resume=position, saved=saved)
    assert resumed.leaves == 3, "only the records after the saved checkpoint are judged"
    assert resumed.refused == 1
    second_key = list(log.fixture.gateways.values())[1]
    whole = await _checkpoint_until(topic, log, second_key, through=15)
    keys = [k.public_key() for k in log.fixture.gateways.values()]
    roots: dict[int, set[bytes]] = {}
    for record in _checkpoints(topic):
        checkpoint = open_checkpoint(record.note, log_keys=keys)
        roots.setdefault(checkpoint.size, set()).add(checkpoint.root)
    assert roots[11] == {saved[-1].checkpoint.root}
    assert all(len(r) == 1 for r in roots.values()), roots
    assert (resumed.forks, whole.forks) == (0, 0)


async def test_a_position_the_topic_does_not_hold_stops_the_resumed_checkpointer() -> None:
    """A saved position whose checkpoint is not where it says (a topic recreated, a file
    from elsewhere) is never built on: the checkpointer stops with PositionMismatch."""
    log, topic = REGISTRY, MemoryTopic()
    for value in _records(log, 4):
        await topic.send(topic.name, value)
    saved: list[SavedPosition] = []
    await _checkpoint_until(topic, log, through=4, saved=saved)
    genuine = saved[-1]
    recreated = MemoryTopic()
    for value in _records(log, 6):
        await recreated.send(recreated.name, value)
    for topic_, position in [
        (recreated, genuine),  # another record where the checkpoint was
        (topic, dataclasses.replace(genuine, offset=genuine.offset + 5)),  # the log ends first
        # the checkpoint is there, but it listed through another offset: an edited file
        (topic, dataclasses.replace(genuine, through=genuine.through - 1)),
    ]:
        with pytest.raises(PositionMismatch):
            await asyncio.wait_for(
                run_checkpointer(
                    source=MemoryTopic.Reader(topic_, position.through),
                    sink=topic_,
                    topic=topic_.name,
                    key=log.gateway_key,
                    origin=ORIGIN,
                    registry=lambda: log.fixture.registry,
                    clock=FixedClock(NOW),
                    stop=asyncio.Event(),
                    resume=position,
                ),
                timeout=30,
            )


@pytest.mark.parametrize("change", ["edge", "origin", "stranger", "offsets", "first", "version"])
async def test_a_saved_position_that_does_not_verify_is_refused(
    tmp_path: pathlib.Path, change: str
) -> None:
    log, topic = REGISTRY, MemoryTopic()
    for value in _records(log, 3):
        await topic.send(topic.name, value)
    saved: list[SavedPosition] = []
    await _checkpoint_until(topic, log, through=3, saved=saved)
    document = json.loads(saved[-1].to_bytes())
    stranger = SigningKey.generate(Suite.CLASSIC)
    checkpoint = saved[-1].checkpoint
    edits: dict[str, dict[str, object]] = {
        "edge": {"edge": [base64.b64encode(b"\x00" * 32).decode()] * len(document["edge"])},
        "origin": {"note": sign_checkpoint(
            dataclasses.replace(checkpoint, origin="broker/other"), key=log.gateway_key
        ).decode()},
        "stranger": {"note": sign_checkpoint(checkpoint, key=stranger).decode()},
        "offsets": {"through": document["offset"] + 1},
        "first": {"first": [document["through"], "00" * 32]},
        "version": {"v": 2},
    }  # fmt: skip
    path = tmp_path / "position.json"
    path.write_text(json.dumps({**document, **edits[change]}))
    with pytest.raises(errors.AuditError):
        SavedPosition.load(path, origin=ORIGIN, registry=log.fixture.registry)
    assert (
        SavedPosition.load(tmp_path / "none.json", origin=ORIGIN, registry=log.fixture.registry)
        is None
    )
