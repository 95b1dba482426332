"""Batches: a fetched batch, a burst of spool files and a batch of acknowledgements each cost
one transaction, with exactly the effects the same work has one item at a time."""

from __future__ import annotations

import os
import pathlib
import sqlite3

import pytest

from broker import envelope, errors
from broker.adapter import Adapter, DeliveryDir, SendJournal, write_submission
from broker.adapter.fates import Acknowledged
from broker.clock import FixedClock
from broker.envelope._format import decode_frame
from broker.ids import MessageId, PartnerCode
from broker.schema import TLP, parse_message
from broker.schema.protocol import ReceiptBatch

from .world import GB, MK, NOW, RS, deliver, make_adapter, report

A = MessageId("01900000-0000-7000-8000-000000000001")
B = MessageId("01900000-0000-7000-8000-000000000002")
C = MessageId("01900000-0000-7000-8000-000000000003")


def _frames(uk: Adapter, count: int) -> list[bytes]:
    """``count`` delivery frames of distinct reports from the UK to Serbia."""
    for n in range(count):
        uk.submit(report().model_copy(update={"case_id": f"GB-CASE-{n}"}), to=[RS])
    return [deliver(e.envelope, recipient=RS) for e in uk.journal.pending(limit=1000)]


def _state(adapter: Adapter) -> tuple[object, ...]:
    """What receiving left behind: stored ids, which of them are receipted, counters."""
    counter = adapter.metrics.counter
    stored = sorted(m.message_id for m in adapter.inbox.list())
    return (
        stored,
        [m for m in stored if adapter.journal.has_source(f"receipt:{m}")],
        counter("xb_adapter_delivered_total", "").value(),
        counter("xb_adapter_replays_dropped_total", "").value(),
        adapter.inbox.dedup.counters,
    )


# name -> the batch, from frames f[0..2] (None is an empty record)
BATCHES: dict[str, tuple[tuple[int | None, ...], tuple[str, ...]]] = {
    "distinct": ((0, 1, 2), ("stored", "stored", "stored")),
    "a copy inside the batch": ((0, 1, 0), ("stored", "stored", "duplicate")),
    "an empty record among good ones": ((0, None, 1), ("stored", "rejected", "stored")),
    "only copies": ((2, 2, 2), ("stored", "duplicate", "duplicate")),
}


