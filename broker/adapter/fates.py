"""What became of each view this adapter sent: the ``views`` table of the send journal.

The journal forgets an envelope once Kafka has acknowledged it; an operator asking "did my
message get there?" (``broker status ID``) needs more, so every view also has a row here,
written in the journal's own transactions:

=============  =================================================================================
state          when
=============  =================================================================================
``refused``    the adapter's accord check refused the recipient (code and reason kept); only
               for views whose id was chosen before sealing (``broker send``), since a
               refusal has no id of its own
``journalled`` sealed and durably journalled, not yet acknowledged by Kafka
``sent``       acknowledged by Kafka (``acks=all``), with the outbox position
``quarantined`` the gateway's signed notice says it quarantined the view, with the reason
               code and reason (:mod:`broker.pipeline.notice`)
``receipted``  the recipient's signed receipt came back: ``accepted``, or ``rejected`` with its
               reason, and the time the recipient says it received the view
=============  =================================================================================

Only the recipient named in a row can receipt it: a receipt from anybody else leaves the row
as it was. Rows are kept :data:`DEFAULT_MAX_AGE` at most, and the newest
:data:`DEFAULT_MAX_ROWS` at most, so the table stays bounded whatever the volume.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Final, Literal

import pydantic

from broker import errors
from broker.envelope import Origin
from broker.ids import MessageId, PartnerCode, message_id_range
from broker.pipeline.notice import VerifiedNotice
from broker.schema.handling import HandlingCondition
from broker.schema.labels import Labels

__all__ = [
    "APPROVER_SCHEMA",
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_ROWS",
    "MARKINGS_SCHEMA",
    "ORIGIN_SCHEMA",
    "QUARANTINE_SCHEMA",
    "SCHEMA",
    "Acknowledged",
    "Journalled",
    "Receipted",
    "ViewFate",
    "ViewRefusal",
    "find",
    "note_acknowledged",
    "note_journalled",
    "note_quarantines",
    "note_receipts",
    "note_refusals",
    "prune",
    "sealed_between",
]

#: how long the fate of a view is kept: as long as a refused delivery at the receiver
DEFAULT_MAX_AGE: Final = dt.timedelta(days=30)
#: the most rows kept (about 300 bytes each): past it, the oldest go first
DEFAULT_MAX_ROWS: Final = 200_000
_MAX_REASON = 2_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

SCHEMA: Final = (
    """CREATE TABLE views (
        message_id TEXT PRIMARY KEY,
        recipient TEXT NOT NULL,
        source TEXT,
        recorded_at INTEGER NOT NULL,
        journalled_at INTEGER,
        refused_code TEXT,
        refused_reason TEXT,
        acknowledged_at INTEGER,
        topic TEXT,
        partition INTEGER,
        "offset" INTEGER,
        receipt_status TEXT,
        receipt_reason TEXT,
        receipt_at INTEGER,
        received_at INTEGER,
        receipt_id TEXT
    ) WITHOUT ROWID""",
    "CREATE INDEX views_source ON views (source)",
    "CREATE INDEX views_age ON views (recorded_at)",
)
#: each view's signed labels and case id, as sealed: what a withdrawal of it repeats
MARKINGS_SCHEMA: Final = (
    "ALTER TABLE views ADD COLUMN labels TEXT",
    "ALTER TABLE views ADD COLUMN case_id TEXT",
)
#: what the gateway's notice said of a quarantined view
QUARANTINE_SCHEMA: Final = (
    "ALTER TABLE views ADD COLUMN quarantine_code TEXT",
    "ALTER TABLE views ADD COLUMN quarantine_reason TEXT",
    "ALTER TABLE views ADD COLUMN quarantined_at INTEGER",
)
#: the officer the view's signed header names as having submitted it (JSON), if any
ORIGIN_SCHEMA: Final = ("ALTER TABLE views ADD COLUMN origin TEXT",)
#: the second officer who released the view (four-eyes release), if any
APPROVER_SCHEMA: Final = ("ALTER TABLE views ADD COLUMN approver TEXT",)
#: the view's H3 handling conditions as sealed (a JSON array, empty for other handling
#: codes): how a withdrawal of it knows the view was restricted to units, and so sends the
#: recipient no reason
CONDITIONS_SCHEMA: Final = ("ALTER TABLE views ADD COLUMN conditions TEXT",)
_CONDITIONS: Final = pydantic.TypeAdapter(tuple[HandlingCondition, ...])

State = Literal["refused", "journalled", "sent", "quarantined", "receipted"]


@dataclasses.dataclass(frozen=True, slots=True)
class ViewRefusal:
    """A recipient refused at sealing, under the id chosen for its view."""

    message_id: MessageId
    recipient: PartnerCode
    reason_code: str
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Journalled:
    """A view sealed and journalled, with the markings its header carries."""

    message_id: MessageId
    recipient: PartnerCode
    source: str | None
    labels: Labels | None = None
    case_id: str | None = None
    origin: Origin | None = None
    approver: str | None = None
    conditions: tuple[HandlingCondition, ...] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Acknowledged:
    """Kafka acknowledged a view's envelope at this position of the outbox."""

    message_id: MessageId
    topic: str
    partition: int
    offset: int


