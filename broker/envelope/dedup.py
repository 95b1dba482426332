"""A durable de-duplication store in SQLite, for gateways and receiving adapters."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from broker.ids import MessageId

__all__ = ["SqliteDedupStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    message_id TEXT PRIMARY KEY,
    digest BLOB NOT NULL,
    expires_unix REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_expires ON seen (expires_unix);
"""


class SqliteDedupStore:
    """Message id -> envelope digest, kept until expiry; each insert is committed at once."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def remember(
        self, message_id: MessageId, digest: bytes, *, expires: dt.datetime
    ) -> bytes | None:
        """Store the digest if the id is new and return None; else return the stored digest."""
        inserted = self._db.execute(
            "INSERT OR IGNORE INTO seen (message_id, digest, expires_unix) VALUES (?, ?, ?)",
            (message_id, digest, expires.timestamp()),
        ).rowcount
        if inserted == 1:
            return None
        row = self._db.execute(
            "SELECT digest FROM seen WHERE message_id = ?", (message_id,)
        ).fetchone()
        return bytes(row[0])

    def purge(self, *, now: dt.datetime) -> int:
        """Forget entries that expired before ``now``; return how many."""
        return self._db.execute(
            "DELETE FROM seen WHERE expires_unix < ?", (now.timestamp(),)
        ).rowcount

    def close(self) -> None:
        """Close the database."""
        self._db.close()
