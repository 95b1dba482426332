"""Fields of its own envelope a sender shows the gateway, in a Kafka header beside it.

The gateway decides on signed labels and cannot read a body. For two messages it needs one
field of the body, so the sender reveals that committed field (docs/PROTOCOL.md, section 2.3)
in a header, as canonical JSON ``{"salt": hex, "value": <the field's value>}``; the gateway
recomputes the field's digest and compares it with the commitment in the envelope's signed
header, so the value is exactly the one the envelope carries:

- a ``receipt`` reveals ``body.receipt_for`` in :data:`ACKNOWLEDGES_HEADER`: the gateway names
  the acknowledged message in the receipt's audit record;
- an ``onward.forward`` reveals ``body.grant`` in :data:`GRANT_HEADER`: the originator's grant
  the gateway checks before it routes the forward (:mod:`broker.pipeline.onward`).
"""

from __future__ import annotations

import re
from typing import Any, Final

from broker import envelope, errors, strictjson
from broker.envelope import VerifiedHeader
from broker.ids import MessageId
from broker.schema.labels import MessageType

__all__ = [
    "ACKNOWLEDGES_HEADER",
    "GRANT_HEADER",
    "REVEALED",
    "acknowledged",
    "read_revealed",
    "revealed_header",
]

ACKNOWLEDGES_HEADER: Final = "xb-acknowledges"
GRANT_HEADER: Final = "xb-onward-grant"
#: per message type: the header and the committed field it reveals
REVEALED: Final = {
    MessageType.RECEIPT: (ACKNOWLEDGES_HEADER, "body.receipt_for"),
    MessageType.ONWARD_FORWARD: (GRANT_HEADER, "body.grant"),
}
#: a grant's disclosure is a few KiB: anything much larger is not one
MAX_REVEALED_BYTES: Final = 32 * 1024
_MESSAGE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def revealed_header(revealed: tuple[bytes, Any]) -> bytes:
    """The header value for one revealed field ``(salt, value)``."""
    salt, value = revealed
    return strictjson.canonical({"salt": salt.hex(), "value": value})


def read_revealed(
    header: VerifiedHeader, headers: tuple[tuple[str, bytes], ...], kind: MessageType
) -> Any | None:
    """The value ``kind``'s header reveals, checked against the commitment of ``header``
    (whose signature the caller verified); ``None`` when there is no such header, or ``kind``
    reveals nothing. Raises an
    integrity error for a header that comes twice, is malformed or does not match."""
    if kind not in REVEALED:
        return None
    name, path = REVEALED[kind]
    carried = [value for key, value in headers if key == name]
    if not carried:
        return None
    if len(carried) > 1:
        raise errors.EnvelopeError(f"{len(carried)} {name} headers")
    raw = carried[0]
    if len(raw) > MAX_REVEALED_BYTES:
        raise errors.EnvelopeError(f"{name} is {len(raw)} bytes, over {MAX_REVEALED_BYTES}")
    try:
        document = strictjson.loads(raw, max_depth=64, allow_floats=False)
        salt = bytes.fromhex(document["salt"]) if isinstance(document, dict) else None
    except (ValueError, TypeError, KeyError) as exc:  # StrictJSONError is a ValueError
        raise errors.EnvelopeError(f"{name} is malformed: {exc}") from None
    if salt is None or set(document) != {"salt", "value"}:
        raise errors.EnvelopeError(f"{name} holds other than a salt and a value")
    envelope.check_revealed(header.field_digests, {path: (salt, document["value"])})
    return document["value"]


def acknowledged(value: Any) -> MessageId:
    """The message id a receipt's header revealed (what :func:`read_revealed` returned);
    an :class:`errors.EnvelopeError` for anything that is not a message id."""
    if not isinstance(value, str) or not _MESSAGE_ID.fullmatch(value):
        raise errors.EnvelopeError(f"{ACKNOWLEDGES_HEADER} names no message id")
    return MessageId(value)
