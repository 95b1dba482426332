"""The delivery frame: the gateway's signed attestation wrapped around an envelope.

What the gateway writes to ``inbox.<R>`` and the receiving adapter checks before opening::

    b"XBD1" || u32be(len(a)) || a || u32be(len(s)) || s || envelope bytes

``a`` is the attestation, canonical JSON::

    {"v": 1, "message_id", "envelope_sha256" (hex), "sender", "recipient", "accord_id",
     "accord_version", "accord_digest", "decision": "allow", "rule_ids": [...],
     "decided_at" (RFC 3339, whole seconds, Z), "gateway_key_id"}

``s`` is the gateway's signature over ``b"xb-gateway-decision-v1\\x00" || u32be(len(a)) || a``.
The receiver checks the signature with the gateway key registered at ``decided_at``, that the
envelope's SHA-256 is the attested one, that it is the attested recipient, and that the
envelope's own header names the same message, sender, recipient and accord.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct
from collections.abc import Iterable
from typing import Annotated, Literal, NoReturn

from pydantic import Field

from broker import crypto, errors, limits
from broker.envelope import DEFAULT_MAX_SKEW, MAX_ENVELOPE_BYTES, ParsedEnvelope, parse
from broker.ids import AccordId, KeyId, MessageId, PartnerCode
from broker.keys import canonical_json
from broker.pipeline.records import (
    GatewayKeys,
    format_time,
    parse_time,
    strict_json_object,
    validate_object,
)
from broker.schema._base import StrictModel

__all__ = [
    "DELIVERY_DOMAIN",
    "DELIVERY_MAGIC",
    "MAX_ATTESTATION_BYTES",
    "MAX_DELIVERY_BYTES",
    "MAX_GATEWAY_SIGNATURE_BYTES",
    "Attestation",
    "VerifiedDelivery",
    "attest",
    "attestation_bytes",
    "verify_attested",
    "verify_delivery",
]

DELIVERY_MAGIC = b"XBD1"
DELIVERY_DOMAIN = b"xb-gateway-decision-v1\x00"
MAX_ATTESTATION_BYTES = limits.ATTESTATION_MAX_BYTES
#: room for a hybrid (Ed25519 + ML-DSA-65) signature
MAX_GATEWAY_SIGNATURE_BYTES = limits.GATEWAY_SIGNATURE_MAX_BYTES
#: what a receiver refuses unparsed: a frame around the largest envelope the format allows
MAX_DELIVERY_BYTES = limits.DELIVERY_FORMAT_MAX_BYTES

_U32 = struct.Struct(">I")
_HEX64 = r"^[0-9a-f]{64}$"
_PARTNER = r"^[A-Z]{2}$"
_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


class Attestation(StrictModel):
    """What the gateway vouches for: this exact envelope was allowed to this recipient."""

    v: Literal[1] = 1
    message_id: Annotated[str, Field(max_length=64)]
    envelope_sha256: Annotated[str, Field(pattern=_HEX64)]
    sender: Annotated[str, Field(pattern=_PARTNER)]
    recipient: Annotated[str, Field(pattern=_PARTNER)]
    accord_id: Annotated[str, Field(max_length=64)]
    accord_version: Annotated[int, Field(ge=1)]
    accord_digest: Annotated[str, Field(pattern=_HEX64)]
    decision: Literal["allow"] = "allow"
    rule_ids: Annotated[tuple[Annotated[str, Field(max_length=128)], ...], Field(max_length=64)]
    decided_at: Annotated[str, Field(pattern=_TIME)]
    gateway_key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]

    @property
    def decided_time(self) -> dt.datetime:
        """``decided_at`` as an aware datetime."""
        return parse_time(self.decided_at)


def _no_truth(self: object) -> NoReturn:
    raise TypeError(f"{type(self).__name__} has no truth value; verification raises on failure")


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedDelivery:
    """A delivery frame whose gateway signature, digest and recipient all checked.

    ``envelope`` (the envelope split into its parts, its header parsed) still has to go
    through ``envelope.open`` (sender signature, decryption).
    """

    attestation: Attestation
    envelope: ParsedEnvelope = dataclasses.field(repr=False)

    __bool__ = _no_truth

    @property
    def envelope_bytes(self) -> bytes:
        """The envelope exactly as delivered."""
        return self.envelope.data


def _signing_input(attestation: bytes) -> bytes:
    return DELIVERY_DOMAIN + _U32.pack(len(attestation)) + attestation


def attest(
    envelope: bytes,
    *,
    message_id: MessageId,
    sender: PartnerCode,
    recipient: PartnerCode,
    accord_id: AccordId,
    accord_version: int,
    accord_digest: str,
    rule_ids: Iterable[str],
    decided_at: dt.datetime,
    gateway_key: crypto.SigningKey,
    envelope_sha256: bytes | None = None,
) -> bytes:
    """Build the attestation for ``envelope``, sign it with ``gateway_key``, return the frame.

    ``envelope_sha256`` is the envelope's digest where the caller computed it already from
    the same bytes (the gateway has it from verifying the envelope).
    """
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise errors.UsageError("the envelope is larger than any delivery may carry")
    attestation = Attestation(
        message_id=message_id,
        envelope_sha256=(envelope_sha256 or crypto.sha256(envelope)).hex(),
        sender=sender,
        recipient=recipient,
        accord_id=accord_id,
        accord_version=accord_version,
        accord_digest=accord_digest,
        rule_ids=tuple(rule_ids),
        decided_at=format_time(decided_at),
        gateway_key_id=gateway_key.public_key().key_id,
    )
    data = attestation_bytes(attestation)
    signature = gateway_key.sign(_signing_input(data))
    return b"".join(
        (DELIVERY_MAGIC, _U32.pack(len(data)), data, _U32.pack(len(signature)), signature, envelope)
    )


def attestation_bytes(attestation: Attestation) -> bytes:
    """The canonical JSON of ``attestation``: the bytes the gateway signs."""
    return canonical_json(attestation.model_dump(mode="json"))


def _split(frame: bytes) -> tuple[bytes, bytes, bytes]:
    if len(frame) > MAX_DELIVERY_BYTES:
        raise errors.EnvelopeError(f"delivery frame is over the {MAX_DELIVERY_BYTES}-byte limit")
    if frame[: len(DELIVERY_MAGIC)] != DELIVERY_MAGIC:
        raise errors.EnvelopeError("not a delivery frame (bad magic)")
    at = len(DELIVERY_MAGIC)
    parts: list[bytes] = []
    for limit in (MAX_ATTESTATION_BYTES, MAX_GATEWAY_SIGNATURE_BYTES):
        if len(frame) < at + _U32.size:
            raise errors.EnvelopeError("delivery frame is truncated")
        (length,) = _U32.unpack_from(frame, at)
        at += _U32.size
        if length > limit or len(frame) < at + length:
            raise errors.EnvelopeError("delivery frame has a bad length")
        parts.append(frame[at : at + length])
        at += length
    return parts[0], parts[1], frame[at:]


def verify_delivery(
    frame: bytes,
    *,
    registry: GatewayKeys,
    recipient: PartnerCode,
    now: dt.datetime,
    max_skew: dt.timedelta = DEFAULT_MAX_SKEW,
) -> VerifiedDelivery:
    """Check a delivery frame from ``inbox.<recipient>``; return the attestation and envelope.

    Raises EnvelopeError (malformed, oversized, addressed to someone else), KeyTrustError (the
    key is not a registered gateway key at ``decided_at`` and now), VerificationError
    (signature, digest, or the envelope header disagrees with the attestation) or ReplayError
    (``decided_at`` outside ``[created - max_skew, now + max_skew]``).
    """
    return _verify(frame, registry=registry, live=(recipient, now, max_skew))


def verify_attested(frame: bytes, *, registry: GatewayKeys) -> VerifiedDelivery:
    """Check a delivery frame long after the fact, as a third party holding a disclosure:
    the attestation was signed by a gateway key registered at its ``decided_at``, over this
    exact envelope, whose header names the attested message, sender, recipient and accord.

    Unlike :func:`verify_delivery` nothing is judged against the present (the gateway's key
    may have expired since) nor against a recipient. Raises as :func:`verify_delivery`.
    """
    return _verify(frame, registry=registry, live=None)


def _verify(
    frame: bytes,
    *,
    registry: GatewayKeys,
    live: tuple[PartnerCode, dt.datetime, dt.timedelta] | None,
) -> VerifiedDelivery:
    data, signature, envelope = _split(frame)
    raw = strict_json_object(
        data,
        what="delivery attestation",
        max_bytes=MAX_ATTESTATION_BYTES,
        error=errors.EnvelopeError,
    )
    attestation = validate_object(
        Attestation, raw, what="delivery attestation", error=errors.EnvelopeError
    )
    decided = attestation.decided_time
    key = registry.gateway_key(KeyId(attestation.gateway_key_id), at=decided)
    if live is not None:
        # The gateway's key must still be valid now: an attestation signed after a
        # revocation and dated before it is refused, whatever it claims.
        registry.gateway_key(KeyId(attestation.gateway_key_id), at=live[1])
    key.verify(signature=signature, message=_signing_input(data))
    if live is not None and decided > live[1] + live[2]:
        raise errors.ReplayError("delivery attestation is dated in the future")
    digest = crypto.sha256(envelope)
    if not crypto.constant_time_equal(digest, bytes.fromhex(attestation.envelope_sha256)):
        raise errors.VerificationError("delivered envelope does not match its attestation")
    if live is not None and attestation.recipient != live[0]:
        raise errors.EnvelopeError(
            f"delivery is addressed to {attestation.recipient}, not {live[0]}"
        )
    parsed = parse(envelope)
    header = parsed.header
    skew = DEFAULT_MAX_SKEW if live is None else live[2]
    if decided < parse_time(header.created) - skew:
        raise errors.ReplayError("delivery attestation is dated before the envelope was sealed")
    claimed = (header.message_id, header.sender, header.recipient, header.accord_id)
    attested = (
        attestation.message_id,
        attestation.sender,
        attestation.recipient,
        attestation.accord_id,
    )
    if claimed != attested:
        raise errors.VerificationError("delivered envelope does not match its attestation")
    return VerifiedDelivery(attestation=attestation, envelope=parsed)
