"""The checkpointer: follows the audit topic and appends signed checkpoints to it.

It reads the topic from the beginning, appends every audit record's exact bytes to a
:class:`~broker.audit.MerkleLog`, and once it has reached the log's current end (a fetch came
back empty) signs a checkpoint whenever ``every_records`` leaves are unsigned or
``every_seconds`` have passed with at least one. Signing only at the end of what is there
means a backlog is signed once, not in slices, and a restarted checkpointer first reads its
own earlier checkpoints (signed by its key, with a matching root) and never signs a range
twice. A checkpoint lists at most MAX_LEAVES_PER_CHECKPOINT leaves; a longer backlog is
signed in several.

Several gateway instances may each run one: they all read the same single partition in the
same order, so the same size always has the same root. A checkpoint by another instance whose
root differs from ours at its size is a fork, logged as an error and counted.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import Callable

import structlog

from broker import errors
from broker.audit import Checkpoint, MerkleLog, leaf_hash, sign_checkpoint, verify_log_signature
from broker.clock import Clock
from broker.crypto import SigningKey, VerifyKey
from broker.ledger.entries import (
    MAX_LEAVES_PER_CHECKPOINT,
    encode_checkpoint_record,
    is_checkpoint_record,
    parse_checkpoint_record,
)
from broker.ledger.reader import RecordSink, RecordSource

__all__ = ["CheckpointerStats", "run_checkpointer"]

_POLL_MS = 500
_log = structlog.get_logger(__name__)


@dataclasses.dataclass
class CheckpointerStats:
    """What a checkpointer did: leaves seen, checkpoints written, forks observed."""

    leaves: int = 0
    written: int = 0
    forks: int = 0


@dataclasses.dataclass
class _State:
    log: MerkleLog = dataclasses.field(default_factory=MerkleLog)
    covered: int = 0  # the size of our own last checkpoint
    pending: list[bytes] = dataclasses.field(default_factory=list)
    roots: dict[int, bytes] = dataclasses.field(default_factory=dict)


async def run_checkpointer(
    *,
    source: RecordSource,
    sink: RecordSink,
    topic: str,
    key: SigningKey,
    origin: str,
    clock: Clock,
    stop: asyncio.Event,
    every_records: int = 1000,
    every_seconds: float = 60.0,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
) -> CheckpointerStats:
    """Checkpoint the audit log on ``topic`` until ``stop`` is set, then write a last one.

    ``source`` must be a consumer of ``topic`` alone, starting from its first record (a fresh
    group, ``auto_offset_reset=earliest``); ``sink`` a producer (acks=all). ``on_checkpoint``
    is called after each checkpoint is acknowledged.
    """
    if not 1 <= every_records <= MAX_LEAVES_PER_CHECKPOINT:
        raise errors.UsageError(f"every_records must be from 1 to {MAX_LEAVES_PER_CHECKPOINT}")
    if every_seconds <= 0:
        raise errors.UsageError("every_seconds must be positive")
    own_key = [key.public_key()]
    state, stats = _State(), CheckpointerStats()
    last_written = time.monotonic()
    caught_up = False

    async def emit() -> None:
        nonlocal last_written
        size = state.log.size
        checkpoint = Checkpoint(
            origin=origin, size=size, root=state.log.root(), timestamp=clock.now()
        )
        note = sign_checkpoint(checkpoint, key=key)
        value = encode_checkpoint_record(note, first=state.covered, leaves=state.pending)
        await sink.send(topic, value, key=b"checkpoint")
        state.covered, state.pending, state.roots = size, [], {size: checkpoint.root}
        stats.written += 1
        last_written = time.monotonic()
        _log.info("audit checkpoint written", size=size, origin=origin)
        if on_checkpoint is not None:
            on_checkpoint(checkpoint)

    while not stop.is_set():
        fetch = asyncio.ensure_future(source.fetch(timeout_ms=_POLL_MS))
        halt = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({fetch, halt}, return_when=asyncio.FIRST_COMPLETED)
        if fetch not in done:
            fetch.cancel()
            halt.cancel()
            break
        halt.cancel()
        batch = fetch.result()
        for record in batch:
            value = record.value or b""
            if is_checkpoint_record(value):
                stats.forks += _observe_checkpoint(value, state, own_key)
                continue
            leaf = leaf_hash(value)
            state.log.append(leaf)
            state.pending.append(leaf)
            state.roots[state.log.size] = state.log.root()
            stats.leaves += 1
            if len(state.pending) >= MAX_LEAVES_PER_CHECKPOINT:
                await emit()
        if not batch:
            # At the log's current end: everything before has been read, including our own
            # earlier checkpoints after a restart, so nothing is signed twice.
            caught_up = True
        due = time.monotonic() - last_written >= every_seconds
        if caught_up and state.pending and (len(state.pending) >= every_records or due):
            await emit()
    if state.pending:
        await emit()
    return stats


def _observe_checkpoint(value: bytes, state: _State, own_key: list[VerifyKey]) -> int:
    """Compare a checkpoint read back from the topic with our log; 1 if it shows a fork."""
    try:
        record = parse_checkpoint_record(value)
    except errors.AuditError as exc:
        _log.error("unreadable checkpoint record on the audit topic", reason=str(exc))
        return 0
    size_text = record.note.split(b"\n", 2)[1:2]
    size = int(size_text[0]) if size_text and size_text[0].isdigit() else -1
    ours = state.roots.get(size)
    if ours is None:
        return 0  # older than our window: covered by an earlier comparison
    try:
        checkpoint = verify_log_signature(record.note, gateway_keys=own_key)
    except errors.AuditError:
        checkpoint = None
    if checkpoint is not None and checkpoint.root == ours and size > state.covered:
        # Our own checkpoint from before a restart: that range is signed already.
        drop = size - state.covered
        state.covered, state.pending = size, state.pending[drop:]
        state.roots = {s: r for s, r in state.roots.items() if s >= size}
        return 0
    if record.note.split(b"\n")[2:3] != [base64.b64encode(ours)]:
        _log.error("a checkpoint on the audit topic disagrees with our log: a fork", size=size)
        return 1
    return 0