@pytest.mark.parametrize("name", sorted(BATCHES))
def test_a_batch_has_the_effects_of_one_record_after_another(
    name: str, uk: Adapter, tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """receive_many gives the verdicts, stored messages, receipted views and counters that
    receive() gives for the same frames one by one; the batch's views share one receipt."""
    frames = _frames(uk, 3)
    picks, expected = BATCHES[name]
    batch = [None if i is None else frames[i] for i in picks]
    batched = make_adapter(RS, tmp_path / "batched", clock=clock)
    single = make_adapter(RS, tmp_path / "single", clock=clock)
    try:
        assert batched.receive_many(batch) == list(expected)
        assert [single.receive(frame) for frame in batch] == list(expected)
        assert _state(batched) == _state(single)
        assert len(batched.journal) == 1
        assert len(single.journal) == len({i for i in picks if i is not None})
    finally:
        for adapter in (batched, single):
            adapter.journal.close()
            adapter.inbox.close()


def test_a_redelivered_batch_stores_and_receipts_nothing_new(uk: Adapter, serbia: Adapter) -> None:
    """After a crash before the offset commit the whole batch comes again: all duplicates."""
    frames = _frames(uk, 3)
    assert serbia.receive_many(frames) == ["stored"] * 3
    receipts = len(serbia.journal)
    assert serbia.receive_many(frames) == ["duplicate"] * 3
    assert len(serbia.journal) == receipts
    assert len(serbia.inbox.list()) == 3


def _lines(uk: Adapter, serbia: Adapter) -> list[list[MessageId]]:
    """The UK receives every receipt Serbia journalled; the views each one acknowledges."""
    receipts = [e for e in serbia.journal.pending(limit=1000) if e.recipient == GB]
    assert uk.receive_many([deliver(e.envelope, recipient=GB) for e in receipts])
    lines = []
    for receipt in receipts:
        message = parse_message(uk.inbox.get(envelope.parse(receipt.envelope).header.message_id))
        assert isinstance(message.body, ReceiptBatch)
        lines.append([MessageId(item.receipt_for) for item in message.body.items])
    return lines


def test_one_receipt_acknowledges_every_view_of_a_batch(uk: Adapter, serbia: Adapter) -> None:
    """Three reports of three cases, one batch: one signed receipt back, one line per view,
    naming no case; the UK marks all three views receipted by it."""
    frames = _frames(uk, 3)
    sent = [envelope.parse(e.envelope).header.message_id for e in uk.journal.pending()]
    assert serbia.receive_many(frames) == ["stored"] * 3
    (lines,) = _lines(uk, serbia)
    assert sorted(lines) == sorted(sent)
    (receipt,) = uk.inbox.list()
    assert receipt.case_id is None
    fates = [fate for mid in sent for fate in uk.journal.fates_of(mid)]
    assert {(f.state, f.receipt_status) for f in fates} == {("receipted", "accepted")}
    assert {f.receipt_id for f in fates} == {receipt.message_id}


def test_a_batch_mixing_redelivered_and_new_views_receipts_only_the_new(
    uk: Adapter, serbia: Adapter
) -> None:
    """Batches are cut differently after a crash: a view receipted by an earlier batch
    receipt is never acknowledged again, whichever batch it comes back in."""
    frames = _frames(uk, 3)
    sent = [envelope.parse(e.envelope).header.message_id for e in uk.journal.pending()]
    assert serbia.receive_many(frames[:2]) == ["stored"] * 2
    assert serbia.receive_many(frames[1:]) == ["duplicate", "stored"]
    first, second = _lines(uk, serbia)
    assert sorted(first) == sorted(sent[:2])
    assert second == [sent[2]]


def test_the_delivery_directory_gets_every_message_of_a_batch(
    uk: Adapter, serbia: Adapter, tmp_path: pathlib.Path
) -> None:
    serbia.delivery_dir = DeliveryDir(tmp_path / "out")
    frames = _frames(uk, 3)
    serbia.receive_many([*frames, frames[0]])
    names = {p.name for p in (tmp_path / "out").iterdir()}
    ids = {envelope.parse(e.envelope).header.message_id for e in uk.journal.pending()}
    assert names == {f"{i}.json" for i in ids}


def test_ids_must_match_the_frames(serbia: Adapter) -> None:
    with pytest.raises(errors.UsageError, match="one ids mapping per frame"):
        serbia.receive_many([None, None], ids=[{"offset": 1}])


def test_write_many_writes_each_message_once(tmp_path: pathlib.Path) -> None:
    """One flag per message: True when written now; a copy in the batch or a file already
    there is left alone."""
    out = DeliveryDir(tmp_path / "out")
    body = b'{"case_id": "X"}'
    assert out.write(message_id=C, sender=GB, message_json=body)
    flags = out.write_many([(A, GB, body), (B, GB, body), (A, GB, body), (C, GB, body)])
    assert flags == [True, True, False, False]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{m}.json" for m in (A, B, C)
    )


def test_the_spool_is_handled_a_few_files_at_a_time(uk: Adapter) -> None:
    """With a limit, process_spool takes the oldest files first and leaves the rest waiting."""
    assert uk.spool is not None
    paths = []
    for n in range(5):
        path = write_submission(uk.spool.root, report(), [RS])
        os.utime(path, ns=(n * 1_000_000_000, n * 1_000_000_000))
        paths.append(path)
    assert uk.process_spool(limit=2) == 2
    assert sorted(p.name for p in uk.spool.sent.iterdir()) == sorted(p.name for p in paths[:2])
    assert len(uk.journal) == 2
    assert uk.process_spool(limit=10) == 3
    assert list(uk.spool.incoming.iterdir()) == []
    assert len(uk.journal) == 5


