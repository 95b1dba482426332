"""The send journal: sealed envelopes wait here, durably, until Kafka has acknowledged them.

A submission is journalled in one transaction (every envelope plus the name of its source),
before anything is produced. The sender then produces each pending envelope with ``acks=all``
and deletes it only once acknowledged; a timeout leaves it pending, and it is produced again
later with the *same bytes*, so a crash or an ambiguous send can lead to a duplicate (which
the gateway and the receiver drop by message id and digest) but never to a loss or to two
different envelopes for one view. The ``sources`` table remembers which spool files and
receipts were already journalled, so a crash between journalling and moving a spool file
does not seal the submission a second time under new ids. Each pending envelope names its
source too, so the adapter knows when every view of a spool file has been acknowledged and
its plaintext copy in ``sent/`` can go; the ``views`` table (:mod:`broker.adapter.fates`)
remembers what became of each view after it left the queue, for ``broker status``.

SQLite in WAL mode with ``synchronous=FULL``; the file is created mode 0600.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from broker import errors
from broker.adapter import fates
from broker.adapter.fates import Acknowledged, Receipted, ViewFate, ViewRefusal
from broker.envelope import Origin
from broker.ids import MessageId, PartnerCode
from broker.pipeline.notice import VerifiedNotice
from broker.schema.handling import HandlingCondition
from broker.schema.labels import Labels
from broker.store import open_database

__all__ = ["JournalEntry", "Sealed", "SendJournal"]

#: version 2 names each pending envelope's source, version 3 keeps each view's fate, version 4
#: each view's markings and the grant an onward forward travels with, version 5 what the
#: gateway's notice said of a quarantined view, version 6 the officer who submitted each view,
#: version 7 the officer who released it, version 8 its handling conditions
_VERSION = 8
_SOURCE_INDEX = "CREATE INDEX pending_source ON pending (source)"
#: a Kafka header the gateway reads beside an envelope (name, value): a forward's grant, the
#: id a receipt acknowledges
_GATEWAY_HEADER_COLUMNS = (
    "ALTER TABLE pending ADD COLUMN gateway_header_name TEXT",
    "ALTER TABLE pending ADD COLUMN gateway_header BLOB",
)
_SCHEMA = (
    """CREATE TABLE pending (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id TEXT NOT NULL UNIQUE,
        recipient TEXT NOT NULL,
        topic TEXT NOT NULL,
        envelope BLOB NOT NULL,
        journalled_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        source TEXT
    )""",
    *_GATEWAY_HEADER_COLUMNS,
    "CREATE TABLE sources (source TEXT PRIMARY KEY, recorded_at INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX sources_age ON sources (recorded_at)",
    _SOURCE_INDEX,
    *fates.SCHEMA,
    *fates.MARKINGS_SCHEMA,
    *fates.QUARANTINE_SCHEMA,
    *fates.ORIGIN_SCHEMA,
    *fates.APPROVER_SCHEMA,
    *fates.CONDITIONS_SCHEMA,
)
_MIGRATIONS = {
    1: ("ALTER TABLE pending ADD COLUMN source TEXT", _SOURCE_INDEX),
    2: fates.SCHEMA,
    3: (*fates.MARKINGS_SCHEMA, *_GATEWAY_HEADER_COLUMNS),
    4: fates.QUARANTINE_SCHEMA,
    5: fates.ORIGIN_SCHEMA,
    6: fates.APPROVER_SCHEMA,
    7: fates.CONDITIONS_SCHEMA,
}


Entry = tuple[MessageId, PartnerCode, str, bytes]
"""What :meth:`SendJournal.record` takes: ``(message_id, recipient, topic, envelope)``."""


@dataclasses.dataclass(frozen=True, slots=True)
class Sealed:
    """What sealing knew of a view besides its envelope."""

    #: the signed labels and case id (kept with the view's fate)
    labels: Labels
    case_id: str | None = None
    #: the Kafka header produced beside it for the gateway, if any (name, value)
    gateway_header: tuple[str, bytes] | None = None
    #: the officer its signed header names as having submitted it, if any
    origin: Origin | None = None
    #: the second officer who released it (four-eyes release), if any
    approver: str | None = None
    #: its handling conditions, as sealed
    conditions: tuple[HandlingCondition, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class JournalEntry:
    """One sealed envelope waiting for its acknowledgement."""

    message_id: MessageId
    recipient: PartnerCode
    topic: str
    envelope: bytes = dataclasses.field(repr=False)
    attempts: int
    #: the spool file or receipt it was sealed from, if any
    source: str | None = None
    #: the Kafka header it is produced with for the gateway, if any (name, value)
    gateway_header: tuple[str, bytes] | None = dataclasses.field(default=None, repr=False)


_micros = fates.micros


class SendJournal:
    """The durable queue between sealing and Kafka's acknowledgement."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        """Use an open connection holding the journal tables; prefer :meth:`open`."""
        self._conn = conn

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> SendJournal:
        """Open or create the journal at ``path`` (mode 0600), upgrading an older one; with
        ``create=False`` (the commands that only read it) a missing journal is a
        :class:`errors.UsageError`."""
        if not create and not Path(path).exists():
            raise errors.UsageError(f"{path}: no send journal yet (has the adapter run?)")
        conn = open_database(
            path, schema=_SCHEMA, version=_VERSION, kind="send journal", migrations=_MIGRATIONS
        )
        # It holds sealed envelopes only: nothing freed needs overwriting, and overwriting
        # would write every acknowledged byte a second time (a third slower per batch).
        conn.execute("PRAGMA secure_delete=OFF")
        return cls(conn)

    def close(self) -> None:
        """Close the database; what was journalled is already durable."""
        self._conn.close()

    def __enter__(self) -> SendJournal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def record(
        self,
        entries: Sequence[Entry],
        *,
        source: str | None,
        now: dt.datetime,
    ) -> bool:
        """Journal ``(message_id, recipient, topic, envelope)`` entries in one transaction.

        With a ``source``, the entries are recorded only if that source was never recorded
        before; returns False (and records nothing) for a source already journalled.
        """
        return self.record_many([(source, entries)], now=now)[0]

    def record_many(
        self,
        submissions: Sequence[tuple[str | None, Sequence[Entry]]],
        *,
        now: dt.datetime,
        sealed: Mapping[MessageId, Sealed] | None = None,
        covers: Mapping[str, Sequence[str]] | None = None,
    ) -> list[bool]:
        """Journal several ``(source, entries)`` submissions in ONE transaction (one fsync).

        Each submission behaves as :meth:`record` would (a source already journalled, before
        or earlier in the same call, records nothing and yields False), and either every
        submission is journalled or, on an error, none is. ``sealed`` says what sealing knew
        of each view: its markings, kept with its fate (what a withdrawal repeats), and a
        header the gateway reads beside it, kept with its envelope until Kafka acknowledges it.
        ``covers`` names, per source, further sources journalled with it: a batch receipt is
        the receipt of every view it acknowledges, so none of them is receipted again.
        """
        stamp = _micros(now)
        known, extra = sealed or {}, covers or {}
        recorded: list[bool] = []
        rows: list[tuple[object, ...]] = []
        views: list[fates.Journalled] = []
        with _transaction(self._conn):
            for source, entries in submissions:
                if source is not None:
                    if self.has_source(source):
                        recorded.append(False)
                        continue
                    self._conn.execute("INSERT INTO sources VALUES (?, ?)", (source, stamp))
                    self._conn.executemany(
                        "INSERT OR IGNORE INTO sources VALUES (?, ?)",
                        [(also, stamp) for also in extra.get(source, ())],
                    )
                rows.extend(
                    (mid, rcpt, topic, env, stamp, source, *_gateway_header(known.get(mid)))
                    for mid, rcpt, topic, env in entries
                )
                views.extend(
                    fates.Journalled(mid, rcpt, source, *_markings(known.get(mid)))
                    for mid, rcpt, _, _ in entries
                )
                recorded.append(True)
            self._conn.executemany(
                "INSERT INTO pending (message_id, recipient, topic, envelope, journalled_at, "
                "source, gateway_header_name, gateway_header) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            fates.note_journalled(self._conn, views, now=now)
        return recorded

    def record_refusals(
        self, refusals: Sequence[ViewRefusal], *, source: str | None, now: dt.datetime
    ) -> None:
        """Remember recipients refused at sealing under the ids chosen for their views."""
        if refusals:
            with _transaction(self._conn):
                fates.note_refusals(self._conn, refusals, source=source, now=now)

    def record_receipts(self, receipts: Sequence[Receipted], *, now: dt.datetime) -> int:
        """Remember verified receipts against the views they acknowledge (see
        :func:`broker.adapter.fates.note_receipts`); returns how many matched a view."""
        if not receipts:
            return 0
        with _transaction(self._conn):
            return fates.note_receipts(self._conn, receipts, now=now)

    def record_quarantines(self, notices: Sequence[VerifiedNotice]) -> int:
        """Remember the gateway's verified notices against the views they name (see
        :func:`broker.adapter.fates.note_quarantines`); returns how many matched a view."""
        if not notices:
            return 0
        with _transaction(self._conn):
            return fates.note_quarantines(self._conn, notices)

    def fates_of(self, message_id: str) -> tuple[ViewFate, ...]:
        """The view ``message_id`` (or a unique prefix of it) names, with its siblings
        (:func:`broker.adapter.fates.find`)."""
        return fates.find(self._conn, message_id)

    def receipted(self) -> int:
        """How many views have their recipient's receipt."""
        return fates.receipted(self._conn)

    def latest_fates(
        self, *, limit: int, recipient: PartnerCode | None = None
    ) -> tuple[ViewFate, ...]:
        """The views recorded last, newest first (:func:`broker.adapter.fates.latest`)."""
        return fates.latest(self._conn, limit=limit, recipient=recipient)

    def sealed_between(self, since: dt.datetime, until: dt.datetime) -> tuple[ViewFate, ...]:
        """The views sealed in ``[since, until)``, oldest first
        (:func:`broker.adapter.fates.sealed_between`)."""
        return fates.sealed_between(self._conn, since, until)

    def sealed_among(self, message_ids: Iterable[str]) -> set[str]:
        """Those of ``message_ids`` this adapter already sealed a view under (journalled,
        whether or not Kafka has acknowledged it since)."""
        wanted = list(message_ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT message_id FROM views WHERE journalled_at IS NOT NULL "  # noqa: S608 - placeholders only
                f"AND message_id IN ({marks}) "
                f"UNION SELECT message_id FROM pending WHERE message_id IN ({marks})",
                (*chunk, *chunk),
            ).fetchall()
            found.update(str(row[0]) for row in rows)
        return found

    def has_source(self, source: str) -> bool:
        """Whether ``source`` (a spool file or a receipt) was already journalled."""
        row = self._conn.execute("SELECT 1 FROM sources WHERE source = ?", (source,)).fetchone()
        return row is not None

    def pending(self, *, limit: int = 100) -> tuple[JournalEntry, ...]:
        """The oldest unacknowledged envelopes, in the order they were journalled."""
        rows = self._conn.execute(
            "SELECT message_id, recipient, topic, envelope, attempts, source, "
            "gateway_header_name, gateway_header FROM pending ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return tuple(
            JournalEntry(
                MessageId(m),
                PartnerCode(r),
                t,
                bytes(e),
                a,
                src,
                None if name is None else (str(name), bytes(value)),
            )
            for m, r, t, e, a, src, name, value in rows
        )

    def settled(self, source: str) -> bool:
        """Whether nothing sealed from ``source`` waits for an acknowledgement any more.

        Envelopes journalled by version 1 name no source; while any of them waits, no
        source counts as settled (it might be one of them).
        """
        row = self._conn.execute(
            "SELECT 1 FROM pending WHERE source = ? OR source IS NULL LIMIT 1", (source,)
        ).fetchone()
        return row is None

    def attempted(self, message_id: MessageId) -> None:
        """Count one send attempt that ended without a definite answer."""
        self.attempted_many([message_id])

    def attempted_many(self, message_ids: Sequence[MessageId]) -> None:
        """Count one inconclusive attempt for each of ``message_ids``, in one transaction."""
        if message_ids:
            with _transaction(self._conn):
                self._conn.executemany(
                    "UPDATE pending SET attempts = attempts + 1 WHERE message_id = ?",
                    [(mid,) for mid in message_ids],
                )

    def acknowledge(self, acknowledged: Acknowledged, *, now: dt.datetime) -> None:
        """Kafka acknowledged the envelope: forget it, and note where it went."""
        self.acknowledge_many([acknowledged], now=now)

    def acknowledge_many(self, acknowledged: Sequence[Acknowledged], *, now: dt.datetime) -> None:
        """Kafka acknowledged every one of ``acknowledged``: forget them in one transaction
        (one fsync per batch of sends instead of one per envelope)."""
        if acknowledged:
            with _transaction(self._conn):
                self._conn.executemany(
                    "DELETE FROM pending WHERE message_id = ?",
                    [(a.message_id,) for a in acknowledged],
                )
                fates.note_acknowledged(self._conn, acknowledged, now=now)

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM pending").fetchone()[0])

    def prune_sources(self, *, older_than: dt.datetime) -> int:
        """Forget sources recorded before ``older_than``; bounds the table's size."""
        cursor = self._conn.execute(
            "DELETE FROM sources WHERE recorded_at < ?", (_micros(older_than),)
        )
        return cursor.rowcount

    def prune_fates(
        self, *, older_than: dt.datetime, max_rows: int = fates.DEFAULT_MAX_ROWS
    ) -> int:
        """Forget the fates of views recorded before ``older_than``, and the oldest past
        ``max_rows``; bounds the table's size."""
        with _transaction(self._conn):
            return fates.prune(self._conn, older_than=older_than, max_rows=max_rows)


def _gateway_header(sealed: Sealed | None) -> tuple[str | None, bytes | None]:
    if sealed is None or sealed.gateway_header is None:
        return None, None
    return sealed.gateway_header


def _markings(
    sealed: Sealed | None,
) -> tuple[
    Labels | None, str | None, Origin | None, str | None, tuple[HandlingCondition, ...] | None
]:
    if sealed is None:
        return None, None, None, None, None
    return sealed.labels, sealed.case_id, sealed.origin, sealed.approver, sealed.conditions


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
