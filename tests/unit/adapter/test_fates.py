"""What became of each view: the send journal remembers every view it sealed or refused, where
Kafka put it, and the recipient's receipt, for ``broker status``; bounded by age and count."""

from __future__ import annotations

import datetime as dt
import pathlib
import sqlite3

import pytest

from broker import envelope, errors
from broker.adapter import Adapter, SendJournal, write_submission
from broker.adapter.fates import Acknowledged, Receipted, ViewRefusal
from broker.clock import FixedClock
from broker.ids import MessageId, PartnerCode, new_message_id

from .world import GB, MK, NOW, RS, deliver, report

A = MessageId("01900000-0000-7000-8000-00000000000a")
B = MessageId("01900000-0000-7000-8000-00000000000b")
C = MessageId("01911111-0000-7000-8000-00000000000c")
XK = PartnerCode("XK")
RECEIPT = MessageId("01922222-0000-7000-8000-000000000001")
LATER = NOW + dt.timedelta(minutes=5)


def _receipt(message_id: MessageId, sender: PartnerCode, status: str = "accepted") -> Receipted:
    return Receipted(message_id, sender, status, NOW + dt.timedelta(minutes=1), RECEIPT)


def test_a_view_moves_from_journalled_to_sent_to_receipted(tmp_path: pathlib.Path) -> None:
    """Journalled, then acknowledged at its outbox position, then receipted by its recipient;
    its sibling (same source) is listed with it, and stays where it got to."""
    with SendJournal.open(tmp_path / "j.sqlite") as journal:
        journal.record([(A, RS, "xb.outbox.GB", b"a"), (B, MK, "xb.outbox.GB", b"b")],
                       source="spool:x", now=NOW)  # fmt: skip
        assert [f.state for f in journal.fates_of(A)] == ["journalled", "journalled"]
        journal.acknowledge(Acknowledged(A, "xb.outbox.GB", 2, 41), now=LATER)
        assert journal.record_receipts([_receipt(A, RS)], now=LATER) == 1
        first, second = journal.fates_of(B)
    assert (first.message_id, first.state, first.recipient) == (A, "receipted", RS)
    assert first.position == ("xb.outbox.GB", 2, 41)
    assert first.acknowledged_at == LATER
    assert first.received_at == NOW + dt.timedelta(minutes=1)
    assert first.receipt_id == RECEIPT
    assert (second.message_id, second.state) == (B, "journalled")
    assert len(journal_pending(tmp_path / "j.sqlite")) == 1  # only B still waits for Kafka


def journal_pending(path: pathlib.Path) -> list[MessageId]:
    with SendJournal.open(path) as journal:
        return [entry.message_id for entry in journal.pending()]


def test_only_the_views_recipient_can_receipt_it(tmp_path: pathlib.Path) -> None:
    """A receipt for RS's view from MK (a partner reading ids off the wire) changes nothing;
    the first genuine receipt stands against a later one."""
    with SendJournal.open(tmp_path / "j.sqlite") as journal:
        journal.record([(A, RS, "t", b"a")], source=None, now=NOW)
        assert journal.record_receipts([_receipt(A, MK)], now=NOW) == 0
        assert journal.record_receipts([_receipt(A, RS)], now=NOW) == 1
        assert journal.record_receipts([_receipt(A, RS, "rejected")], now=NOW) == 0
        (fate,) = journal.fates_of(A)
    assert (fate.state, fate.receipt_status) == ("receipted", "accepted")


def test_a_refusal_is_kept_under_the_chosen_id(tmp_path: pathlib.Path) -> None:
    """A recipient refused at sealing is remembered with its code and reason; deciding the
    same file again after a crash adds nothing and never turns a journalled view refused."""
    with SendJournal.open(tmp_path / "j.sqlite") as journal:
        journal.record([(A, RS, "t", b"a")], source="spool:x", now=NOW)
        refusal = ViewRefusal(B, MK, "policy_denied", "SECRET is above OFFICIAL-SENSITIVE")
        journal.record_refusals([refusal], source="spool:x", now=NOW)
        journal.record_refusals([refusal, ViewRefusal(A, RS, "no_accord", "x")],
                                source="spool:x", now=NOW)  # fmt: skip
        fates = {f.message_id: f for f in journal.fates_of(A)}
    assert fates[A].state == "journalled"
    assert (fates[B].state, fates[B].refused_code) == ("refused", "policy_denied")
    assert fates[B].refused_reason == "SECRET is above OFFICIAL-SENSITIVE"


