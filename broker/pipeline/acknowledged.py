"""What a receipt shows the gateway of itself: the id of the message it acknowledges.

A receipt's body is encrypted to the original sender, so the gateway that routes it cannot
read which message it acknowledges. The receipt's sender reveals that one committed field,
``body.receipt_for``, in the Kafka header :data:`ACKNOWLEDGES_HEADER` beside the envelope: its
commitment salt and value, as canonical JSON ``{"salt": hex, "value": id}``. The gateway
checks them against the commitment in the receipt's signed header (so the id is the one the
receipt's signer committed to) and names the id in the receipt's audit record.
"""

from __future__ import annotations

from typing import Any, Final

from broker import envelope, errors, strictjson
from broker.envelope import VerifiedHeader
from broker.ids import MessageId

__all__ = ["ACKNOWLEDGED_PATH", "ACKNOWLEDGES_HEADER", "acknowledged", "acknowledges"]

ACKNOWLEDGES_HEADER: Final = "xb-acknowledges"
ACKNOWLEDGED_PATH: Final = "body.receipt_for"
#: a salt and an id: anything much larger is not this header
_MAX_BYTES: Final = 512


def acknowledges(revealed: tuple[bytes, Any]) -> bytes:
    """The header value for a receipt's revealed ``body.receipt_for`` (salt, value)."""
    salt, value = revealed
    return strictjson.canonical({"salt": salt.hex(), "value": value})


def acknowledged(header: VerifiedHeader, value: bytes) -> MessageId:
    """The id a receipt acknowledges, from its header value, checked against the commitment
    of ``header`` (whose signature the caller verified). Raises an integrity error for a
    value that is malformed or does not match."""
    if len(value) > _MAX_BYTES:
        raise errors.EnvelopeError(f"{ACKNOWLEDGES_HEADER} is {len(value)} bytes")
    try:
        document = strictjson.loads(value, max_depth=2, allow_floats=False)
        salt = bytes.fromhex(document["salt"]) if isinstance(document, dict) else None
    except (ValueError, TypeError, KeyError) as exc:  # StrictJSONError is a ValueError
        raise errors.EnvelopeError(f"{ACKNOWLEDGES_HEADER} is malformed: {exc}") from None
    if salt is None or set(document) != {"salt", "value"}:
        raise errors.EnvelopeError(f"{ACKNOWLEDGES_HEADER} holds other than a salt and a value")
    acknowledged_id = document["value"]
    envelope.check_revealed(header.field_digests, {ACKNOWLEDGED_PATH: (salt, acknowledged_id)})
    if not isinstance(acknowledged_id, str):
        raise errors.EnvelopeError(f"{ACKNOWLEDGES_HEADER} names no message id")
    return MessageId(acknowledged_id)
