"""How many refusals of each outbox the gateway has audited one by one in the current hour.

Every refusal is quarantined (a bounded record on a topic with a retention), but its audit
record stays on the audit topic for ever. So a partner that floods its outbox with junk
would make the audit log grow without bound. Per outbox and UTC hour, the first
``per_window`` refusals get an audit record each; the rest are counted here (by reason code,
with their positions and a running digest), and once the hour is over the gateway writes ONE
signed summary record for them (:func:`broker.pipeline.summarize_refusals`).

The counts live in the gateway's SQLite store and change inside the batch's transaction, so
a crash neither loses a count nor counts a refusal whose batch is read again. Several gateway
instances each count what they read (a threshold per instance).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import sqlite3

from broker import errors
from broker.store._sqlite import from_micros, to_micros

__all__ = ["RefusalWindow", "RefusalWindows"]

_HOUR = dt.timedelta(hours=1)
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS refusal_windows (
        outbox TEXT NOT NULL,
        window_start INTEGER NOT NULL,
        audited INTEGER NOT NULL,
        summarized INTEGER NOT NULL,
        by_reason TEXT NOT NULL,
        offsets TEXT NOT NULL,
        digest BLOB NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (outbox, window_start)
    )""",
)


@dataclasses.dataclass(frozen=True, slots=True)
class RefusalWindow:
    """The refusals of one outbox in one hour that were counted rather than audited singly."""

    outbox: str
    start: dt.datetime
    audited: int
    summarized: int
    by_reason: dict[str, int]
    #: partition -> (first offset, last offset) of the summarized records
    offsets: dict[int, tuple[int, int]]
    #: SHA-256 over the SHA-256 of every summarized value, in the order they were refused
    digest: bytes
    bytes: int

    @property
    def end(self) -> dt.datetime:
        """When the hour ends."""
        return self.start + _HOUR


class RefusalWindows:
    """The hourly refusal counts in the gateway's store (all writes inside the caller's
    transaction: the batch's)."""

    def __init__(self, conn: sqlite3.Connection, *, per_window: int) -> None:
        """Use ``conn``, creating the table if it is not there yet."""
        if per_window < 0:
            raise errors.UsageError("the refusals audited one by one per hour cannot be negative")
        self._conn = conn
        self._per_window = per_window
        for statement in _SCHEMA:
            conn.execute(statement)

    def admit(self, outbox: str, *, at: dt.datetime) -> bool:
        """Count one refusal of ``outbox``; True if it gets its own audit record."""
        start = _window_of(at)
        row = self._conn.execute(
            "SELECT audited FROM refusal_windows WHERE outbox = ? AND window_start = ?",
            (outbox, start),
        ).fetchone()
        if row is None:
            self._conn.execute(
                "INSERT INTO refusal_windows VALUES (?, ?, 0, 0, '{}', '{}', ?, 0)",
                (outbox, start, b""),
            )
        elif row[0] >= self._per_window:
            return False
        self._conn.execute(
            "UPDATE refusal_windows SET audited = audited + 1 "
            "WHERE outbox = ? AND window_start = ?",
            (outbox, start),
        )
        return True

    def summarize(
        self,
        outbox: str,
        *,
        at: dt.datetime,
        reason_code: str,
        partition: int,
        offset: int,
        value_sha256: bytes,
        size: int,
    ) -> None:
        """Count one refusal :meth:`admit` turned down, for the hour's summary."""
        start = _window_of(at)
        by_reason_text, offsets_text, digest = self._conn.execute(
            "SELECT by_reason, offsets, digest FROM refusal_windows "
            "WHERE outbox = ? AND window_start = ?",
            (outbox, start),
        ).fetchone()
        by_reason = json.loads(by_reason_text)
        by_reason[reason_code] = by_reason.get(reason_code, 0) + 1
        offsets = json.loads(offsets_text)
        first, last = offsets.get(str(partition), (offset, offset))
        offsets[str(partition)] = (min(first, offset), max(last, offset))
        chained = hashlib.sha256(bytes(digest) + value_sha256).digest()
        self._conn.execute(
            "UPDATE refusal_windows SET summarized = summarized + 1, by_reason = ?, offsets = ?, "
            "digest = ?, bytes = bytes + ? WHERE outbox = ? AND window_start = ?",
            (
                json.dumps(by_reason, sort_keys=True),
                json.dumps(offsets, sort_keys=True),
                chained,
                size,
                outbox,
                start,
            ),
        )

    def any_closed(self, *, now: dt.datetime) -> bool:
        """Whether some hour already over still has a window (cheap: for an idle loop)."""
        row = self._conn.execute(
            "SELECT 1 FROM refusal_windows WHERE window_start < ? LIMIT 1", (_window_of(now),)
        ).fetchone()
        return row is not None

    def closed(self, *, now: dt.datetime) -> list[RefusalWindow]:
        """The windows of hours already over (oldest first), for their summaries."""
        rows = self._conn.execute(
            "SELECT outbox, window_start, audited, summarized, by_reason, offsets, digest, bytes "
            "FROM refusal_windows WHERE window_start < ? ORDER BY window_start, outbox",
            (_window_of(now),),
        ).fetchall()
        return [
            RefusalWindow(
                outbox=outbox,
                start=from_micros(start),
                audited=audited,
                summarized=summarized,
                by_reason=json.loads(by_reason),
                offsets={int(p): (int(a), int(b)) for p, (a, b) in json.loads(offsets).items()},
                digest=bytes(digest),
                bytes=size,
            )
            for outbox, start, audited, summarized, by_reason, offsets, digest, size in rows
        ]

    def forget(self, windows: list[RefusalWindow]) -> None:
        """Drop windows whose summaries are written (or that had nothing to summarize)."""
        self._conn.executemany(
            "DELETE FROM refusal_windows WHERE outbox = ? AND window_start = ?",
            [(w.outbox, to_micros(w.start)) for w in windows],
        )


def _window_of(at: dt.datetime) -> int:
    """The start of ``at``'s UTC hour, in microseconds."""
    start = at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return to_micros(start, name="refusal time")