@pytest.mark.parametrize(
    ("asked", "says"),
    [
        ("0190000", "at least its first 8"),
        ("01900000", "several messages start so"),
        ("01933333", "no message of that id"),
        ("not-an-id!", "give a message id"),
    ],
)
def test_an_id_must_name_one_view(tmp_path: pathlib.Path, asked: str, says: str) -> None:
    """A prefix is accepted when one view alone starts with it; otherwise a usage error says
    what is wrong (too short, ambiguous, unknown)."""
    with SendJournal.open(tmp_path / "j.sqlite") as journal:
        journal.record([(A, RS, "t", b"a"), (B, MK, "t", b"b"), (C, RS, "t", b"c")],
                       source=None, now=NOW)  # fmt: skip
        assert journal.fates_of("01911111")[0].message_id == C
        assert journal.fates_of(A.upper())[0].message_id == A
        with pytest.raises(errors.UsageError, match=says):
            journal.fates_of(asked)


def test_fates_are_bounded_by_age_and_by_count(tmp_path: pathlib.Path) -> None:
    """Pruning forgets views older than the cut-off, then the oldest past the row limit."""
    ids = [new_message_id() for _ in range(5)]
    with SendJournal.open(tmp_path / "j.sqlite") as journal:
        for day, message_id in enumerate(ids):
            when = NOW + dt.timedelta(days=day)
            journal.record([(message_id, RS, "t", b"x")], source=None, now=when)
        assert journal.prune_fates(older_than=NOW + dt.timedelta(days=1), max_rows=3) == 2
        for gone in ids[:2]:
            with pytest.raises(errors.UsageError, match="no message"):
                journal.fates_of(gone)
        assert journal.prune_fates(older_than=NOW, max_rows=1) == 2
        assert [f.message_id for f in journal.fates_of(ids[4])] == [ids[4]]