@dataclasses.dataclass(frozen=True, slots=True)
class Receipted:
    """A verified receipt from ``sender`` for view ``message_id``."""

    message_id: MessageId
    sender: PartnerCode
    status: str
    received_at: dt.datetime
    receipt_id: MessageId
    reason: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ViewFate:
    """One view's row: how far it got, and when."""

    message_id: MessageId
    recipient: PartnerCode
    #: the spool file (``spool:<name>:<digest>``), the receipt (``receipt:<id>``) or ``None``
    source: str | None
    recorded_at: dt.datetime
    journalled_at: dt.datetime | None
    refused_code: str | None
    refused_reason: str | None
    acknowledged_at: dt.datetime | None
    position: tuple[str, int, int] | None
    receipt_status: str | None
    receipt_reason: str | None
    #: when the receipt was stored here
    receipt_at: dt.datetime | None
    #: when the recipient says it received the view (from its signed receipt)
    received_at: dt.datetime | None
    receipt_id: MessageId | None
    #: the view's signed labels and case id (``None`` for views journalled before they were
    #: kept, and for refused views, which were never sealed)
    labels: Labels | None = None
    case_id: str | None = None
    #: the gateway's notice: reason code, reason, and when it decided
    quarantine_code: str | None = None
    quarantine_reason: str | None = None
    quarantined_at: dt.datetime | None = None
    #: the officer its signed header names as having submitted it (None: no officer did)
    origin: Origin | None = None
    #: the second officer who released it (four-eyes release; None: nobody had to)
    approver: str | None = None
    #: its handling conditions as sealed (``None`` for views journalled before they were
    #: kept, and for refused views)
    conditions: tuple[HandlingCondition, ...] | None = None

    @property
    def state(self) -> State:
        """The furthest the view got."""
        if self.receipt_status is not None:
            return "receipted"
        if self.quarantine_code is not None:
            return "quarantined"
        if self.refused_code is not None:
            return "refused"
        if self.acknowledged_at is not None:
            return "sent"
        return "journalled"


def micros(when: dt.datetime) -> int:
    """``when`` as microseconds since the epoch (the journal's time format)."""
    if when.tzinfo is None:
        raise errors.UsageError("journal times must be timezone-aware")
    return (when - _EPOCH) // dt.timedelta(microseconds=1)


def _time(value: int | None) -> dt.datetime | None:
    return None if value is None else _EPOCH + dt.timedelta(microseconds=value)


def note_journalled(
    conn: sqlite3.Connection, views: Sequence[Journalled], *, now: dt.datetime
) -> None:
    """These views were journalled (inside the caller's transaction)."""
    stamp = micros(now)
    conn.executemany(
        "INSERT INTO views (message_id, recipient, source, recorded_at, journalled_at, labels, "
        "case_id, origin, approver, conditions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (message_id) DO NOTHING",
        [
            (
                v.message_id,
                v.recipient,
                v.source,
                stamp,
                stamp,
                None if v.labels is None else v.labels.model_dump_json(),
                v.case_id,
                None if v.origin is None else v.origin.model_dump_json(),
                v.approver,
                None if v.conditions is None else _CONDITIONS.dump_json(v.conditions).decode(),
            )
            for v in views
        ],
    )


