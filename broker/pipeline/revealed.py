"""Fields of its own envelope a sender shows the gateway, in a Kafka header beside it.

The gateway decides on signed labels and cannot read a body. For two messages it needs one
field of the body, so the sender reveals that committed field (docs/PROTOCOL.md, section 2.3)
in a header, as canonical JSON ``{"salt": hex, "value": <the field's value>}``; the gateway
recomputes the field's digest and compares it with the commitment in the envelope's signed
header, so the value is exactly the one the envelope carries:

- a ``receipt`` reveals what it acknowledges in :data:`ACKNOWLEDGES_HEADER` (version 1 its
  ``body.receipt_for``, a batch receipt, version 2, its ``body.items``): the gateway names the
  acknowledged messages in the receipt's audit record;
- an ``onward.forward`` reveals ``body.grant`` in :data:`GRANT_HEADER`: the originator's grant
  the gateway checks before it routes the forward (:mod:`broker.pipeline.onward`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

import pydantic

from broker import envelope, errors, strictjson
from broker.envelope import VerifiedHeader
from broker.ids import MessageId
from broker.schema.labels import MessageType
from broker.schema.protocol import MAX_RECEIPT_ITEMS, ReceiptItem

__all__ = [
    "ACKNOWLEDGES_HEADER",
    "GRANT_HEADER",
    "acknowledged",
    "read_revealed",
    "revealed_field",
    "revealed_header",
]

ACKNOWLEDGES_HEADER: Final = "xb-acknowledges"
GRANT_HEADER: Final = "xb-onward-grant"
#: per message type and schema version: the header and the committed field it reveals
_REVEALED: Final = {
    (MessageType.RECEIPT, 1): (ACKNOWLEDGES_HEADER, "body.receipt_for"),
    (MessageType.RECEIPT, 2): (ACKNOWLEDGES_HEADER, "body.items"),
    (MessageType.ONWARD_FORWARD, 1): (GRANT_HEADER, "body.grant"),
}
#: a grant's disclosure is a few KiB, a full batch receipt's lines under 40 KiB: anything
#: much larger is neither
MAX_REVEALED_BYTES: Final = 64 * 1024
#: a batch receipt's ``body.items``, as the message schema reads them
_LINES: Final = pydantic.TypeAdapter(
    Annotated[tuple[ReceiptItem, ...], pydantic.Field(min_length=1, max_length=MAX_RECEIPT_ITEMS)]
)
_MESSAGE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def revealed_header(revealed: tuple[bytes, Any]) -> bytes:
    """The header value for one revealed field ``(salt, value)``."""
    salt, value = revealed
    return strictjson.canonical({"salt": salt.hex(), "value": value})


def revealed_field(kind: MessageType, schema_version: int) -> tuple[str, str] | None:
    """The header and the committed field a message of this type and version reveals."""
    return _REVEALED.get((kind, schema_version))


def read_revealed(header: VerifiedHeader, headers: tuple[tuple[str, bytes], ...]) -> Any | None:
    """The value the header of ``header``'s message type reveals, checked against the
    commitment of ``header`` (whose signature the caller verified); ``None`` when there is no
    such header, or the type reveals nothing. Raises an integrity error for a header that
    comes twice, is malformed or does not match."""
    revealed = revealed_field(header.labels.message_type, header.labels.schema_version)
    if revealed is None:
        return None
    name, path = revealed
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


def acknowledged(value: Any, schema_version: int) -> tuple[MessageId, ...]:
    """The message ids a receipt's header revealed (what :func:`read_revealed` returned), read
    as the receipt's own version defines its field: one message id (version 1), or a batch
    receipt's lines (version 2), each a whole :class:`ReceiptItem` naming a different view. An
    :class:`errors.EnvelopeError` for anything else, even when it matches the commitment (a
    receipt whose body would not parse must not name views in the audit log)."""
    if schema_version == 1:
        return (_message_id(value),)
    if schema_version != 2:
        raise errors.EnvelopeError(f"a receipt of version {schema_version} reveals nothing known")
    try:
        lines = _LINES.validate_python(value, strict=False)
    except pydantic.ValidationError:
        raise errors.EnvelopeError(f"{ACKNOWLEDGES_HEADER} holds no receipt lines") from None
    ids = tuple(MessageId(line.receipt_for) for line in lines)
    if len(set(ids)) != len(ids):
        raise errors.EnvelopeError(f"{ACKNOWLEDGES_HEADER} names a message twice")
    return ids


def _message_id(value: Any) -> MessageId:
    if not isinstance(value, str) or not _MESSAGE_ID.fullmatch(value):
        raise errors.EnvelopeError(f"{ACKNOWLEDGES_HEADER} names no message id")
    return MessageId(value)