def test_a_journal_of_the_previous_version_gains_the_table(tmp_path: pathlib.Path) -> None:
    """A version-1 journal keeps its pending envelopes and gains an empty ``views`` table."""
    path = tmp_path / "j.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL "
        "UNIQUE, recipient TEXT NOT NULL, topic TEXT NOT NULL, envelope BLOB NOT NULL, "
        "journalled_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)"
    )
    conn.execute(
        "CREATE TABLE sources (source TEXT PRIMARY KEY, recorded_at INTEGER NOT NULL) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX sources_age ON sources (recorded_at)")
    conn.execute(
        "INSERT INTO pending (message_id, recipient, topic, envelope, journalled_at) "
        "VALUES (?, 'RS', 't', x'00', 0)",
        (A,),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with SendJournal.open(path) as journal:
        assert [e.message_id for e in journal.pending()] == [A]
        with pytest.raises(errors.UsageError, match="no message"):
            journal.fates_of(A)
        journal.record([(B, RS, "t", b"b")], source=None, now=NOW)
        assert journal.fates_of(B)[0].state == "journalled"


def test_a_reader_never_creates_a_journal(tmp_path: pathlib.Path) -> None:
    """``broker status`` on an adapter that never ran says so and leaves no file behind."""
    path = tmp_path / "send-journal.sqlite"
    with pytest.raises(errors.UsageError, match="no send journal yet"):
        SendJournal.open(path, create=False)
    assert not path.exists()


def test_the_spool_seals_under_the_ids_it_was_given(uk: Adapter) -> None:
    """``broker send`` chooses the ids: the adapter seals each view under its own, and a
    recipient it refuses is remembered under the id chosen for it."""
    spool = uk.spool
    assert spool is not None
    chosen = {RS: new_message_id(), XK: new_message_id()}
    write_submission(spool.root, report(), [RS, XK], ids=chosen)
    assert uk.process_spool() == 1
    (entry,) = uk.journal.pending()
    assert entry.message_id == chosen[RS]
    assert envelope.parse(entry.envelope).header.message_id == chosen[RS]
    fates = {f.recipient: f for f in uk.journal.fates_of(chosen[XK])}
    assert fates[RS].state == "journalled"
    assert (fates[XK].state, fates[XK].refused_code) == ("refused", "no_accord")


def test_a_receipt_coming_back_is_noted_against_its_view(
    uk: Adapter, serbia: Adapter, clock: FixedClock
) -> None:
    """Serbia's receipt, delivered to the UK, marks the UK's view receipted with the time Serbia
    says it received it; a redelivery of the receipt changes nothing."""
    uk.submit(report(), to=[RS])
    (sealed,) = [e.envelope for e in uk.journal.pending()]
    serbia.receive(deliver(sealed, recipient=RS))
    (receipt,) = [e.envelope for e in serbia.journal.pending() if e.recipient == GB]
    frame = deliver(receipt, recipient=GB)
    assert uk.receive(frame) == "stored"
    assert uk.receive(frame) == "duplicate"
    (fate,) = uk.journal.fates_of(envelope.parse(sealed).header.message_id)
    assert (fate.state, fate.receipt_status, fate.received_at) == ("receipted", "accepted", NOW)
    assert fate.receipt_id == envelope.parse(receipt).header.message_id


def test_a_sealed_view_keeps_the_markings_its_header_signs(uk: Adapter) -> None:
    """What a withdrawal of the view repeats: its labels and case id, as sealed."""
    uk.submit(report(), to=[RS])
    (entry,) = uk.journal.pending()
    header = envelope.parse(entry.envelope).header
    (fate,) = uk.journal.fates_of(entry.message_id)
    assert fate.labels == header.labels
    assert fate.case_id == header.case_id is not None


def test_a_journal_of_version_3_is_upgraded_and_its_views_have_no_markings(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "j.sqlite"
    with SendJournal.open(path) as journal:
        journal.record([(A, RS, "t", b"a")], source=None, now=NOW)
    conn = sqlite3.connect(path, isolation_level=None)
    dropped = ("labels", "case_id", "quarantine_code", "quarantine_reason", "quarantined_at")
    for column in (*dropped, "origin", "approver", "conditions"):
        conn.execute(f"ALTER TABLE views DROP COLUMN {column}")
    for column in ("gateway_header_name", "gateway_header"):
        conn.execute(f"ALTER TABLE pending DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    with SendJournal.open(path) as journal:
        (fate,) = journal.fates_of(A)
        assert (fate.state, fate.labels, fate.case_id) == ("journalled", None, None)
        assert fate.quarantine_code is None
        assert fate.origin is None
        assert fate.approver is None
        assert fate.conditions is None


def test_an_origin_kept_under_the_earlier_name_rule_is_read_as_kept(
    tmp_path: pathlib.Path,
) -> None:
    """A decomposed name passed the earlier release's rule; the journal kept it, and `status`,
    `withdraw` and the s.62 export must still read that view's fate after the upgrade."""
    path = tmp_path / "j.sqlite"
    with SendJournal.open(path) as journal:
        journal.record([(A, RS, "t", b"a")], source=None, now=NOW)
    kept = '{"agency":"Granic\\u030cna policija","officer":"m.petrovic","unit":"Analysis"}'
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE views SET origin = ? WHERE message_id = ?", (kept, A))
    conn.close()
    with SendJournal.open(path) as journal:
        (fate,) = journal.fates_of(A)
    assert fate.origin is not None
    assert fate.origin.agency == "Granic\u030cna policija"
    assert fate.origin.label == "m.petrovic (Granic\u030cna policija, Analysis)"
