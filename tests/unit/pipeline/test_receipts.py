"""Batch receipts: as few as the markings allow, each bounded, each view acknowledged once; and
what a receipt of either version says of each view it acknowledges."""

from __future__ import annotations

import datetime as dt

import pytest

from broker import errors, strictjson
from broker.ids import MessageId, PartnerCode, new_message_id
from broker.pipeline.receipts import Acknowledgement, batch_receipts, receipt_lines
from broker.pipeline.revealed import acknowledged
from broker.schema import TLP, Message, parse_message
from broker.schema.protocol import MAX_RECEIPT_ITEMS, ReceiptBatch, ReceiptStatus

from .test_send import report

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
GB, MK = PartnerCode("GB"), PartnerCode("MK")


def _owed(
    message: Message, *, to: PartnerCode = GB, rejected: str | None = None, at: dt.datetime = NOW
) -> Acknowledgement:
    return Acknowledgement.of(
        message,
        to=to,
        message_id=new_message_id(),
        content_sha256=bytes(32),
        envelope_sha256=b"\x01" * 32,
        received_at=at,
        rejected_because=rejected,
    )


def _case(name: str, **update: object) -> Message:
    return report().model_copy(update={"case_id": f"GB-CASE-{name}", **update})


def test_views_of_one_sender_and_markings_share_one_receipt_naming_no_case() -> None:
    owed = [_owed(_case("1")), _owed(_case("2")), _owed(_case("1"), rejected="x: y")]
    (receipt,) = batch_receipts(owed)
    assert receipt.to == GB
    assert receipt.covers == tuple(a.message_id for a in owed)
    body = receipt.message.body
    assert isinstance(body, ReceiptBatch)
    assert [item.status for item in body.items] == [
        ReceiptStatus.ACCEPTED,
        ReceiptStatus.ACCEPTED,
        ReceiptStatus.REJECTED,
    ]
    assert body.items[2].reason == "x: y"
    assert body.items[0].envelope_sha256 == "01" * 32
    assert receipt.message.case_id is None
    assert receipt.message.tlp is report().tlp


def test_a_receipt_keeps_the_case_all_its_views_share() -> None:
    (receipt,) = batch_receipts([_owed(_case("7")), _owed(_case("7"))])
    assert receipt.message.case_id == "GB-CASE-7"


def test_other_markings_other_senders_and_other_times_never_share_a_receipt() -> None:
    """A receipt is handled like what it acknowledges: a GREEN view's line never rides in a
    receipt marked for an AMBER one."""
    owed = [
        _owed(_case("A")),
        _owed(_case("A", tlp=TLP.GREEN)),
        _owed(_case("A"), to=MK),
        _owed(_case("A"), at=NOW + dt.timedelta(seconds=1)),
    ]
    receipts = batch_receipts(owed)
    assert [r.covers for r in receipts] == [(a.message_id,) for a in owed]
    assert receipts[1].message.tlp is TLP.GREEN


def test_a_large_batch_is_cut_into_receipts_of_at_most_the_bound() -> None:
    owed = [_owed(_case("A")) for _ in range(2 * MAX_RECEIPT_ITEMS + 1)]
    receipts = batch_receipts(owed)
    assert [len(r.covers) for r in receipts] == [MAX_RECEIPT_ITEMS, MAX_RECEIPT_ITEMS, 1]
    assert [m for r in receipts for m in r.covers] == [a.message_id for a in owed]


def test_a_view_named_twice_in_a_batch_is_acknowledged_once() -> None:
    first = _owed(_case("A"))
    (receipt,) = batch_receipts([first, first, _owed(_case("A"))])
    assert len(receipt.covers) == 2


def test_a_receipt_acknowledging_one_view_twice_does_not_parse() -> None:
    (receipt,) = batch_receipts([_owed(_case("A"))])
    document = strictjson.loads(
        strictjson.canonical(receipt.message.model_dump(mode="json", exclude_none=True)),
        max_depth=16,
        allow_floats=False,
    )
    document["body"]["items"] *= 2
    with pytest.raises(errors.SchemaError, match="each view once"):
        parse_message(strictjson.canonical(document))


def test_both_versions_say_what_they_acknowledge() -> None:
    owed = [_owed(_case("A")), _owed(_case("A"), rejected="label_mismatch: no")]
    (receipt,) = batch_receipts(owed)
    lines = receipt_lines(receipt.message)
    assert [(line.message_id, line.status) for line in lines] == [
        (owed[0].message_id, ReceiptStatus.ACCEPTED),
        (owed[1].message_id, ReceiptStatus.REJECTED),
    ]
    assert {line.received_at for line in lines} == {NOW}
    single = MessageId(str(new_message_id()))
    version_1 = parse_message(
        strictjson.canonical(
            {
                "type": "receipt",
                "schema_version": 1,
                "classification": "OFFICIAL",
                "tlp": "GREEN",
                "handling": "H0",
                "purposes": ["people-smuggling"],
                "body": {
                    "receipt_for": single,
                    "received_at": "2026-12-06T12:00:00Z",
                    "content_sha256": "00" * 32,
                    "status": "accepted",
                },
            }
        )
    )
    ((line),) = receipt_lines(version_1)
    assert (line.message_id, line.status, line.received_at) == (
        single,
        ReceiptStatus.ACCEPTED,
        NOW,
    )
    assert receipt_lines(report()) == ()


def test_what_the_gateway_reads_of_either_version() -> None:
    """Each version's revealed field as that version defines it, whole: a value that matched
    its commitment but would not parse as the receipt's body names nothing."""
    one, two = str(new_message_id()), str(new_message_id())

    def line(view: str, **extra: object) -> dict[str, object]:
        return {
            "receipt_for": view,
            "status": "accepted",
            "content_sha256": "00" * 32,
            "envelope_sha256": "11" * 32,
            **extra,
        }

    assert acknowledged(one, 1) == (one,)
    assert acknowledged([line(one), line(two)], 2) == (one, two)
    for value, version in (
        ([line(one)], 1),  # a version 1 receipt reveals one id
        (one, 2),  # a version 2 receipt reveals lines
        ([line(one)], 3),
        ([], 2),
        ([line(one), line(one)], 2),
        ([line("not an id")], 2),
        ([{"receipt_for": one}], 2),  # not a whole line
        ([line(one, status="maybe")], 2),
        ([line(one, surplus=1)], 2),
        ([line(str(new_message_id())) for _ in range(MAX_RECEIPT_ITEMS + 1)], 2),
        ({"receipt_for": one}, 2),
        (7, 1),
    ):
        with pytest.raises(errors.EnvelopeError):
            acknowledged(value, version)
