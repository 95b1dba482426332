"""The receiving adapter's inbox: verified messages, encrypted at rest, crypto-shredded on time.

Each message is sealed under its own random 256-bit key with an AEAD whose associated data
binds the ciphertext to its message id and recipient (a ciphertext moved to another row does
not open). Keys live in their own table; retention is enforced by deleting a message's key
(``secure_delete`` overwrites it, and the write-ahead log is truncated) so the ciphertext that
remains is unreadable by anyone, the operator included. Only the labels and delivery metadata
are stored in the clear, so an inbox can still be listed and accounted for after shredding,
with the rule that decided each message's retention.

Beside each message its **evidence** (what a selective disclosure is built from: the delivery
frame with the sender's signature and the gateway's attestation, and the commitment salts) is
sealed under the same per-message key, so it is shredded with the content and nothing of it
outlives the message.

The database file holds both ciphertext and keys, so at-rest protection against theft of the
file itself is its mode (0600) and the host's disk encryption; what this layer guarantees is
that expired content is gone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from broker import errors
from broker.envelope import Origin
from broker.ids import CaseId, MessageId, PartnerCode, message_id_range
from broker.schema.labels import Labels, MessageType
from broker.store import dedup as _dedup
from broker.store import officers as _officers
from broker.store import reads as _reads
from broker.store import rejected as _rejected
from broker.store import search as _search
from broker.store._sqlite import from_micros, open_database, to_micros, transaction

__all__ = ["KEY_BYTES", "InboxItem", "InboxStore", "Sealer", "StoredMessage", "Withdrawn"]

#: per-message key size: ChaCha20-Poly1305 takes 256-bit keys
KEY_BYTES = 32
_AAD_DOMAIN = b"broker.store.inbox.v1\x00"
_EVIDENCE_AAD_DOMAIN = b"broker.store.evidence.v1\x00"
_MAX_CASE_ID = 128
_MAX_REASON = 2000
#: messages indexed per transaction by a search: well under a second of holding the database
_INDEX_CHUNK = 200
#: ids per ``IN (...)`` query: well under SQLite's limit on bound parameters
_IN_CHUNK = 500
_COLUMNS = (
    "message_id, sender, message_type, labels, case_id, received_at, retain_until, shredded_at, "
    "retention_rule, retention_reason, shred_reason, origin"
)
_EVIDENCE_SCHEMA = (
    """CREATE TABLE evidence (
        message_id TEXT PRIMARY KEY REFERENCES messages (message_id),
        sealed BLOB NOT NULL
    )""",
)

#: withdrawals and corrections as they arrived, by the view withdrawn and who withdrew it: one
#: that arrives before its view is applied when the view does (from that same sender only)
_WITHDRAWALS_SCHEMA = (
    """CREATE TABLE withdrawals (
        message_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        notice_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        replaced_by TEXT,
        recorded_at INTEGER NOT NULL,
        PRIMARY KEY (message_id, sender)
    ) WITHOUT ROWID""",
)

SCHEMA = (
    *_dedup.SCHEMA,
    """CREATE TABLE messages (
        message_id TEXT PRIMARY KEY,
        sender TEXT NOT NULL,
        message_type TEXT NOT NULL,
        labels TEXT NOT NULL,
        case_id TEXT,
        received_at INTEGER NOT NULL,
        retain_until INTEGER NOT NULL,
        shredded_at INTEGER,
        ciphertext BLOB NOT NULL,
        retention_rule TEXT,
        retention_reason TEXT,
        shred_reason TEXT,
        origin TEXT
    )""",
    "CREATE INDEX messages_retention ON messages (retain_until) WHERE shredded_at IS NULL",
    "CREATE INDEX messages_received ON messages (received_at, message_id)",
    """CREATE TABLE message_keys (
        message_id TEXT PRIMARY KEY REFERENCES messages (message_id),
        key BLOB NOT NULL
    ) WITHOUT ROWID""",
    *_EVIDENCE_SCHEMA,
    *_rejected.SCHEMA,
    *_search.SCHEMA,
    *_WITHDRAWALS_SCHEMA,
    *_reads.SCHEMA,
    *_officers.SCHEMA,
)
#: version 2 added the table of refused deliveries, version 3 the count of pruned ones,
#: version 4 each message's retention rule and evidence, version 5 the search index,
#: version 6 indexing after storing (the messages stored before the index was made are
#: then indexed too), version 7 withdrawals, version 8 the read log, version 9 the officers,
#: version 10 the sender's officer each message's signed header names (its origin)
_VERSION = 10
_MIGRATIONS = {
    1: _rejected.TABLE_SCHEMA,
    2: _rejected.PRUNED_SCHEMA,
    3: (
        "ALTER TABLE messages ADD COLUMN retention_rule TEXT",
        "ALTER TABLE messages ADD COLUMN retention_reason TEXT",
        "ALTER TABLE messages ADD COLUMN shred_reason TEXT",
        *_EVIDENCE_SCHEMA,
    ),
    4: _search.TERMS_SCHEMA,
    5: (
        *_search.PENDING_SCHEMA,
        "INSERT INTO search_pending SELECT message_id FROM messages WHERE shredded_at IS NULL "
        "AND message_id NOT IN (SELECT message_id FROM search_terms)",
    ),
    6: _WITHDRAWALS_SCHEMA,
    7: _reads.SCHEMA,
    8: _officers.SCHEMA,
    9: ("ALTER TABLE messages ADD COLUMN origin TEXT",),
}


class Sealer(Protocol):
    """An AEAD with caller-supplied keys (ChaCha20-Poly1305 via broker.crypto in production)."""

    def seal(self, key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` under ``key``; the nonce travels inside."""
        ...

    def open(self, key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
        """Reverse :meth:`seal`; raise :class:`errors.DecryptionError` on any mismatch."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class InboxItem:
    """One verified message for :meth:`InboxStore.put_many` (the arguments of ``put``)."""

    message_id: str
    sender: str
    labels: Labels
    case_id: str | None
    plaintext: bytes = dataclasses.field(repr=False)
    digest: bytes = dataclasses.field(repr=False)
    received_at: dt.datetime
    retain_until: dt.datetime
    #: which rule decided ``retain_until`` (``accord``, ``local``, ...), and that rule in words
    retention_rule: str | None = None
    retention_reason: str | None = None
    #: what a disclosure of the message is built from; sealed with the message, shredded
    #: with it (see :mod:`broker.pipeline.disclosure`)
    evidence: bytes | None = dataclasses.field(default=None, repr=False)
    #: the sender's officer its signed header names (header version 2), if any
    origin: Origin | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Withdrawn:
    """A verified withdrawal notice from ``sender``: view ``message_id`` is taken back."""

    message_id: str
    sender: str
    notice_id: str
    reason: str
    #: the view that corrects it, for a correction
    replaced_by: str | None = None


@dataclasses.dataclass(frozen=True)
class StoredMessage:
    """What the inbox knows about one message without decrypting it."""

    message_id: MessageId
    sender: PartnerCode
    message_type: MessageType
    labels: Labels
    case_id: CaseId | None
    received_at: dt.datetime
    retain_until: dt.datetime
    #: when the content's key was destroyed; ``None`` while it can still be read
    shredded_at: dt.datetime | None
    #: which rule decided ``retain_until``, and why; ``None`` for messages stored before
    #: the inbox kept them (version 3 and older: ``store.retention_days`` or the expiry)
    retention_rule: str | None = None
    retention_reason: str | None = None
    #: why the key was destroyed: retention, or an erasure and its reason
    shred_reason: str | None = None
    #: the sender's officer its signed header names (header version 2), if any
    origin: Origin | None = None


class InboxStore:
    """Durable inbox of one recipient, with its de-duplication record in the same database."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        recipient: str,
        sealer: Sealer,
        dedup_retention: dt.timedelta,
        max_rejected_rows: int = _rejected.DEFAULT_MAX_ROWS,
    ) -> None:
        """Use ``conn`` (already holding the inbox tables); prefer :meth:`open`."""
        self._conn = conn
        self._recipient = _dedup._recipient(recipient)
        self._sealer = sealer
        self._dedup = _dedup.DedupStore(conn, retention=dedup_retention)
        self._dedup_retention = dedup_retention
        self._rejected = _rejected.RejectedLog(conn, max_rows=max_rejected_rows)
        self._search = _search.SearchIndex(conn)
        self._reads = _reads.ReadLog(conn)
        self._officers = _officers.OfficerDirectory(conn)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        recipient: str,
        sealer: Sealer,
        dedup_retention: dt.timedelta,
        max_rejected_rows: int = _rejected.DEFAULT_MAX_ROWS,
    ) -> InboxStore:
        """Open or create the inbox database of ``recipient`` at ``path`` (mode 0600)."""
        conn = open_database(
            path, schema=SCHEMA, version=_VERSION, kind="inbox store", migrations=_MIGRATIONS
        )
        try:
            return cls(
                conn,
                recipient=recipient,
                sealer=sealer,
                dedup_retention=dedup_retention,
                max_rejected_rows=max_rejected_rows,
            )
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the connection; committed messages are already durable."""
        self._conn.close()

    def __enter__(self) -> InboxStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def dedup(self) -> _dedup.DedupStore:
        """The de-duplication record that :meth:`put` writes in the same transaction."""
        return self._dedup

    @property
    def reads(self) -> _reads.ReadLog:
        """Who read which message, and when (s.62)."""
        return self._reads

    @property
    def officers(self) -> _officers.OfficerDirectory:
        """The officers who use this adapter, their roles and credentials."""
        return self._officers

    @property
    def rejected(self) -> _rejected.RejectedLog:
        """The refused deliveries that :meth:`put_many` records in the same transaction."""
        return self._rejected

    def put(
        self,
        *,
        message_id: str,
        sender: str,
        labels: Labels,
        case_id: str | None,
        plaintext: bytes,
        digest: bytes,
        received_at: dt.datetime,
        retain_until: dt.datetime,
        retention_rule: str | None = None,
        retention_reason: str | None = None,
        evidence: bytes | None = None,
    ) -> _dedup.DedupVerdict:
        """Store a verified message once: ``"new"`` stores it; a redelivery of the same
        envelope (same digest) is ``"duplicate"`` and a different envelope reusing the id is
        ``"conflict"``, and neither changes the stored message. The de-duplication record and
        the message commit together or not at all.
        """
        item = InboxItem(
            message_id=message_id,
            sender=sender,
            labels=labels,
            case_id=case_id,
            plaintext=plaintext,
            digest=digest,
            received_at=received_at,
            retain_until=retain_until,
            retention_rule=retention_rule,
            retention_reason=retention_reason,
            evidence=evidence,
        )
        return self.put_many([item])[0]

    def put_many(
        self,
        items: Sequence[InboxItem],
        *,
        rejected: Sequence[_rejected.RejectedDelivery] = (),
    ) -> list[_dedup.DedupVerdict]:
        """As :meth:`put` for each item, in order, all in ONE transaction (one fsync), together
        with the batch's ``rejected`` deliveries (see :mod:`broker.store.rejected`).

        Every item and rejection is validated before anything is written; the verdicts are
        those :meth:`put` would give one after the other (a second copy in the same batch is a
        duplicate), and either every effect is committed or, on an error, none is.
        """
        checked = [self._checked(item) for item in items]
        refused = self._rejected.validate(list(rejected))
        if not checked and not refused:
            return []
        verdicts: list[_dedup.DedupVerdict] = []
        with transaction(self._conn, what="store messages"):
            for item, sender_code, received_us, retain_us in checked:
                verdicts.append(self._put_one(item, sender_code, received_us, retain_us))
            self._rejected.record_rows(refused)
        return verdicts

    def _checked(self, item: InboxItem) -> tuple[InboxItem, PartnerCode, int, int]:
        sender_code = _dedup._recipient(item.sender)
        if not isinstance(item.labels, Labels):
            raise errors.UsageError("labels must be a Labels model")
        case_id = item.case_id
        if case_id is not None and not (0 < len(case_id) <= _MAX_CASE_ID):
            raise errors.UsageError(f"a case id is 1 to {_MAX_CASE_ID} characters")
        if not isinstance(item.plaintext, bytes):
            raise errors.UsageError("plaintext must be bytes")
        if item.evidence is not None and not isinstance(item.evidence, bytes):
            raise errors.UsageError("evidence must be bytes")
        for text in (item.retention_rule, item.retention_reason):
            if text is not None and not 0 < len(text) <= _MAX_REASON:
                raise errors.UsageError(
                    f"a retention rule or reason is 1 to {_MAX_REASON} characters"
                )
        received_us = to_micros(item.received_at, name="received_at")
        retain_us = to_micros(item.retain_until, name="retain_until")
        if retain_us <= received_us:
            raise errors.UsageError("retain_until must be after received_at")
        return item, sender_code, received_us, retain_us

    def _put_one(
        self, item: InboxItem, sender_code: PartnerCode, received_us: int, retain_us: int
    ) -> _dedup.DedupVerdict:
        message_id = item.message_id
        verdict = self._dedup.check_and_record_in_transaction(
            message_id, self._recipient, item.digest, now=item.received_at
        )
        if verdict != "new":
            return verdict
        if self._conn.execute(
            "SELECT 1 FROM messages WHERE message_id = ?", (message_id,)
        ).fetchone():
            # The id outlived its de-duplication entry: keep the first copy untouched.
            return "duplicate"
        key = secrets.token_bytes(KEY_BYTES)
        sealed = self._sealer.seal(key, item.plaintext, aad=self._aad(message_id))
        self._conn.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, NULL, ?)",
            (
                message_id,
                sender_code,
                str(item.labels.message_type),
                item.labels.model_dump_json(),
                item.case_id,
                received_us,
                retain_us,
                sealed,
                item.retention_rule,
                item.retention_reason,
                None if item.origin is None else item.origin.model_dump_json(),
            ),
        )
        self._conn.execute("INSERT INTO message_keys VALUES (?, ?)", (message_id, key))
        if item.evidence is not None:
            evidence = self._sealer.seal(key, item.evidence, aad=self._evidence_aad(message_id))
            self._conn.execute("INSERT INTO evidence VALUES (?, ?)", (message_id, evidence))
        self._search.note_in_transaction(message_id)
        return verdict

    def get(self, message_id: str) -> bytes:
        """The plaintext of a stored message.

        Raises :class:`errors.UsageError` if there is no such message or it was shredded
        (saying when), and :class:`errors.DecryptionError` if it cannot be opened.
        """
        row = self._conn.execute(
            "SELECT m.ciphertext, m.shredded_at, m.retain_until, m.shred_reason, k.key "
            "FROM messages AS m LEFT JOIN message_keys AS k USING (message_id) "
            "WHERE m.message_id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            raise errors.UsageError(f"no message {message_id} in the inbox")
        sealed, shredded_at, retain_until, why, key = row
        if shredded_at is not None:
            why = why or f"under retention (kept until {from_micros(retain_until).isoformat()})"
            raise errors.UsageError(
                f"message {message_id} was shredded at {from_micros(shredded_at).isoformat()} {why}"
            )
        if key is None:
            raise errors.DecryptionError("a stored message could not be decrypted")
        return self._sealer.open(bytes(key), bytes(sealed), aad=self._aad(message_id))

    def index_pending(self, limit: int | None = None) -> int:
        """Index the words of up to ``limit`` stored messages not indexed yet (all with None),
        in one transaction; returns how many were taken off the pending list. A message
        that cannot be decrypted any more is taken off unindexed: nothing of it can match."""
        if not self._search.pending(1):
            return 0  # nothing waits: no write transaction
        with transaction(self._conn, what="index messages for search"):
            waiting = self._search.pending(limit)
            for message_id in waiting:
                try:
                    plaintext = self.get(message_id)
                except (errors.UsageError, errors.DecryptionError):
                    self._search.forget_in_transaction([message_id])
                    continue
                self._search.add_in_transaction(message_id, plaintext)
        return len(waiting)

    def evidence(self, message_id: str) -> bytes:
        """The evidence kept of a stored message (:attr:`InboxItem.evidence`).

        Raises :class:`errors.UsageError` if there is no such message, it was shredded, or it
        was stored without evidence (by an older version), and :class:`errors.DecryptionError`
        if it cannot be opened.
        """
        self.get(message_id)  # the same refusals as the content: unknown, shredded, unreadable
        row = self._conn.execute(
            "SELECT e.sealed, k.key FROM evidence AS e JOIN message_keys AS k USING (message_id) "
            "WHERE e.message_id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            raise errors.UsageError(
                f"message {message_id} was stored without its evidence (by an older version), "
                "so it cannot be disclosed"
            )
        sealed, key = row
        return self._sealer.open(bytes(key), bytes(sealed), aad=self._evidence_aad(message_id))

    def shredded_among(self, message_ids: Iterable[str]) -> set[MessageId]:
        """Which of ``message_ids`` are stored here and shredded (unknown ids are not)."""
        wanted = list(dict.fromkeys(message_ids))
        found: set[MessageId] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = (
                f"SELECT message_id FROM messages WHERE shredded_at IS NOT NULL "  # noqa: S608
                f"AND message_id IN ({marks})"
            )
            found |= {MessageId(row[0]) for row in self._conn.execute(query, chunk)}
        return found

    def resolve(self, prefix: str) -> MessageId:
        """The one stored message id that starts with ``prefix`` (a whole id, or at least
        :data:`~broker.ids.MIN_ID_PREFIX` of its characters). UsageError when none or several
        do, naming a few of them: ids begin with their time, so ids of one minute share a
        prefix."""
        try:
            low, high = message_id_range(prefix)
        except ValueError as exc:
            raise errors.UsageError(str(exc)) from None
        prefix = low
        rows = self._conn.execute(
            "SELECT message_id FROM messages WHERE message_id >= ? AND message_id < ? "
            "ORDER BY message_id LIMIT 4",
            (low, high),
        ).fetchall()
        if not rows:
            raise errors.UsageError(f"no message {prefix} in the inbox")
        if len(rows) > 1:
            shown = ", ".join(row[0] for row in rows[:3])
            more = " and more" if len(rows) > 3 else ""
            raise errors.UsageError(
                f"{prefix} is the start of several message ids ({shown}{more}): give more of it"
            )
        return MessageId(rows[0][0])

    def metadata(self, message_id: str) -> StoredMessage:
        """What is known about one message without decrypting it."""
        rows = self._select("WHERE message_id = ?", (message_id,))
        if not rows:
            raise errors.UsageError(f"no message {message_id} in the inbox")
        return rows[0]

    def list(
        self,
        *,
        sender: str | None = None,
        case_id: str | None = None,
        include_shredded: bool = True,
        limit: int = 1000,
    ) -> tuple[StoredMessage, ...]:
        """Stored messages, oldest first, optionally filtered; metadata only."""
        if not 1 <= limit <= 100_000:
            raise errors.UsageError("limit must be between 1 and 100000")
        clauses, params = [], []
        if sender is not None:
            clauses.append("sender = ?")
            params.append(sender)
        if case_id is not None:
            clauses.append("case_id = ?")
            params.append(case_id)
        if not include_shredded:
            clauses.append("shredded_at IS NULL")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._select(f"{where} ORDER BY received_at, message_id LIMIT ?", (*params, limit))

    def search(
        self,
        text: str = "",
        *,
        sender: str | None = None,
        case_id: str | None = None,
        message_type: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 1000,
    ) -> tuple[StoredMessage, ...]:
        """Messages not shredded holding every word of ``text`` in any script or spelling
        (:mod:`broker.store.search`), and matching every other filter; oldest first. The
        messages not indexed yet are indexed first, so every stored message can be found."""
        if not 1 <= limit <= 100_000:
            raise errors.UsageError("limit must be between 1 and 100000")
        if text.strip():
            # in chunks, each its own short transaction: a running daemon's next store waits
            # at most for one chunk (its busy timeout is 5 s), never for a whole backlog
            while self.index_pending(limit=_INDEX_CHUNK):
                pass
        clauses: list[str] = ["shredded_at IS NULL"]
        params: list[object] = []
        for column, value in (("sender", sender), ("case_id", case_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if message_type is not None:
            clauses.append("message_type = ?")
            params.append(message_type)
        if since is not None:
            clauses.append("received_at >= ?")
            params.append(to_micros(since, name="since"))
        if until is not None:
            clauses.append("received_at < ?")
            params.append(to_micros(until, name="until"))
        matching = self._search.matching(text)
        if matching is not None:
            if not matching:
                return ()
            clauses.append(f"message_id IN ({','.join('?' * len(matching))})")
            params.extend(sorted(matching))
        where = " AND ".join(clauses)
        return self._select(
            f"WHERE {where} ORDER BY received_at, message_id LIMIT ?", (*params, limit)
        )

    def shred_expired(self, now: dt.datetime) -> tuple[MessageId, ...]:
        """Destroy the key of every message whose retention ended at or before ``now``, and
        forget withdrawal notices older than the de-duplication window.

        Returns the ids shredded. Their rows remain, unreadable, with the time of shredding;
        their evidence is deleted; the write-ahead log is truncated afterwards so no copy of
        a key survives in it.
        """
        now_us = to_micros(now, name="now")
        with transaction(self._conn, what="shred expired messages"):
            expired = tuple(
                MessageId(row[0])
                for row in self._conn.execute(
                    "SELECT message_id FROM messages "
                    "WHERE shredded_at IS NULL AND retain_until <= ?",
                    (now_us,),
                )
            )
            self._shred(expired, now_us, reason=None)
            # A view arrives within the acceptance window of its creation, which the
            # de-duplication window exceeds: a notice older than that has nothing left to
            # wait for (one that was applied shows in its view's shred reason).
            horizon = to_micros(now - self._dedup_retention, name="now")
            self._conn.execute("DELETE FROM withdrawals WHERE recorded_at < ?", (horizon,))
        if expired:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return expired

    def erase(self, message_id: str, *, now: dt.datetime, reason: str) -> StoredMessage:
        """Shred one message now, before its retention ends, recording ``reason``; returns
        what remains of it. Raises :class:`errors.UsageError` if there is no such message or
        it is shredded already."""
        reason = " ".join(reason.split())
        if not 0 < len(reason) <= _MAX_REASON:
            raise errors.UsageError(f"an erasure needs a reason of 1 to {_MAX_REASON} characters")
        now_us = to_micros(now, name="now")
        with transaction(self._conn, what="erase a message"):
            meta = self.metadata(message_id)
            if meta.shredded_at is not None:
                raise errors.UsageError(
                    f"message {message_id} was shredded already, at {meta.shredded_at.isoformat()}"
                )
            self._shred([meta.message_id], now_us, reason=f"by erasure: {reason}")
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return self.metadata(message_id)

    def originators(self, message_ids: Iterable[str]) -> dict[MessageId, PartnerCode]:
        """The sender of each of ``message_ids`` stored here (absent ones are left out)."""
        wanted = sorted(set(message_ids))
        found: dict[MessageId, PartnerCode] = {}
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for mid, sender in self._conn.execute(
                f"SELECT message_id, sender FROM messages WHERE message_id IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            ):
                found[MessageId(mid)] = PartnerCode(sender)
        return found

    def apply_withdrawals(
        self,
        notices: Sequence[Withdrawn],
        *,
        arrived: Sequence[tuple[str, str]] = (),
        now: dt.datetime,
    ) -> tuple[MessageId, ...]:
        """Record ``notices`` and shred what they withdraw; shred each of the ``arrived``
        ``(message_id, sender)`` that an earlier notice from that same sender withdrew.

        Idempotent (a redelivered notice changes nothing), in one transaction. A notice names
        a view of its own sender only: the caller refuses one naming another partner's view
        before it gets here (:meth:`originators`); one naming a view not stored yet waits for
        it, and binds only a view from the notice's sender. Returns the ids shredded now.
        """
        now_us = to_micros(now, name="now")
        shredded: list[MessageId] = []
        if not notices and not self._conn.execute("SELECT 1 FROM withdrawals LIMIT 1").fetchone():
            return ()  # the common batch: nothing withdrawn, nothing waiting (no write)
        with transaction(self._conn, what="apply withdrawals"):
            for notice in notices:
                self._conn.execute(
                    "INSERT INTO withdrawals VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (message_id, sender) DO NOTHING",
                    (
                        notice.message_id,
                        notice.sender,
                        notice.notice_id,
                        notice.reason[:_MAX_REASON],
                        notice.replaced_by,
                        now_us,
                    ),
                )
            targets = [(n.message_id, n.sender) for n in notices] + list(arrived)
            for message_id, sender in targets:
                why = self._withdrawal_reason(message_id, sender)
                if why is not None:
                    self._shred([message_id], now_us, reason=why)
                    shredded.append(MessageId(message_id))
        if shredded:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return tuple(shredded)

    def _withdrawal_reason(self, message_id: str, sender: str) -> str | None:
        """Inside a transaction: why ``message_id`` must be shredded now, if a notice from its
        own sender withdrew it and it is stored, from that sender, and not shredded yet."""
        row = self._conn.execute(
            "SELECT w.reason, w.replaced_by, w.notice_id FROM withdrawals w "
            "JOIN messages m ON m.message_id = w.message_id AND m.sender = w.sender "
            "WHERE w.message_id = ? AND w.sender = ? AND m.shredded_at IS NULL",
            (message_id, sender),
        ).fetchone()
        if row is None:
            return None
        reason, replaced_by, notice_id = row
        if replaced_by is None:
            return f"withdrawn by {sender} ({notice_id}): {reason}"
        return f"corrected by {sender} ({notice_id}), replaced by {replaced_by}: {reason}"

    def _shred(self, message_ids: Sequence[str], now_us: int, *, reason: str | None) -> None:
        """Inside a transaction: destroy the keys and evidence of ``message_ids``."""
        for message_id in message_ids:
            # Overwrite in place first, then delete: secure_delete zeroes the freed cell.
            self._conn.execute(
                "UPDATE message_keys SET key = zeroblob(?) WHERE message_id = ?",
                (KEY_BYTES, message_id),
            )
            self._conn.execute("DELETE FROM message_keys WHERE message_id = ?", (message_id,))
            self._conn.execute("DELETE FROM evidence WHERE message_id = ?", (message_id,))
            self._conn.execute(
                "UPDATE messages SET shredded_at = ?, shred_reason = ? WHERE message_id = ?",
                (now_us, reason, message_id),
            )
        self._search.forget_in_transaction(message_ids)

    def _aad(self, message_id: str, domain: bytes = _AAD_DOMAIN) -> bytes:
        return b"%s%s\x00%s" % (domain, message_id.encode(), self._recipient.encode())

    def _evidence_aad(self, message_id: str) -> bytes:
        # its own domain: the evidence can never be opened as the content, nor the reverse
        return self._aad(message_id, _EVIDENCE_AAD_DOMAIN)

    def each(self, *, batch: int = 10_000) -> Iterator[StoredMessage]:
        """Every stored message's metadata, in the order stored, read ``batch`` rows at a
        time: for checks over a whole inbox, which :meth:`list`'s limit would cut short."""
        after = 0
        while True:
            query = f"SELECT rowid, {_COLUMNS} FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?"  # noqa: S608
            rows = self._conn.execute(query, (after, batch)).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield from _stored([row[1:] for row in rows])

    def _select(self, tail: str, params: Sequence[object]) -> tuple[StoredMessage, ...]:
        # only fixed clauses from this module reach ``tail``; every value is a bound parameter
        query = f"SELECT {_COLUMNS} FROM messages {tail}"  # noqa: S608
        return tuple(_stored(self._conn.execute(query, tuple(params)).fetchall()))


def _stored(rows: Iterable[Sequence[Any]]) -> Iterator[StoredMessage]:
    for row in rows:
        mid, sender, mtype, labels, case, received, retain, shredded = row[:8]
        rule, reason, shred_reason, origin = row[8:]
        yield StoredMessage(
            message_id=MessageId(mid),
            sender=PartnerCode(sender),
            message_type=MessageType(mtype),
            labels=Labels.model_validate_json(labels),
            case_id=CaseId(case) if case is not None else None,
            received_at=from_micros(received),
            retain_until=from_micros(retain),
            shredded_at=from_micros(shredded) if shredded is not None else None,
            retention_rule=rule,
            retention_reason=reason,
            shred_reason=shred_reason,
            origin=None if origin is None else Origin.stored(origin),
        )