def note_refusals(
    conn: sqlite3.Connection,
    refusals: Sequence[ViewRefusal],
    *,
    source: str | None,
    now: dt.datetime,
) -> None:
    """The recipients refused at sealing; a view already journalled under the id stays so (a
    spool file decided again after a crash may be refused now for a reason it was not then)."""
    stamp = micros(now)
    conn.executemany(
        "INSERT INTO views (message_id, recipient, source, recorded_at, refused_code, "
        "refused_reason) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
        [
            (r.message_id, r.recipient, source, stamp, r.reason_code, r.reason[:_MAX_REASON])
            for r in refusals
        ],
    )


def note_acknowledged(
    conn: sqlite3.Connection, acknowledged: Sequence[Acknowledged], *, now: dt.datetime
) -> None:
    """Kafka acknowledged these views (inside the caller's transaction)."""
    stamp = micros(now)
    conn.executemany(
        'UPDATE views SET acknowledged_at = ?, topic = ?, partition = ?, "offset" = ? '
        "WHERE message_id = ? AND acknowledged_at IS NULL",
        [(stamp, a.topic, a.partition, a.offset, a.message_id) for a in acknowledged],
    )


def note_receipts(
    conn: sqlite3.Connection, receipts: Sequence[Receipted], *, now: dt.datetime
) -> int:
    """Record verified receipts against the views they acknowledge; returns how many matched.
    Only the view's own recipient can receipt it, and the first receipt stands."""
    stamp = micros(now)
    cursor = conn.executemany(
        "UPDATE views SET receipt_status = ?, receipt_reason = ?, receipt_at = ?, "
        "received_at = ?, receipt_id = ? "
        "WHERE message_id = ? AND recipient = ? AND receipt_status IS NULL",
        [
            (
                r.status,
                None if r.reason is None else r.reason[:_MAX_REASON],
                stamp,
                micros(r.received_at),
                r.receipt_id,
                r.message_id,
                r.sender,
            )
            for r in receipts
        ],
    )
    return cursor.rowcount


def note_quarantines(conn: sqlite3.Connection, notices: Sequence[VerifiedNotice]) -> int:
    """Record the gateway's verified notices against the views they name; returns how many
    matched. A notice matches only the view to its recipient that Kafka acknowledged at the
    very outbox position the gateway quarantined (not a copy someone else wrote there), with
    no receipt yet; the first notice stands."""
    cursor = conn.executemany(
        "UPDATE views SET quarantine_code = ?, quarantine_reason = ?, quarantined_at = ? "
        'WHERE message_id = ? AND recipient = ? AND topic = ? AND partition = ? AND "offset" = ? '
        "AND quarantine_code IS NULL AND receipt_status IS NULL",
        [
            (
                n.reason_code,
                n.reason[:_MAX_REASON],
                micros(n.decided_at),
                n.message_id,
                n.recipient,
                *n.position,
            )
            for n in notices
        ],
    )
    return cursor.rowcount


