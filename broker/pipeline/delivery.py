"""The delivery frame: the gateway's signed attestation wrapped around an envelope.

What the gateway writes to ``inbox.<R>`` and the receiving adapter checks before opening::

    b"XBD1" || u32be(len(a)) || a || u32be(len(s)) || s || envelope bytes
    b"XBD2" || u32be(len(a)) || a || u32be(len(s)) || s || proof || envelope bytes

``a`` is the attestation, canonical JSON::

    {"v": 1, "message_id", "envelope_sha256" (hex), "sender", "recipient", "accord_id",
     "accord_version", "accord_digest", "decision": "allow", "rule_ids": [...],
     "decided_at" (RFC 3339, whole seconds, Z), "gateway_key_id"}

``s`` is the gateway's signature over ``b"xb-gateway-decision-v1\\x00" || u32be(len(a)) || a``
(``XBD1``), or, for the attestations of one output batch signed together (``XBD2``), over
``b"xb-gateway-batch-v1\\x00" || u32be(N) || head``, the RFC 6962 head of the N attestations'
signing inputs, which ``proof`` (:class:`broker.crypto.BatchProof`) leads to from this one's.
The receiver checks the signature with the gateway key registered at ``decided_at``, that the
envelope's SHA-256 is the attested one, that it is the attested recipient, and that the
envelope's own header names the same message, sender, recipient and accord.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct
from collections.abc import Iterable, Sequence
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
    "DELIVERY_BATCH_DOMAIN",
    "DELIVERY_BATCH_MAGIC",
    "DELIVERY_DOMAIN",
    "DELIVERY_MAGIC",
    "MAX_ATTESTATION_BYTES",
    "MAX_DELIVERY_BYTES",
    "MAX_GATEWAY_SIGNATURE_BYTES",
    "Attestation",
    "VerifiedDelivery",
    "attest",
    "attestation_bytes",
    "attestation_for",
    "sign_deliveries",
    "verify_attested",
    "verify_delivery",
]

DELIVERY_MAGIC = b"XBD1"
DELIVERY_DOMAIN = b"xb-gateway-decision-v1\x00"
#: a delivery whose attestation is signed with the others of its output batch
DELIVERY_BATCH_MAGIC = b"XBD2"
DELIVERY_BATCH_DOMAIN = b"xb-gateway-batch-v1\x00"
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
    """Build the attestation for ``envelope``, sign it alone with ``gateway_key``, return the
    frame (:func:`attestation_for` and :func:`sign_deliveries` sign a batch together)."""
    attestation = attestation_for(
        envelope,
        message_id=message_id,
        sender=sender,
        recipient=recipient,
        accord_id=accord_id,
        accord_version=accord_version,
        accord_digest=accord_digest,
        rule_ids=rule_ids,
        decided_at=decided_at,
        gateway_key_id=gateway_key.public_key().key_id,
        envelope_sha256=envelope_sha256,
    )
    return sign_deliveries([(attestation, envelope)], gateway_key=gateway_key)[0]


def attestation_for(
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
    gateway_key_id: str,
    envelope_sha256: bytes | None = None,
) -> bytes:
    """The attestation's canonical bytes for ``envelope``, to be signed.

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
        gateway_key_id=gateway_key_id,
    )
    return attestation_bytes(attestation)


def sign_deliveries(
    deliveries: Sequence[tuple[bytes, bytes]], *, gateway_key: crypto.SigningKey
) -> list[bytes]:
    """The delivery frames of ``(attestation, envelope)`` pairs, in order: the attestations
    signed under one head per :data:`broker.crypto.MAX_BATCH` (``XBD2``), or alone when there
    is one (``XBD1``, which costs the receiver no path).

    Pass one recipient's deliveries: a head over several inboxes' deliveries would tell each
    recipient, by its batch size and the shared signature, how much went to the others."""
    frames: list[bytes] = []
    for start in range(0, len(deliveries), crypto.MAX_BATCH):
        chunk = deliveries[start : start + crypto.MAX_BATCH]
        if len(chunk) == 1:
            ((attestation, envelope),) = chunk
            signature = gateway_key.sign(_signing_input(attestation))
            frames.append(_frame(DELIVERY_MAGIC, attestation, signature, b"", envelope))
            continue
        signature, proofs = crypto.sign_batch(
            gateway_key, [_signing_input(a) for a, _ in chunk], prefix=DELIVERY_BATCH_DOMAIN
        )
        frames += [
            _frame(DELIVERY_BATCH_MAGIC, attestation, signature, proof.to_bytes(), envelope)
            for (attestation, envelope), proof in zip(chunk, proofs, strict=True)
        ]
    return frames


def _frame(
    magic: bytes, attestation: bytes, signature: bytes, proof: bytes, envelope: bytes
) -> bytes:
    return b"".join(
        (
            magic,
            _U32.pack(len(attestation)),
            attestation,
            _U32.pack(len(signature)),
            signature,
            proof,
            envelope,
        )
    )


def attestation_bytes(attestation: Attestation) -> bytes:
    """The canonical JSON of ``attestation``: the bytes the gateway signs."""
    return canonical_json(attestation.model_dump(mode="json"))


def _split(frame: bytes) -> tuple[bytes, bytes, crypto.BatchProof | None, bytes]:
    if len(frame) > MAX_DELIVERY_BYTES:
        raise errors.EnvelopeError(f"delivery frame is over the {MAX_DELIVERY_BYTES}-byte limit")
    magic = frame[: len(DELIVERY_MAGIC)]
    if magic not in (DELIVERY_MAGIC, DELIVERY_BATCH_MAGIC):
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
    proof = None
    if magic == DELIVERY_BATCH_MAGIC:
        proof, at = crypto.BatchProof.read(frame, at, what="delivery frame")
    return parts[0], parts[1], proof, frame[at:]


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
    data, signature, proof, envelope = _split(frame)
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
    if proof is None:
        key.verify(signature=signature, message=_signing_input(data))
    else:
        crypto.verify_member(
            key,
            signature=signature,
            message=_signing_input(data),
            proof=proof,
            prefix=DELIVERY_BATCH_DOMAIN,
        )
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
