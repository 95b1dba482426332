"""The checkpointer: follows the audit topic and appends signed checkpoints to it.

It reads the topic from the beginning and judges every record
(:func:`~broker.ledger.admission.judge_record`): only a valid gateway audit record becomes a
leaf of its :class:`~broker.audit.MerkleLog`; anything else is refused, raised as an alert
(``on_refused`` and an error log line) and listed by offset in the next checkpoint record, so
nothing unauthenticated is ever covered by a signed checkpoint as valid. Once it has reached
the log's current end (a fetch came back empty) it signs a checkpoint whenever
``every_records`` leaves and refusals are unlisted or ``every_seconds`` have passed with at
least one. Signing only at the end of what is there means a backlog is signed once, not in
slices, and a restarted checkpointer first reads its own earlier checkpoints (signed by its
key, with a matching root) and never lists a range twice. A checkpoint record lists at most
MAX_ENTRIES_PER_CHECKPOINT leaves and refusals; a longer backlog is signed in several.

With a ``resume`` position (:mod:`.position`, saved through ``on_position`` after each
checkpoint) it starts from that checkpoint's tree instead of an empty one and skips what it
covered; it must then meet that very checkpoint record at its offset before anything else, or
it stops with :class:`~broker.ledger.position.PositionMismatch` and its caller reads the log
from the start.

Several gateway instances may each run one: they all read the same single partition in the
same order and judge by the same registry, so the same size always has the same root. A
registered checkpoint whose root differs from ours at its size is a fork, logged as an error
and counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence

import structlog

from broker import errors
from broker.audit import Checkpoint, MerkleLog, leaf_hash, open_checkpoint, sign_checkpoint
from broker.clock import Clock
from broker.crypto import SigningKey, VerifyKey, sha256
from broker.keys import Registry
from broker.ledger.admission import Admitted, Judgment, Refused, SeenCheckpoint, judge_record
from broker.ledger.entries import (
    MAX_ENTRIES_PER_CHECKPOINT,
    Refusal,
    encode_checkpoint_record,
    is_checkpoint_record,
)
from broker.ledger.position import PositionMismatch, SavedPosition
from broker.ledger.reader import RecordSink, RecordSource
from broker.ledger.written import WrittenLeaves
from broker.transport.kafka import Record

__all__ = ["CheckpointerStats", "RefusedRecord", "run_checkpointer"]

_POLL_MS = 500
#: the longest a stopping checkpointer reads on for its own gateway's last records
_FINAL_READ_S = 10.0
_log = structlog.get_logger(__name__)


@dataclasses.dataclass
class CheckpointerStats:
    """What a checkpointer did: leaves seen, refusals raised, checkpoints written, forks."""

    leaves: int = 0
    refused: int = 0
    written: int = 0
    forks: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class RefusedRecord:
    """A record the checkpointer will not cover: where it is, the reason code, and why."""

    offset: int
    reason: Refusal
    detail: str


@dataclasses.dataclass
class _State:
    log: MerkleLog = dataclasses.field(default_factory=MerkleLog)
    covered: int = 0  # the size of our own last checkpoint
    through: int = 0  # the offset after the last record judged
    pending: list[bytes] = dataclasses.field(default_factory=list)
    refused: list[RefusedRecord] = dataclasses.field(default_factory=list)
    alerted: int = 0  # how many of ``refused`` have been raised as alerts
    roots: dict[int, bytes] = dataclasses.field(default_factory=dict)
    #: the first record read of the log: (its offset, SHA-256 of its value)
    first: tuple[int, bytes] | None = None

    @property
    def unlisted(self) -> int:
        return len(self.pending) + len(self.refused)


async def run_checkpointer(
    *,
    source: RecordSource,
    sink: RecordSink,
    topic: str,
    key: SigningKey,
    origin: str,
    registry: Callable[[], Registry],
    clock: Clock,
    stop: asyncio.Event,
    every_records: int = 1000,
    every_seconds: float = 60.0,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
    on_refused: Callable[[RefusedRecord], None] | None = None,
    on_caught_up: Callable[[], None] | None = None,
    written: WrittenLeaves | None = None,
    resume: SavedPosition | None = None,
    on_position: Callable[[SavedPosition], None] | None = None,
) -> CheckpointerStats:
    """Checkpoint the audit log on ``topic`` until ``stop`` is set, then write a last one.

    ``source`` must be a consumer of ``topic`` alone, starting from its first record (a fresh
    group, ``auto_offset_reset=earliest``); ``sink`` a producer (acks=all); ``registry`` gives
    the registry in force (it may be reloaded between calls). ``on_checkpoint`` is called after
    each checkpoint is acknowledged; ``on_refused`` once for each refused record, as soon as
    the checkpointer knows no checkpoint of its own has listed it yet; ``on_caught_up`` once,
    when it first reaches the log's end. ``written``, in a gateway, holds the leaf hashes of
    the records that process signed itself: those are admitted without being judged again.
    ``resume`` is where this checkpointer's last checkpoint left the log (see the module's
    docstring); ``on_position`` is given each new one, after the checkpoint is acknowledged.
    """
    if not 1 <= every_records <= MAX_ENTRIES_PER_CHECKPOINT:
        raise errors.UsageError(f"every_records must be from 1 to {MAX_ENTRIES_PER_CHECKPOINT}")
    if every_seconds <= 0:
        raise errors.UsageError("every_seconds must be positive")
    own_key = key.public_key()
    state, stats = _State(), CheckpointerStats()
    unconfirmed = resume
    if resume is not None:
        size, root = resume.checkpoint.size, resume.checkpoint.root
        state.log, state.covered, state.through = resume.log(), size, resume.through
        state.roots, state.first = {size: root}, resume.first
    last_written = time.monotonic()
    caught_up = False

    def alert() -> None:
        for refused in state.refused[state.alerted :]:
            _log.error(
                "audit_record_refused",
                offset=refused.offset,
                reason_code=str(refused.reason),
                reason=refused.detail,
            )
            stats.refused += 1
            if on_refused is not None:
                on_refused(refused)
        state.alerted = len(state.refused)

    async def emit() -> None:
        nonlocal last_written
        alert()
        size = state.log.size
        checkpoint = Checkpoint(
            origin=origin, size=size, root=state.log.root(), timestamp=clock.now()
        )
        note = sign_checkpoint(checkpoint, key=key)
        value = encode_checkpoint_record(
            note,
            first=state.covered,
            leaves=state.pending,
            refused=[(r.offset, r.reason) for r in state.refused],
            through=state.through,
        )
        delivery = await sink.send(topic, value, key=b"checkpoint")
        if on_position is not None and state.first is not None:
            edge, through = state.log.right_edge, state.through
            on_position(
                SavedPosition(checkpoint, note, edge, through, delivery.offset, state.first)
            )
        state.covered = size
        state.pending, state.refused, state.alerted = [], [], 0
        state.roots = {size: checkpoint.root}
        stats.written += 1
        last_written = time.monotonic()
        _log.info("audit checkpoint written", size=size, origin=origin, through=state.through)
        if on_checkpoint is not None:
            on_checkpoint(checkpoint)

    async def absorb(batch: Sequence[Record]) -> None:
        nonlocal unconfirmed
        trusted = registry()
        for record in batch:
            if record.offset < state.through:
                continue  # a rebalance handed back a record already judged
            judged = _judge(record.value, trusted, written)
            if state.first is None:
                state.first = (record.offset, sha256(record.value or b""))
            if unconfirmed is not None:
                _confirm(unconfirmed, record.offset, judged)
                if record.offset == unconfirmed.offset:
                    unconfirmed = None
            state.through = record.offset + 1
            if isinstance(judged, SeenCheckpoint):
                stats.forks += _observe_checkpoint(judged, state, own_key=own_key)
            elif isinstance(judged, Admitted):
                state.log.append(judged.leaf)
                state.pending.append(judged.leaf)
                state.roots[state.log.size] = state.log.root()
                stats.leaves += 1
            else:
                state.refused.append(_refusal(record.offset, judged))
                if caught_up:
                    alert()
            if state.unlisted >= MAX_ENTRIES_PER_CHECKPOINT:
                await emit()

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
        await absorb(batch)
        if not batch:
            # At the log's current end: everything before has been read, including our own
            # earlier checkpoints after a restart, so nothing is listed twice.
            if unconfirmed is not None:
                raise PositionMismatch(
                    f"the audit log ends before offset {unconfirmed.offset}, where the saved "
                    "checkpoint should be"
                )
            if not caught_up and on_caught_up is not None:
                on_caught_up()
            caught_up = True
            alert()
        due = time.monotonic() - last_written >= every_seconds
        if caught_up and state.unlisted and (state.unlisted >= every_records or due):
            await emit()
    # Stopping: read on until this gateway's own records, written just before it stopped,
    # have come back (bounded: one whose produce failed never will), so the last checkpoint
    # covers every record this instance wrote.
    deadline = time.monotonic() + _FINAL_READ_S
    while written is not None and len(written) and time.monotonic() < deadline:
        await absorb(await source.fetch(timeout_ms=_POLL_MS))
    if state.unlisted:
        await emit()
    return stats


def _judge(value: bytes | None, registry: Registry, written: WrittenLeaves | None) -> Judgment:
    if written is not None and value is not None and not is_checkpoint_record(value):
        leaf = leaf_hash(value)
        if written.take(leaf):
            return Admitted(leaf)  # this process signed these exact bytes itself
    return judge_record(value, registry=registry)


def _confirm(saved: SavedPosition, offset: int, judged: Judgment) -> None:
    """Raise PositionMismatch unless the record at ``offset`` fits the saved position: the
    first records after it lead up to the saved checkpoint record, which must be that one."""
    if offset > saved.offset:
        raise PositionMismatch(f"no record at offset {saved.offset}, the saved checkpoint's")
    if offset == saved.offset and (
        not isinstance(judged, SeenCheckpoint)
        or judged.record.note != saved.note
        or judged.record.through != saved.through
    ):
        raise PositionMismatch(f"the record at offset {offset} is not the saved checkpoint")


def _refusal(offset: int, judged: Refused) -> RefusedRecord:
    return RefusedRecord(offset, judged.reason, judged.detail)


def _observe_checkpoint(seen: SeenCheckpoint, state: _State, *, own_key: VerifyKey) -> int:
    """Compare a registered checkpoint read back from the topic with our log; 1 if a fork."""
    checkpoint, record = seen.checkpoint, seen.record
    ours = state.roots.get(checkpoint.size)
    if ours is None:
        return 0  # older than our window: covered by an earlier comparison
    if checkpoint.root != ours:
        _log.error(
            "audit_checkpoint_fork",
            size=checkpoint.size,
            detail="a registered checkpoint on the audit topic disagrees with our log",
        )
        return 1
    if _signed_by(record.note, own_key) and checkpoint.size >= state.covered:
        # Our own checkpoint from before a restart: that range is listed already.
        drop = checkpoint.size - state.covered
        state.covered, state.pending = checkpoint.size, state.pending[drop:]
        kept = [r for r in state.refused if r.offset >= record.through]
        state.alerted = max(0, state.alerted - (len(state.refused) - len(kept)))
        state.refused = kept
        state.roots = {s: r for s, r in state.roots.items() if s >= checkpoint.size}
    return 0


def _signed_by(note: bytes, key: VerifyKey) -> bool:
    try:
        open_checkpoint(note, log_keys=[key])
    except errors.AuditError:
        return False
    return True
