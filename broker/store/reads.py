"""Who read which received message, and when: the inbox's read log (DPA 2018 s.62 asks that
consultation and disclosure be logged with their date, time and, as far as possible, the
person).

Every command that shows a message's content to a person (``inbox show``, ``inbox export``,
``disclose``) adds one row per message, in its own transaction, *before* the content is
printed or written: a read that could not be logged does not happen. The reader is the
authenticated officer (``<id> (<agency>, <unit>)``, :mod:`broker.store.officers`), or, on an
adapter with no officers, the operating-system account that ran the command. Rows hold no
content and outlive the message they name (a shredded message's reads stay on record). They
are few (a person's reads), so the table is not pruned.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Iterable
from typing import Final, Literal

from broker.store._sqlite import from_micros, to_micros, transaction

__all__ = ["SCHEMA", "Read", "ReadAction", "ReadLog"]

#: what a person did with the content
ReadAction = Literal["show", "export", "disclose"]
#: an officer's label at its longest: a 64-character id and two 120-character names
_MAX_READER = 320

SCHEMA: Final = (
    """CREATE TABLE reads (
        message_id TEXT NOT NULL,
        read_at INTEGER NOT NULL,
        reader TEXT NOT NULL,
        action TEXT NOT NULL
    )""",
    "CREATE INDEX reads_message ON reads (message_id, read_at)",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Read:
    """One logged read of a message."""

    message_id: str
    read_at: dt.datetime
    reader: str
    action: str


class ReadLog:
    """The ``reads`` table of an inbox database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def note(
        self, message_ids: Iterable[str], *, reader: str, action: ReadAction, now: dt.datetime
    ) -> None:
        """Log that ``reader`` did ``action`` with each of ``message_ids`` at ``now``."""
        rows = [(mid, to_micros(now), reader[:_MAX_READER], action) for mid in message_ids]
        if rows:
            with transaction(self._conn, what="log a read"):
                self._conn.executemany("INSERT INTO reads VALUES (?, ?, ?, ?)", rows)

    def between(self, since: dt.datetime, until: dt.datetime) -> tuple[Read, ...]:
        """Every read logged at or after ``since`` and before ``until``, oldest first."""
        rows = self._conn.execute(
            "SELECT message_id, read_at, reader, action FROM reads "
            "WHERE read_at >= ? AND read_at < ? ORDER BY read_at, rowid",
            (to_micros(since), to_micros(until)),
        ).fetchall()
        return tuple(Read(str(m), from_micros(int(at)), str(r), str(a)) for m, at, r, a in rows)

    def of(self, message_id: str) -> tuple[Read, ...]:
        """Every logged read of ``message_id``, oldest first."""
        rows = self._conn.execute(
            "SELECT message_id, read_at, reader, action FROM reads WHERE message_id = ? "
            "ORDER BY read_at",
            (message_id,),
        ).fetchall()
        return tuple(Read(str(m), from_micros(int(at)), str(r), str(a)) for m, at, r, a in rows)
