"""Receipts: what a recipient owes each sender for the views it received, one signed batch
receipt per delivered batch (docs/PROTOCOL.md, section 11).

The receive pipeline turns every view it accepts (or refuses, once its sender is authenticated)
into an :class:`Acknowledgement`; the adapter gathers a fetched batch's acknowledgements and
:func:`batch_receipts` makes them into as few ``receipt`` version 2 messages as the markings
allow. A receipt keeps the markings, purposes and case id of what it acknowledges: it reveals
that those views exist and when they arrived, so it is handled no more loosely than they are.
Views with different markings therefore never share a receipt; views of different cases do,
and the receipt then names no case.

A sender still accepts ``receipt`` version 1 (one receipt per view) from a partner that sends
them; :func:`receipt_lines` reads either version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from broker import errors, strictjson
from broker.ids import MessageId, PartnerCode
from broker.schema import Message, MessageType, parse_message
from broker.schema.protocol import MAX_RECEIPT_ITEMS, Receipt, ReceiptBatch, ReceiptStatus

__all__ = ["Acknowledgement", "BatchReceipt", "ReceiptLine", "batch_receipts", "receipt_lines"]

_MARKINGS = frozenset({"classification", "tlp", "handling", "handling_conditions", "purposes"})
#: a rejected view's reason, as far as one receipt line carries it
_MAX_REASON = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Acknowledgement:
    """One view a recipient must acknowledge to ``to``, its sender."""

    to: PartnerCode
    message_id: MessageId
    content_sha256: bytes
    envelope_sha256: bytes
    received_at: dt.datetime
    #: the canonical JSON of the view's markings and purposes, which its receipt repeats
    markings: bytes
    case_id: str | None
    rejected_because: str | None = None

    @classmethod
    def of(
        cls,
        message: Message,
        *,
        to: PartnerCode,
        message_id: MessageId,
        content_sha256: bytes,
        envelope_sha256: bytes,
        received_at: dt.datetime,
        rejected_because: str | None = None,
    ) -> Acknowledgement:
        """The acknowledgement ``message`` is owed (never call it for a receipt)."""
        if message.type is MessageType.RECEIPT:
            raise errors.UsageError("a receipt is never itself acknowledged")
        markings = strictjson.canonical(message.model_dump(mode="json", include=set(_MARKINGS)))
        return cls(
            to,
            message_id,
            content_sha256,
            envelope_sha256,
            received_at,
            markings,
            message.case_id,
            rejected_because,
        )

    def line(self) -> dict[str, Any]:
        """This view's line of a batch receipt, as JSON."""
        line: dict[str, Any] = {
            "receipt_for": self.message_id,
            "status": "accepted" if self.rejected_because is None else "rejected",
            "content_sha256": self.content_sha256.hex(),
            "envelope_sha256": self.envelope_sha256.hex(),
        }
        if self.rejected_because is not None:
            line["reason"] = self.rejected_because[:_MAX_REASON]
        return line


@dataclasses.dataclass(frozen=True, slots=True)
class BatchReceipt:
    """One ``receipt`` version 2 for ``to``, and the views it acknowledges."""

    to: PartnerCode
    message: Message
    covers: tuple[MessageId, ...]


def batch_receipts(acknowledgements: Iterable[Acknowledgement]) -> list[BatchReceipt]:
    """As few receipts as the markings allow: one per sender, markings and arrival time, of at
    most :data:`MAX_RECEIPT_ITEMS` lines each, in the order the views came (a view named twice
    is acknowledged once)."""
    groups: dict[tuple[PartnerCode, bytes, dt.datetime], dict[MessageId, Acknowledgement]] = {}
    for ack in acknowledgements:
        group = groups.setdefault((ack.to, ack.markings, ack.received_at), {})
        group.setdefault(ack.message_id, ack)
    receipts = []
    for (to, markings, received_at), by_id in groups.items():
        acks = list(by_id.values())
        for start in range(0, len(acks), MAX_RECEIPT_ITEMS):
            chunk = acks[start : start + MAX_RECEIPT_ITEMS]
            receipts.append(_receipt(to, markings, received_at, chunk))
    return receipts


def _receipt(
    to: PartnerCode, markings: bytes, received_at: dt.datetime, chunk: Sequence[Acknowledgement]
) -> BatchReceipt:
    document: dict[str, Any] = strictjson.loads(markings, max_depth=8, allow_floats=False)
    cases = {ack.case_id for ack in chunk}
    if len(cases) == 1 and None not in cases:
        document["case_id"] = cases.pop()
    document.update(
        type=str(MessageType.RECEIPT),
        schema_version=2,
        body={
            "received_at": received_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "items": [ack.line() for ack in chunk],
        },
    )
    message = parse_message(strictjson.canonical(document))
    return BatchReceipt(to, message, tuple(ack.message_id for ack in chunk))


@dataclasses.dataclass(frozen=True, slots=True)
class ReceiptLine:
    """What a receipt of either version says of one view."""

    message_id: MessageId
    status: ReceiptStatus
    received_at: dt.datetime
    reason: str | None


def receipt_lines(message: Message) -> tuple[ReceiptLine, ...]:
    """Every view a ``receipt`` acknowledges (one for version 1); none for any other type."""
    body = message.body
    if isinstance(body, Receipt):
        line = ReceiptLine(MessageId(body.receipt_for), body.status, body.received_at, body.reason)
        return (line,)
    if isinstance(body, ReceiptBatch):
        return tuple(
            ReceiptLine(MessageId(item.receipt_for), item.status, body.received_at, item.reason)
            for item in body.items
        )
    return ()
