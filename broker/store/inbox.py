"""The receiving adapter's inbox: verified messages, encrypted at rest, crypto-shredded on time.

Each message is sealed under its own random 256-bit key with an AEAD whose associated data
binds the ciphertext to its message id and recipient (a ciphertext moved to another row does
not open). Keys live in their own table; retention is enforced by deleting a message's key
(``secure_delete`` overwrites it, and the write-ahead log is truncated) so the ciphertext that
remains is unreadable by anyone, the operator included. Only the labels and delivery metadata
are stored in the clear, so an inbox can still be listed and accounted for after shredding.

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
from broker.ids import CaseId, MessageId, PartnerCode
from broker.schema.labels import Labels, MessageType
from broker.store import dedup as _dedup
from broker.store import rejected as _rejected
from broker.store._sqlite import from_micros, open_database, to_micros, transaction

__all__ = ["KEY_BYTES", "InboxItem", "InboxStore", "Sealer", "StoredMessage"]

#: per-message key size: ChaCha20-Poly1305 takes 256-bit keys
KEY_BYTES = 32
_AAD_DOMAIN = b"broker.store.inbox.v1\x00"
_MAX_CASE_ID = 128
_COLUMNS = (
    "message_id, sender, message_type, labels, case_id, received_at, retain_until, shredded_at"
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
        ciphertext BLOB NOT NULL
    )""",
    "CREATE INDEX messages_retention ON messages (retain_until) WHERE shredded_at IS NULL",
    "CREATE INDEX messages_received ON messages (received_at, message_id)",
    """CREATE TABLE message_keys (
        message_id TEXT PRIMARY KEY REFERENCES messages (message_id),
        key BLOB NOT NULL
    ) WITHOUT ROWID""",
    *_rejected.SCHEMA,
)
#: version 2 added the table of refused deliveries, version 3 the count of pruned ones
_VERSION = 3
_MIGRATIONS = {1: _rejected.TABLE_SCHEMA, 2: _rejected.PRUNED_SCHEMA}


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
        self._rejected = _rejected.RejectedLog(conn, max_rows=max_rejected_rows)

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
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
            (
                message_id,
                sender_code,
                str(item.labels.message_type),
                item.labels.model_dump_json(),
                item.case_id,
                received_us,
                retain_us,
                sealed,
            ),
        )
        self._conn.execute("INSERT INTO message_keys VALUES (?, ?)", (message_id, key))
        return verdict

    def get(self, message_id: str) -> bytes:
        """The plaintext of a stored message.

        Raises :class:`errors.UsageError` if there is no such message or it was shredded
        (saying when), and :class:`errors.DecryptionError` if it cannot be opened.
        """
        row = self._conn.execute(
            "SELECT m.ciphertext, m.shredded_at, m.retain_until, k.key FROM messages AS m "
            "LEFT JOIN message_keys AS k USING (message_id) WHERE m.message_id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            raise errors.UsageError(f"no message {message_id} in the inbox")
        sealed, shredded_at, retain_until, key = row
        if shredded_at is not None:
            raise errors.UsageError(
                f"message {message_id} was shredded at {from_micros(shredded_at).isoformat()} "
                f"under retention (kept until {from_micros(retain_until).isoformat()})"
            )
        if key is None:
            raise errors.DecryptionError("a stored message could not be decrypted")
        return self._sealer.open(bytes(key), bytes(sealed), aad=self._aad(message_id))

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

    def shred_expired(self, now: dt.datetime) -> int:
        """Destroy the key of every message whose retention ended at or before ``now``.

        Returns how many messages were shredded. Their rows remain, unreadable, with the time
        of shredding; the write-ahead log is truncated afterwards so no copy of a key survives
        in it.
        """
        now_us = to_micros(now, name="now")
        with transaction(self._conn, what="shred expired messages"):
            expired = [
                row[0]
                for row in self._conn.execute(
                    "SELECT message_id FROM messages "
                    "WHERE shredded_at IS NULL AND retain_until <= ?",
                    (now_us,),
                )
            ]
            for message_id in expired:
                # Overwrite in place first, then delete: secure_delete zeroes the freed cell.
                self._conn.execute(
                    "UPDATE message_keys SET key = zeroblob(?) WHERE message_id = ?",
                    (KEY_BYTES, message_id),
                )
                self._conn.execute("DELETE FROM message_keys WHERE message_id = ?", (message_id,))
                self._conn.execute(
                    "UPDATE messages SET shredded_at = ? WHERE message_id = ?", (now_us, message_id)
                )
        if expired:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(expired)

    def _aad(self, message_id: str) -> bytes:
        return b"%s%s\x00%s" % (_AAD_DOMAIN, message_id.encode(), self._recipient.encode())

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
    for mid, sender, mtype, labels, case, received, retain, shredded in rows:
        yield StoredMessage(
            message_id=MessageId(mid),
            sender=PartnerCode(sender),
            message_type=MessageType(mtype),
            labels=Labels.model_validate_json(labels),
            case_id=CaseId(case) if case is not None else None,
            received_at=from_micros(received),
            retain_until=from_micros(retain),
            shredded_at=from_micros(shredded) if shredded is not None else None,
        )
