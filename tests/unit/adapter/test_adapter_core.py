"""The adapter's work without Kafka: submissions journalled, deliveries verified and stored
once, receipts journalled once, duplicates counted, conflicts alerted, retention enforced."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import pytest

from broker import crypto, envelope, errors
from broker.adapter import Adapter, DeliveryDir
from broker.clock import FixedClock
from broker.ids import AccordId, MessageId
from broker.pipeline.send import Outgoing, Refused
from broker.schema import (
    Classification,
    DataCategory,
    MessageType,
    labels_of,
    parse_message,
    redact,
)
from broker.schema.protocol import ReceiptBatch, ReceiptStatus
from broker.trust import AccordFiles
from broker.trust.acts import ActsFile, add_act

from .world import (
    GB,
    GB_RS,
    MK,
    NOW,
    RS,
    WORLD,
    deliver,
    report,
    seal_for_rs,
    under_declared_view,
)


def _sent_to(adapter: Adapter, recipient: str) -> list[bytes]:
    return [e.envelope for e in adapter.journal.pending(limit=1000) if e.recipient == recipient]


def test_submit_journals_one_envelope_per_allowed_recipient(uk: Adapter) -> None:
    """Allowed views wait in the journal for the UK's outbox; a refused recipient has none."""
    outcomes = uk.submit(
        report().model_copy(update={"classification": Classification.OFFICIAL}), to=[RS, MK]
    )
    assert [type(o) for o in outcomes] == [Outgoing, Outgoing]
    entries = uk.journal.pending()
    assert {e.recipient for e in entries} == {RS, MK}
    assert {e.topic for e in entries} == {"xb.outbox.GB"}
    assert {e.message_id for e in entries} == {
        o.message_id for o in outcomes if isinstance(o, Outgoing)
    }
    secret = report().model_copy(update={"classification": Classification.SECRET})
    (refused,) = uk.submit(secret, to=[MK])
    assert isinstance(refused, Refused)
    assert len(uk.journal) == 2
    assert (
        uk.metrics.counter("xb_adapter_refused_total", "", ("reason_code",)).value(
            reason_code="policy_denied"
        )
        == 1
    )


def test_a_delivery_is_stored_once_and_receipted_once(uk: Adapter, serbia: Adapter) -> None:
    """The first copy is stored and receipted; a redelivery is dropped, counted, and does not
    produce a second receipt."""
    uk.submit(report(), to=[RS])
    (sealed,) = _sent_to(uk, RS)
    frame = deliver(sealed, recipient=RS)
    assert serbia.receive(frame) == "stored"
    assert serbia.receive(frame) == "duplicate"
    assert len(serbia.inbox.list()) == 1
    assert serbia.metrics.counter("xb_adapter_replays_dropped_total", "").value() == 1
    assert serbia.metrics.counter("xb_adapter_delivered_total", "").value() == 1
    receipts = serbia.journal.pending()
    assert len(receipts) == 1
    assert receipts[0].recipient == GB
    assert receipts[0].topic == "xb.outbox.RS"
    stored = parse_message(serbia.inbox.get(envelope.parse(sealed).header.message_id))
    assert DataCategory.BIOMETRIC not in labels_of(stored).data_categories


def test_the_receipt_reaches_the_sender_and_is_not_receipted(uk: Adapter, serbia: Adapter) -> None:
    """The UK stores Serbia's receipt, which names its message; it sends nothing back."""
    uk.submit(report(), to=[RS])
    (sealed,) = _sent_to(uk, RS)
    serbia.receive(deliver(sealed, recipient=RS))
    (receipt_envelope,) = _sent_to(serbia, GB)
    before = len(uk.journal)
    assert uk.receive(deliver(receipt_envelope, recipient=GB)) == "stored"
    assert len(uk.journal) == before
    (stored,) = uk.inbox.list()
    receipt = parse_message(uk.inbox.get(stored.message_id))
    assert receipt.type is MessageType.RECEIPT
    assert isinstance(receipt.body, ReceiptBatch)
    (line,) = receipt.body.items
    assert line.receipt_for == envelope.parse(sealed).header.message_id
    assert line.status is ReceiptStatus.ACCEPTED
    assert line.envelope_sha256 == crypto.sha256(sealed).hex()


def test_a_reused_id_with_other_bytes_is_a_conflict(uk: Adapter, serbia: Adapter) -> None:
    """A second envelope under a stored message id is not stored and raises an alert metric."""
    uk.submit(report(), to=[RS])
    (sealed,) = _sent_to(uk, RS)
    first = envelope.parse(sealed).header
    serbia.receive(deliver(sealed, recipient=RS))
    view = redact(report(), [DataCategory.BIOMETRIC])
    again = seal_for_rs(view, message_id=MessageId(first.message_id))
    assert serbia.receive(deliver(again, recipient=RS)) == "conflict"
    assert serbia.metrics.counter("xb_adapter_conflicts_total", "").value() == 1
    assert len(serbia.inbox.list()) == 1


