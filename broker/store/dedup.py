"""The de-duplication record: which (message id, recipient) pairs were seen, with which digest.

Kafka delivers at least once, so the same envelope can arrive twice; an attacker can also
replay an old envelope or reuse a message id for different content. One atomic
check-and-record tells the three apart:

========================  ===================  ==============================================
same id and recipient      digest               verdict
========================  ===================  ==============================================
never seen (or expired)    any                  ``"new"``: recorded
seen                       the same             ``"duplicate"``: benign redelivery, counted
seen                       different            ``"conflict"``: a security alert, counted
========================  ===================  ==============================================

Entries live for the retention window, which must exceed the envelope acceptance window (max
age plus clock skew) so that anything old enough to be forgotten is already refused as stale.
An expired entry counts as absent whether or not :meth:`DedupStore.prune` has run yet, so the
verdicts never depend on when pruning happened; pruning only bounds the size.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sqlite3
from typing import Literal

from broker import errors
from broker.ids import MessageId, PartnerCode, parse_message_id, partner_code
from broker.store._sqlite import open_database, to_micros, transaction

__all__ = ["DIGEST_BYTES", "DedupCounters", "DedupStore", "DedupVerdict"]

DedupVerdict = Literal["new", "duplicate", "conflict"]

#: digests are SHA-256 of the envelope bytes
DIGEST_BYTES = 32

SCHEMA = (
    """CREATE TABLE dedup (
        message_id TEXT NOT NULL,
        recipient TEXT NOT NULL,
        digest BLOB NOT NULL,
        first_seen INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (message_id, recipient)
    ) WITHOUT ROWID""",
    "CREATE INDEX dedup_expiry ON dedup (expires_at)",
    "CREATE TABLE dedup_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO dedup_counters VALUES ('duplicates', 0), ('conflicts', 0)",
)


@dataclasses.dataclass(frozen=True)
class DedupCounters:
    """How many duplicates and conflicts were seen since the store was created."""

    duplicates: int
    conflicts: int


class DedupStore:
    """A durable, bounded de-duplication record in one SQLite file (or inside another store).

    Open a standalone one with :meth:`open`; :class:`~broker.store.InboxStore` embeds one in
    its own database so the record and the stored message commit together.
    """

    def __init__(self, conn: sqlite3.Connection, *, retention: dt.timedelta) -> None:
        """Use ``conn`` (already holding the dedup tables); prefer :meth:`open`."""
        if retention <= dt.timedelta(0):
            raise errors.UsageError("the de-duplication retention must be positive")
        self._conn = conn
        self._retention_us = retention // dt.timedelta(microseconds=1)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, retention: dt.timedelta) -> DedupStore:
        """Open or create the standalone de-duplication database at ``path`` (mode 0600)."""
        if retention <= dt.timedelta(0):
            raise errors.UsageError("the de-duplication retention must be positive")
        conn = open_database(path, schema=SCHEMA, version=1, kind="de-duplication store")
        return cls(conn, retention=retention)

    def close(self) -> None:
        """Close the connection; committed entries are already durable."""
        self._conn.close()

    def __enter__(self) -> DedupStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def check_and_record(
        self, message_id: str, recipient: str, digest: bytes, *, now: dt.datetime
    ) -> DedupVerdict:
        """Classify this arrival and record it, atomically (see the module's table)."""
        with transaction(self._conn, what="record a message id"):
            return self.check_and_record_in_transaction(message_id, recipient, digest, now=now)

    def check_and_record_in_transaction(
        self, message_id: str, recipient: str, digest: bytes, *, now: dt.datetime
    ) -> DedupVerdict:
        """As :meth:`check_and_record`, inside a transaction the caller holds and commits."""
        verdict = self.classify(message_id, recipient, digest, now=now)
        self.record_in_transaction(message_id, recipient, digest, verdict, now=now)
        return verdict

    def classify(
        self, message_id: str, recipient: str, digest: bytes, *, now: dt.datetime
    ) -> DedupVerdict:
        """What this arrival would be, recording nothing (see the module's table)."""
        mid, rcpt = _message_id(message_id), _recipient(recipient)
        if len(digest) != DIGEST_BYTES:
            raise errors.UsageError(f"a message digest is {DIGEST_BYTES} bytes (SHA-256)")
        row = self._conn.execute(
            "SELECT digest FROM dedup WHERE message_id = ? AND recipient = ? AND expires_at > ?",
            (mid, rcpt, to_micros(now, name="now")),
        ).fetchone()
        if row is None:
            return "new"
        return "duplicate" if bytes(row[0]) == digest else "conflict"

    def record_in_transaction(
        self,
        message_id: str,
        recipient: str,
        digest: bytes,
        verdict: DedupVerdict,
        *,
        now: dt.datetime,
    ) -> None:
        """Record what :meth:`classify` found, inside a transaction the caller holds: a new
        arrival is remembered, a duplicate or conflict counted."""
        if verdict == "new":
            now_us = to_micros(now, name="now")
            self._conn.execute(
                "INSERT OR REPLACE INTO dedup VALUES (?, ?, ?, ?, ?)",
                (
                    _message_id(message_id),
                    _recipient(recipient),
                    digest,
                    now_us,
                    now_us + self._retention_us,
                ),
            )
            return
        counter = "duplicates" if verdict == "duplicate" else "conflicts"
        self._conn.execute("UPDATE dedup_counters SET value = value + 1 WHERE name = ?", (counter,))

    def prune(self, now: dt.datetime) -> int:
        """Delete every entry expired at ``now``; return how many were deleted."""
        now_us = to_micros(now, name="now")
        with transaction(self._conn, what="prune the de-duplication record"):
            cursor = self._conn.execute("DELETE FROM dedup WHERE expires_at <= ?", (now_us,))
            return cursor.rowcount

    def __len__(self) -> int:
        """How many entries are held (expired ones not yet pruned included)."""
        return int(self._conn.execute("SELECT count(*) FROM dedup").fetchone()[0])

    @property
    def counters(self) -> DedupCounters:
        """Duplicates and conflicts seen, durable across restarts."""
        values = dict(self._conn.execute("SELECT name, value FROM dedup_counters").fetchall())
        return DedupCounters(duplicates=values["duplicates"], conflicts=values["conflicts"])


def _message_id(value: str) -> MessageId:
    try:
        return parse_message_id(value)
    except (ValueError, TypeError) as exc:
        raise errors.UsageError(f"message id {value!r} is not a UUIDv7") from exc


def _recipient(value: str) -> PartnerCode:
    try:
        return partner_code(value)
    except (ValueError, TypeError) as exc:
        raise errors.UsageError(f"recipient {value!r} is not a partner code") from exc
