"""Deliveries the receiving adapter refused, kept in the inbox database so none vanishes.

A delivery the gateway let through can still be refused by its recipient (a sender key
revoked under the recipient's newer registry, a bad attestation, a label mismatch), and
anybody able to write to the inbox topic can put anything there. Each refusal is one row:
where the frame was read (topic, partition, offset), what is known of the message, the
reason, the frame's size and SHA-256, and at most a bounded prefix of its bytes (the caller
applies ``limits.REJECTED_PREFIX_BYTES``), written in the SAME transaction as the batch's
accepted messages, so it is durable before the offset is committed. A row per (topic,
partition, offset): a frame delivered again after a crash before the commit is not recorded
twice.

The table is bounded, so a flood of junk costs a bounded amount of disk: it keeps at most
``max_rows`` rows (the oldest go first, in the transaction that adds the new ones) and none
older than the age :meth:`RejectedLog.prune` is given. What goes is counted, by reason code,
in ``rejected_pruned``: the record of a refusal may be dropped, the fact of it never is.

The identity fields are only as good as ``identified_by`` says: ``"envelope"`` when the
sender's signature was checked, ``"attestation"`` when only the gateway's signed attestation
vouches for them, ``None`` when nothing could be verified (then they are empty). The frame's
envelope stays encrypted; nothing here is decrypted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import sqlite3
from collections.abc import Sequence
from typing import Any, Literal

from broker import errors
from broker.store._sqlite import from_micros, to_micros, transaction

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_ROWS",
    "MAX_REASON_CHARS",
    "IdentifiedBy",
    "RejectedDelivery",
    "RejectedLog",
    "Rejection",
]

IdentifiedBy = Literal["envelope", "attestation"]

#: a reason longer than this is cut: it may quote attacker-controlled input
MAX_REASON_CHARS = 2_000
#: the rows kept: each holds at most limits.REJECTED_PREFIX_BYTES of frame, a reason of at
#: most MAX_REASON_CHARS and a few short fields, so the table stays within some 70 MiB
DEFAULT_MAX_ROWS = 10_000
#: how long a refusal is kept, at most
DEFAULT_MAX_AGE = dt.timedelta(days=30)
_MAX_FIELD_CHARS = 128
_REASON_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_COLUMNS = (
    "id, topic, partition, record_offset, message_id, sender, case_id, identified_by, "
    "reason_code, reason, rejected_at, frame_size, frame_sha256"
)

PRUNED_SCHEMA = (
    """CREATE TABLE rejected_pruned (
        reason_code TEXT PRIMARY KEY,
        rows INTEGER NOT NULL,
        last_pruned_at INTEGER NOT NULL
    )""",
)
TABLE_SCHEMA = (
    """CREATE TABLE rejected (
        id INTEGER PRIMARY KEY,
        topic TEXT,
        partition INTEGER,
        record_offset INTEGER,
        message_id TEXT,
        sender TEXT,
        case_id TEXT,
        identified_by TEXT,
        reason_code TEXT NOT NULL,
        reason TEXT NOT NULL,
        rejected_at INTEGER NOT NULL,
        frame_size INTEGER NOT NULL,
        frame_sha256 BLOB NOT NULL,
        frame BLOB NOT NULL,
        UNIQUE (topic, partition, record_offset)
    )""",
    "CREATE INDEX rejected_message ON rejected (message_id)",
)
SCHEMA = (*TABLE_SCHEMA, *PRUNED_SCHEMA)


@dataclasses.dataclass(frozen=True, slots=True)
class RejectedDelivery:
    """One refused delivery to record (see the module docstring for the identity fields)."""

    reason_code: str
    reason: str
    rejected_at: dt.datetime
    #: the frame as read (``b""`` for an empty record); the caller bounds it
    frame: bytes = dataclasses.field(repr=False)
    #: the frame's size before any bound was applied
    frame_size: int
    #: SHA-256 of the WHOLE frame; may be left out only when ``frame`` is the whole frame
    frame_sha256: bytes | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    message_id: str | None = None
    sender: str | None = None
    case_id: str | None = None
    identified_by: IdentifiedBy | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Rejection:
    """One recorded refusal; ``frame`` is only filled in by :meth:`RejectedLog.get`."""

    id: int
    topic: str | None
    partition: int | None
    offset: int | None
    message_id: str | None
    sender: str | None
    case_id: str | None
    identified_by: IdentifiedBy | None
    reason_code: str
    reason: str
    rejected_at: dt.datetime
    frame_size: int
    frame_sha256: bytes
    frame: bytes | None = dataclasses.field(default=None, repr=False)

    @property
    def frame_truncated(self) -> bool:
        """Whether only the first part of the frame was kept (``None`` frame: unknown)."""
        return self.frame is not None and len(self.frame) < self.frame_size


def _text(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.UsageError(f"{name} must be a string")
    return value[:_MAX_FIELD_CHARS]


def _checked(item: RejectedDelivery) -> tuple[object, ...]:
    if not _REASON_CODE.match(str(item.reason_code)):
        raise errors.UsageError(f"reason code {item.reason_code!r} is not a reason code")
    if not isinstance(item.frame, bytes):
        raise errors.UsageError("a rejected frame is bytes")
    if item.frame_size < len(item.frame):
        raise errors.UsageError("frame_size is the size before bounding: at least len(frame)")
    digest = item.frame_sha256
    if digest is None:
        if item.frame_size != len(item.frame):
            raise errors.UsageError("a bounded frame needs the SHA-256 of the whole frame")
        digest = hashlib.sha256(item.frame).digest()
    if len(digest) != 32:
        raise errors.UsageError("frame_sha256 is a 32-byte SHA-256")
    position = (item.topic, item.partition, item.offset)
    if any(p is None for p in position) and any(p is not None for p in position):
        raise errors.UsageError("a frame's position is topic, partition and offset, or none")
    if item.identified_by not in (None, "envelope", "attestation"):
        raise errors.UsageError(f"identified_by {item.identified_by!r} is not known")
    return (
        _text(item.topic, "topic"),
        item.partition,
        item.offset,
        _text(item.message_id, "message id"),
        _text(item.sender, "sender"),
        _text(item.case_id, "case id"),
        item.identified_by,
        item.reason_code,
        str(item.reason)[:MAX_REASON_CHARS],
        to_micros(item.rejected_at, name="rejected_at"),
        item.frame_size,
        digest,
        item.frame,
    )


class RejectedLog:
    """The ``rejected`` table of an inbox database; the inbox writes it with its messages."""

    def __init__(self, conn: sqlite3.Connection, *, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        """Use ``conn`` (already holding the table): :attr:`InboxStore.rejected` does."""
        if max_rows < 1:
            raise errors.UsageError("the rejected table keeps at least one row")
        self._conn = conn
        self._max_rows = max_rows

    @staticmethod
    def validate(items: list[RejectedDelivery]) -> list[tuple[object, ...]]:
        """Check every item before anything is written; the rows :meth:`record_rows` takes."""
        return [_checked(item) for item in items]

    def record_rows(self, rows: list[tuple[object, ...]]) -> int:
        """Insert validated rows inside a transaction the caller holds; returns how many were
        new (a row whose position is already recorded is left as it was). Past ``max_rows``,
        the oldest rows go, counted in ``rejected_pruned``."""
        added = 0
        for row in rows:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO rejected (topic, partition, record_offset, message_id, "
                "sender, case_id, identified_by, reason_code, reason, rejected_at, frame_size, "
                "frame_sha256, frame) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            added += cursor.rowcount
        if added:
            excess = len(self) - self._max_rows
            if excess > 0:
                newest_dropped = self._conn.execute(
                    "SELECT id FROM rejected ORDER BY id LIMIT 1 OFFSET ?", (excess - 1,)
                ).fetchone()[0]
                # the batch's own time (rejected_at): the store never reads the clock
                at = max(int(str(row[9])) for row in rows)
                self._drop("id <= ?", (newest_dropped,), at_micros=at)
        return added

    def prune(self, *, older_than: dt.datetime, now: dt.datetime) -> int:
        """Drop the rows rejected before ``older_than`` (counted in ``rejected_pruned``) and
        return how many went. Call it inside no transaction: it holds its own."""
        with transaction(self._conn, what="prune rejected deliveries"):
            return self._drop(
                "rejected_at < ?",
                (to_micros(older_than, name="older_than"),),
                at_micros=to_micros(now, name="now"),
            )

    def pruned(self) -> dict[str, int]:
        """How many refusals were pruned from the table so far, by reason code."""
        rows = self._conn.execute("SELECT reason_code, rows FROM rejected_pruned ORDER BY 1")
        return {code: int(count) for code, count in rows}

    def _drop(self, where: str, params: tuple[object, ...], *, at_micros: int) -> int:
        counts = self._conn.execute(
            f"SELECT reason_code, count(*) FROM rejected WHERE {where} GROUP BY 1",  # noqa: S608
            params,
        ).fetchall()
        if not counts:
            return 0
        self._conn.execute(f"DELETE FROM rejected WHERE {where}", params)  # noqa: S608
        self._conn.executemany(
            "INSERT INTO rejected_pruned (reason_code, rows, last_pruned_at) VALUES (?, ?, ?) "
            "ON CONFLICT (reason_code) DO UPDATE SET rows = rows + excluded.rows, "
            "last_pruned_at = excluded.last_pruned_at",
            [(code, count, at_micros) for code, count in counts],
        )
        return sum(int(count) for _, count in counts)

    def list(self, *, limit: int = 1000) -> tuple[Rejection, ...]:
        """Recorded refusals, oldest first, without their frames."""
        if not 1 <= limit <= 100_000:
            raise errors.UsageError("limit must be between 1 and 100000")
        query = f"SELECT {_COLUMNS} FROM rejected ORDER BY id LIMIT ?"  # noqa: S608
        return tuple(_row(row, None) for row in self._conn.execute(query, (limit,)))

    def get(self, rejection_id: int) -> Rejection:
        """One recorded refusal with the bytes kept of its frame."""
        query = f"SELECT {_COLUMNS}, frame FROM rejected WHERE id = ?"  # noqa: S608
        row = self._conn.execute(query, (rejection_id,)).fetchone()
        if row is None:
            raise errors.UsageError(f"no rejected delivery {rejection_id}")
        return _row(row[:-1], bytes(row[-1]))

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM rejected").fetchone()[0])


def _row(row: Sequence[Any], frame: bytes | None) -> Rejection:
    (rid, topic, partition, offset, mid, sender, case, by, code, reason, at, size, digest) = row
    return Rejection(
        id=rid,
        topic=topic,
        partition=partition,
        offset=offset,
        message_id=mid,
        sender=sender,
        case_id=case,
        identified_by=by,
        reason_code=code,
        reason=reason,
        rejected_at=from_micros(at),
        frame_size=size,
        frame_sha256=bytes(digest),
        frame=frame,
    )
