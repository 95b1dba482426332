"""The gateway's quarantine notice: it tells a sender that one of its views was quarantined,
and why, on the sender's own inbox.

Without it a sender only ever learns that Kafka took its view; a quarantined view stayed
"sent, no receipt yet" for ever. The gateway writes a notice only for an envelope whose
sender's signature verified and that came from that sender's own outbox, so nobody can make
the gateway write notices to a partner it did not hear from::

    b"XBN1" || u32be(len(n)) || n || u32be(len(s)) || s

``n`` is canonical JSON::

    {"v": 1, "kind": "quarantined", "message_id", "sender", "recipient", "envelope_sha256"
     (hex), "source": {"topic", "partition", "offset"}, "reason_code", "reason" (ASCII),
     "decided_at" (RFC 3339, whole seconds, Z), "gateway_key_id"}

``s`` is the gateway's signature over ``b"xb-gateway-notice-v1\\x00" || u32be(len(n)) || n``,
by the key registered at ``decided_at`` and still valid when the notice is read. The domain
differs from a delivery attestation's, so neither can pass for the other.

``source`` is where the gateway read the quarantined record. The sender records a notice only
against the view it produced at exactly that outbox position: anyone who can write the
sender's outbox can make the gateway quarantine a *copy* of a delivered view (under another
routing header, say), and that notice must not mark the delivered view quarantined.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct
from typing import Annotated, Literal

from pydantic import Field

from broker import crypto, errors, limits
from broker.ids import KeyId, MessageId, PartnerCode
from broker.keys import canonical_json
from broker.pipeline._quarantine import bounded_reason
from broker.pipeline.records import (
    GatewayKeys,
    SourcePosition,
    format_time,
    parse_time,
    strict_json_object,
    validate_object,
)
from broker.reasons import ReasonCode
from broker.schema._base import StrictModel

__all__ = [
    "NOTICE_DOMAIN",
    "NOTICE_MAGIC",
    "QuarantineNotice",
    "VerifiedNotice",
    "is_notice",
    "notice_frame",
    "verify_notice",
]

NOTICE_MAGIC = b"XBN1"
NOTICE_DOMAIN = b"xb-gateway-notice-v1\x00"
#: a notice is a few hundred bytes; with a reason of 1,024 characters each escaped as \uXXXX
#: it stays under this
_MAX_NOTICE_BYTES = 8_192
_MAX_SIGNATURE_BYTES = 8_192
_U32 = struct.Struct(">I")
_HEX64 = r"^[0-9a-f]{64}$"
_PARTNER = r"^[A-Z]{2}$"


class QuarantineNotice(StrictModel):
    """What the gateway tells a sender of one of its quarantined views."""

    v: Literal[1] = 1
    kind: Literal["quarantined"] = "quarantined"
    message_id: Annotated[str, Field(max_length=64)]
    sender: Annotated[str, Field(pattern=_PARTNER)]
    recipient: Annotated[str, Field(pattern=_PARTNER)]
    envelope_sha256: Annotated[str, Field(pattern=_HEX64)]
    source: SourcePosition
    reason_code: ReasonCode
    reason: Annotated[str, Field(max_length=limits.REASON_MAX_CHARS)]
    decided_at: Annotated[str, Field(max_length=32)]
    gateway_key_id: Annotated[str, Field(max_length=64)]


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedNotice:
    """A notice whose gateway signature checked and which is addressed to this sender."""

    message_id: MessageId
    recipient: PartnerCode
    #: where the gateway read the quarantined record: (topic, partition, offset)
    position: tuple[str, int, int]
    reason_code: str
    reason: str
    decided_at: dt.datetime


def is_notice(frame: bytes) -> bool:
    """Whether an inbox record is a notice (and not a delivery frame)."""
    return frame.startswith(NOTICE_MAGIC)


def notice_frame(
    *,
    message_id: str,
    sender: str,
    recipient: str,
    envelope_sha256: bytes,
    source: SourcePosition,
    reason_code: ReasonCode,
    reason: str,
    decided_at: dt.datetime,
    gateway_key: crypto.SigningKey,
) -> bytes:
    """The signed notice frame for the sender's inbox."""
    notice = QuarantineNotice(
        message_id=message_id,
        sender=sender,
        recipient=recipient,
        envelope_sha256=envelope_sha256.hex(),
        source=source,
        reason_code=reason_code,
        reason=bounded_reason(reason),
        decided_at=format_time(decided_at),
        gateway_key_id=gateway_key.public_key().key_id,
    )
    data = canonical_json(notice.model_dump(mode="json"))
    signature = gateway_key.sign(_signing_input(data))
    return NOTICE_MAGIC + _U32.pack(len(data)) + data + _U32.pack(len(signature)) + signature


def verify_notice(
    frame: bytes, *, registry: GatewayKeys, me: PartnerCode, now: dt.datetime
) -> VerifiedNotice:
    """Check a notice read from ``me``'s inbox: the form, the gateway key registered when it
    was decided and still valid ``now``, the signature, and that it speaks of a view ``me``
    sent. Raises EnvelopeError (form, addressee), KeyTrustError or VerificationError."""
    data, signature = _split(frame)
    raw = strict_json_object(
        data, what="quarantine notice", max_bytes=_MAX_NOTICE_BYTES, error=errors.EnvelopeError
    )
    notice = validate_object(
        QuarantineNotice, raw, what="quarantine notice", error=errors.EnvelopeError
    )
    decided = parse_time(notice.decided_at)
    key = registry.gateway_key(KeyId(notice.gateway_key_id), at=decided)
    registry.gateway_key(KeyId(notice.gateway_key_id), at=now)
    key.verify(signature=signature, message=_signing_input(data))
    if notice.sender != me:
        raise errors.EnvelopeError(f"the notice speaks of a view of {notice.sender}, not {me}")
    source = notice.source
    return VerifiedNotice(
        message_id=MessageId(notice.message_id),
        recipient=PartnerCode(notice.recipient),
        position=(source.topic, source.partition, source.offset),
        reason_code=str(notice.reason_code),
        reason=notice.reason,
        decided_at=decided,
    )


def _signing_input(data: bytes) -> bytes:
    return NOTICE_DOMAIN + _U32.pack(len(data)) + data


def _split(frame: bytes) -> tuple[bytes, bytes]:
    if not frame.startswith(NOTICE_MAGIC):
        raise errors.EnvelopeError("not a quarantine notice")
    offset = len(NOTICE_MAGIC)
    parts = []
    for limit in (_MAX_NOTICE_BYTES, _MAX_SIGNATURE_BYTES):
        if len(frame) < offset + 4:
            raise errors.EnvelopeError("quarantine notice is truncated")
        (length,) = _U32.unpack_from(frame, offset)
        offset += 4
        if length > limit or len(frame) < offset + length:
            raise errors.EnvelopeError("quarantine notice is truncated or oversized")
        parts.append(frame[offset : offset + length])
        offset += length
    if offset != len(frame):
        raise errors.EnvelopeError("quarantine notice has trailing bytes")
    return parts[0], parts[1]