def test_a_spool_chunk_is_signed_under_one_head_per_recipient_and_each_view_stands_alone(
    uk: Adapter, serbia: Adapter
) -> None:
    """Five files, to RS and some also to MK, in one chunk: RS's five views carry one signature
    (over their own Merkle head) and MK's two another, never a head spanning both recipients;
    Serbia verifies and stores its views."""
    assert uk.spool is not None
    for n in range(5):
        message = report().model_copy(update={"case_id": f"GB-CASE-{n}"})
        write_submission(uk.spool.root, message, [RS, MK] if n % 2 else [RS])
    assert uk.process_spool() == 5
    pending = uk.journal.pending(limit=1000)
    assert len(pending) == 7
    by_recipient = {
        r: [decode_frame(e.envelope) for e in pending if e.recipient == r] for r in (RS, MK)
    }
    for recipient, frames in by_recipient.items():
        assert {f.signature for f in frames} == {frames[0].signature}, recipient
        indices = sorted(f.proof.index for f in frames if f.proof is not None)
        assert indices == list(range(len(frames))), recipient
    assert by_recipient[RS][0].signature != by_recipient[MK][0].signature
    to_rs = [deliver(e.envelope, recipient=RS) for e in pending if e.recipient == RS]
    assert serbia.receive_many(to_rs) == ["stored"] * 5


def test_the_receipts_of_a_batch_are_signed_under_one_head(uk: Adapter, serbia: Adapter) -> None:
    """Views with two different markings make two receipts; one signature covers both."""
    uk.submit(report(), to=[RS])
    uk.submit(report().model_copy(update={"tlp": TLP.GREEN}), to=[RS])
    frames = [deliver(e.envelope, recipient=RS) for e in uk.journal.pending()]
    assert serbia.receive_many(frames) == ["stored"] * 2
    receipts = [e for e in serbia.journal.pending() if e.recipient == GB]
    assert len(receipts) == 2
    signed = [decode_frame(e.envelope) for e in receipts]
    assert signed[0].signature == signed[1].signature
    assert uk.receive_many([deliver(e.envelope, recipient=GB) for e in receipts]) == ["stored"] * 2


class TestJournalBatches:
    """record_many, acknowledge_many and attempted_many: one transaction each."""

    def test_a_source_twice_in_one_batch_is_journalled_once(self, tmp_path: pathlib.Path) -> None:
        rs = PartnerCode("RS")
        with SendJournal.open(tmp_path / "j.sqlite") as journal:
            recorded = journal.record_many(
                [
                    ("spool:a", [(A, rs, "t", b"a")]),
                    ("spool:a", [(B, rs, "t", b"b")]),
                    (None, [(C, rs, "t", b"c")]),
                ],
                now=NOW,
            )
            assert recorded == [True, False, True]
            assert [e.message_id for e in journal.pending()] == [A, C]

    def test_a_failing_batch_journals_nothing(self, tmp_path: pathlib.Path) -> None:
        """The same message id twice breaks the batch: neither entries nor sources remain."""
        rs = PartnerCode("RS")
        with SendJournal.open(tmp_path / "j.sqlite") as journal:
            with pytest.raises(sqlite3.IntegrityError):
                journal.record_many(
                    [("spool:a", [(A, rs, "t", b"a")]), ("spool:b", [(A, rs, "t", b"b")])],
                    now=NOW,
                )
            assert len(journal) == 0
            assert not journal.has_source("spool:a")

    def test_acknowledged_entries_leave_and_attempts_are_counted(
        self, tmp_path: pathlib.Path
    ) -> None:
        rs = PartnerCode("RS")
        path = tmp_path / "j.sqlite"
        with SendJournal.open(path) as journal:
            journal.record([(m, rs, "t", m.encode()) for m in (A, B, C)], source=None, now=NOW)
            journal.acknowledge_many(
                [Acknowledged(m, "t", 0, n) for n, m in enumerate((A, C))], now=NOW
            )
            journal.attempted_many([B, B])
            journal.acknowledge_many([], now=NOW)
        with SendJournal.open(path) as journal:
            assert [(e.message_id, e.attempts) for e in journal.pending()] == [(B, 2)]