def test_under_declared_labels_are_rejected_and_reported(serbia: Adapter) -> None:
    """Nothing is stored; the sender gets a rejected receipt; the rejection is counted."""
    sealed = under_declared_view()
    assert serbia.receive(deliver(sealed, recipient=RS)) == "rejected"
    assert serbia.inbox.list() == ()
    assert (
        serbia.metrics.counter("xb_adapter_rejected_total", "", ("reason_code",)).value(
            reason_code="label_mismatch"
        )
        == 1
    )
    (receipt,) = serbia.journal.pending()
    assert receipt.recipient == GB


@pytest.mark.parametrize("frame", [None, b"", b"XBD1garbage", b"\x00" * 64])
def test_garbage_is_rejected_without_effect(serbia: Adapter, frame: bytes | None) -> None:
    """Bad records are counted and dropped; nothing is stored or sent."""
    assert serbia.receive(frame) == "rejected"
    assert serbia.inbox.list() == ()
    assert len(serbia.journal) == 0


def test_retention_shreds_the_content(uk: Adapter, serbia: Adapter, clock: FixedClock) -> None:
    """After the retention period the content is unreadable; the metadata remains."""
    uk.submit(report(), to=[RS])
    (sealed,) = _sent_to(uk, RS)
    serbia.receive(deliver(sealed, recipient=RS))
    assert serbia.shred_expired() == 0
    clock.advance(dt.timedelta(days=31))
    assert serbia.shred_expired() == 1
    (row,) = serbia.inbox.list()
    assert row.shredded_at is not None
    with pytest.raises(errors.UsageError, match="shredded"):
        serbia.inbox.get(row.message_id)


def test_envelopes_in_the_journal_open_for_their_recipient(uk: Adapter) -> None:
    """What waits in the journal is exactly the sealed view, openable by its recipient only."""
    uk.submit(report(), to=[RS])
    (entry,) = uk.journal.pending()
    keys = WORLD.partners[RS]
    opened = envelope.open(
        entry.envelope,
        registry=WORLD.registry,
        recipient=RS,
        decryption_keys={keys.encryption_key_id: keys.decryption},
        now=NOW,
    )
    assert opened.header.message_id == entry.message_id
    assert crypto.sha256(entry.envelope) == opened.header.envelope_digest


def test_the_delivery_directory_gets_each_message_once(
    uk: Adapter, serbia: Adapter, tmp_path: pathlib.Path
) -> None:
    """A verified message is written as <id>.json; a redelivery fills in a file a crash lost."""
    serbia.delivery_dir = DeliveryDir(tmp_path / "out")
    uk.submit(report(), to=[RS])
    (sealed,) = _sent_to(uk, RS)
    frame = deliver(sealed, recipient=RS)
    serbia.receive(frame)
    message_id = envelope.parse(sealed).header.message_id
    written = tmp_path / "out" / f"{message_id}.json"
    document = json.loads(written.read_text())
    assert document["sender"] == "GB"
    assert document["message"]["case_id"] == report().case_id
    assert written.stat().st_mode & 0o077 == 0
    written.unlink()
    assert serbia.receive(frame) == "duplicate"
    assert written.exists()


def test_a_delivery_under_a_suspended_accord_is_refused_and_not_receipted(
    uk: Adapter, serbia: Adapter, clock: FixedClock
) -> None:
    """RS suspends GB-RS; a report the gateway passed before the suspension reached it is
    refused by Serbia's adapter as accord_suspended: nothing stored, no receipt sent back
    under the halted accord."""
    uk.submit(report(), to=[RS])
    (sealed,) = _sent_to(uk, RS)
    chain = add_act(
        ActsFile(accord="gb-rs"),
        kind="suspend",
        key=WORLD.partners[RS].policy,
        partner=RS,
        parties=GB_RS.accord.party_codes,
        at=clock.now(),
        reason="review",
    )
    held = AccordFiles.holding([GB_RS], now=clock.now())
    refusals, applied = held.accords.apply_acts(
        {AccordId("gb-rs"): chain}, registry=WORLD.registry, now=clock.now()
    )
    assert (refusals, len(applied)) == ([], 1)
    serbia.accords = held
    assert serbia.receive(deliver(sealed, recipient=RS)) == "rejected"
    assert not serbia.inbox.list()
    assert len(serbia.journal) == 0
    (row,) = serbia.inbox.rejected.list()
    assert row.reason_code == "accord_suspended"