def prune(
    conn: sqlite3.Connection,
    *,
    older_than: dt.datetime,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> int:
    """Forget views recorded before ``older_than``, and the oldest past ``max_rows``."""
    aged = conn.execute("DELETE FROM views WHERE recorded_at < ?", (micros(older_than),)).rowcount
    excess = conn.execute(
        "DELETE FROM views WHERE message_id IN (SELECT message_id FROM views "
        "ORDER BY recorded_at DESC, message_id DESC LIMIT -1 OFFSET ?)",
        (max(max_rows, 0),),
    ).rowcount
    return aged + excess


_COLUMNS = (
    "message_id, recipient, source, recorded_at, journalled_at, refused_code, refused_reason, "
    'acknowledged_at, topic, partition, "offset", receipt_status, receipt_reason, receipt_at, '
    "received_at, receipt_id, labels, case_id, quarantine_code, quarantine_reason, quarantined_at, "
    "origin, approver, conditions"
)


def find(conn: sqlite3.Connection, message_id: str) -> tuple[ViewFate, ...]:
    """The view ``message_id`` names (a full id, or a prefix of at least
    :data:`~broker.ids.MIN_ID_PREFIX` characters that only one view starts with), and its
    siblings: the other recipients' views of the same submission, in the order they were
    recorded.

    Raises :class:`errors.UsageError` for a prefix too short or shared by several views, and
    for an id no view has (never sent from here, or older than what is kept).
    """
    try:
        low, high = message_id_range(message_id)
    except ValueError as exc:
        raise errors.UsageError(str(exc)) from None
    found = conn.execute(
        f"SELECT {_COLUMNS} FROM views WHERE message_id >= ? AND message_id < ? "  # noqa: S608 - fixed columns
        "ORDER BY message_id LIMIT 2",
        (low, high),
    ).fetchall()
    if not found:
        raise errors.UsageError(
            f"{message_id}: no message of that id was sent from this adapter "
            f"(or it is older than the {DEFAULT_MAX_AGE.days} days kept)"
        )
    if len(found) > 1:
        raise errors.UsageError(f"{message_id}: several messages start so; give more of the id")
    fate = _fate(found[0])
    if fate.source is None:
        return (fate,)
    siblings = conn.execute(
        f"SELECT {_COLUMNS} FROM views WHERE source = ? "  # noqa: S608 - fixed columns
        "ORDER BY recorded_at, message_id",
        (fate.source,),
    ).fetchall()
    return tuple(_fate(row) for row in siblings)


def receipted(conn: sqlite3.Connection) -> int:
    """How many views have their recipient's receipt (accepted or rejected)."""
    row = conn.execute("SELECT count(*) FROM views WHERE receipt_status IS NOT NULL").fetchone()
    return int(row[0])


def sealed_between(
    conn: sqlite3.Connection, since: dt.datetime, until: dt.datetime
) -> tuple[ViewFate, ...]:
    """The views sealed (journalled) at or after ``since`` and before ``until``, oldest
    first: the disclosures this adapter made, while the table still holds them."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM views "  # noqa: S608 - fixed columns
        "WHERE journalled_at >= ? AND journalled_at < ? ORDER BY journalled_at, message_id",
        (micros(since), micros(until)),
    ).fetchall()
    return tuple(_fate(row) for row in rows)


def latest(
    conn: sqlite3.Connection, *, limit: int, recipient: PartnerCode | None = None
) -> tuple[ViewFate, ...]:
    """The views recorded last (to ``recipient`` only, if given), newest first."""
    where, params = ("WHERE recipient = ? ", (recipient,)) if recipient else ("", ())
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM views {where}"  # noqa: S608 - fixed columns and clause
        "ORDER BY recorded_at DESC, message_id DESC LIMIT ?",
        (*params, max(limit, 0)),
    ).fetchall()
    return tuple(_fate(row) for row in rows)


def _fate(row: tuple[object, ...]) -> ViewFate:
    (mid, rcpt, source, recorded, journalled, code, reason, acked, topic, partition, offset,
     r_status, r_reason, r_at, received, r_id, labels, case_id, q_code, q_reason,
     q_at, origin, approver, conditions) = row  # fmt: skip
    position = None
    if isinstance(topic, str) and isinstance(partition, int) and isinstance(offset, int):
        position = (topic, partition, offset)
    return ViewFate(
        message_id=MessageId(str(mid)),
        recipient=PartnerCode(str(rcpt)),
        source=None if source is None else str(source),
        recorded_at=_EPOCH + dt.timedelta(microseconds=_int(recorded)),
        journalled_at=_time(_opt_int(journalled)),
        refused_code=_opt_str(code),
        refused_reason=_opt_str(reason),
        acknowledged_at=_time(_opt_int(acked)),
        position=position,
        receipt_status=_opt_str(r_status),
        receipt_reason=_opt_str(r_reason),
        receipt_at=_time(_opt_int(r_at)),
        received_at=_time(_opt_int(received)),
        receipt_id=None if r_id is None else MessageId(str(r_id)),
        labels=None if labels is None else Labels.model_validate_json(str(labels)),
        case_id=_opt_str(case_id),
        quarantine_code=_opt_str(q_code),
        quarantine_reason=_opt_str(q_reason),
        quarantined_at=_time(_opt_int(q_at)),
        origin=None if origin is None else Origin.stored(str(origin)),
        approver=_opt_str(approver),
        conditions=None if conditions is None else _CONDITIONS.validate_json(str(conditions)),
    )


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise errors.UsageError(f"the send journal holds a malformed time: {value!r}")
    return value


def _opt_int(value: object) -> int | None:
    return None if value is None else _int(value)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
