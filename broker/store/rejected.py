"""Deliveries the receiving adapter refused, kept in the inbox database so none vanishes.

A delivery the gateway let through can still be refused by its recipient (a sender key
revoked under the recipient's newer registry, a bad attestation, a label mismatch). Each
refusal is one row: where the frame was read (topic, partition, offset), what is known of the
message, the reason, and the frame's bytes (at most the bound the caller applies), written in
the SAME transaction as the batch's accepted messages, so it is durable before the offset is
committed. A row per (topic, partition, offset): a frame delivered again after a crash before
the commit is not recorded twice.

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
from broker.store._sqlite import from_micros, to_micros

__all__ = ["MAX_REASON_CHARS", "IdentifiedBy", "RejectedDelivery", "RejectedLog", "Rejection"]

IdentifiedBy = Literal["envelope", "attestation"]

#: a reason longer than this is cut: it may quote attacker-controlled input
MAX_REASON_CHARS = 2_000
_MAX_FIELD_CHARS = 128
_REASON_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_COLUMNS = (
    "id, topic, partition, record_offset, message_id, sender, case_id, identified_by, "
    "reason_code, reason, rejected_at, frame_size, frame_sha256"
)

SCHEMA = (
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
        hashlib.sha256(item.frame).digest(),
        item.frame,
    )


class RejectedLog:
    """The ``rejected`` table of an inbox database; the inbox writes it with its messages."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        """Use ``conn`` (already holding the table): :attr:`InboxStore.rejected` does."""
        self._conn = conn

    @staticmethod
    def validate(items: list[RejectedDelivery]) -> list[tuple[object, ...]]:
        """Check every item before anything is written; the rows :meth:`record_rows` takes."""
        return [_checked(item) for item in items]

    def record_rows(self, rows: list[tuple[object, ...]]) -> int:
        """Insert validated rows inside a transaction the caller holds; returns how many were
        new (a row whose position is already recorded is left as it was)."""
        added = 0
        for row in rows:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO rejected (topic, partition, record_offset, message_id, "
                "sender, case_id, identified_by, reason_code, reason, rejected_at, frame_size, "
                "frame_sha256, frame) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            added += cursor.rowcount
        return added

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
