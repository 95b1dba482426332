"""The receiving side, pure: one delivery frame in, an accepted message or a rejection out.

Every check happens before any side effect, in this order: the gateway's delivery attestation
(signed by a registered gateway key, naming us, binding the envelope's digest), the envelope
itself (sender signature and key validity, time window, decryption, content commitments,
message schema), agreement between the attestation and the signed header, that the content
carries no data category its signed labels did not declare, and finally the accord: the one
this receiver holds with the sender must be the one the delivery names, not halted by a party,
and have a flow for the message, whose retention bounds how long the view is kept
(:mod:`.retention`). A sender that under-declares would have slipped content past the
gateway, which decides on labels alone; it is caught here (``label_mismatch``) and told so
with a rejected receipt.

The daemon stores an :class:`Accepted` message, commits its offset and sends its receipt.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import NoReturn

from broker import crypto, envelope, errors
from broker.envelope import OpenedEnvelope, VerifiedHeader
from broker.ids import KeyId, MessageId, PartnerCode
from broker.keys import Registry
from broker.pipeline import delivery
from broker.pipeline.onward import check_forward
from broker.pipeline.receipts import Acknowledgement
from broker.pipeline.retention import Retention, destroy_by, retention_for
from broker.pipeline.units import unlisted_origin
from broker.reasons import ReasonCode
from broker.schema import Message, categories_present
from broker.schema.labels import Labels, MessageType
from broker.schema.protocol import OnwardForward
from broker.trust import AccordInForce

__all__ = ["Accepted", "ReceiveOutcome", "Rejected", "accept", "attestation_reason"]


def _no_truth(self: object) -> NoReturn:
    raise TypeError(f"{type(self).__name__} has no truth value; match on the type instead")


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    """A delivery that passed every check: store it, then send ``receipt`` (if any) back."""

    message_id: MessageId
    sender: PartnerCode
    labels: Labels
    message: Message = dataclasses.field(repr=False)
    #: canonical JSON of the message, exactly as the sender committed to it
    message_bytes: bytes = dataclasses.field(repr=False)
    header: VerifiedHeader = dataclasses.field(repr=False)
    #: SHA-256 of the envelope: the de-duplication key together with the message id
    envelope_digest: bytes
    received_at: dt.datetime
    #: until when the view is kept, and which rule decided it
    retention: Retention
    #: the commitment salts of the view's fields: with the delivery frame, the evidence a
    #: selective disclosure is built from
    salts: Mapping[str, bytes] = dataclasses.field(repr=False)
    #: the receipt line owed to ``sender``; ``None`` when the message is itself a receipt
    receipt: Acknowledgement | None = dataclasses.field(repr=False)

    __bool__ = _no_truth

    @property
    def retain_until(self) -> dt.datetime:
        """When the view's retention ends (:attr:`retention` says why)."""
        return self.retention.until


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    """A delivery refused before any side effect, with a stable ``reason_code``.

    ``message_id`` and ``sender`` are set only once they were verified; ``receipt`` only when
    the sender is authenticated and deserves to hear why (``label_mismatch``, ``expired``,
    ``unlisted_unit``, ``onward_not_granted``).
    """

    reason_code: ReasonCode
    reason: str
    message_id: MessageId | None = None
    sender: PartnerCode | None = None
    receipt: Acknowledgement | None = dataclasses.field(default=None, repr=False)

    __bool__ = _no_truth


ReceiveOutcome = Accepted | Rejected

# The envelope's failures, most specific first (several are subclasses of EnvelopeError).
_ENVELOPE_REASONS: tuple[tuple[type[errors.BrokerError], ReasonCode], ...] = (
    (errors.ReplayError, ReasonCode.STALE),
    (errors.DecryptionError, ReasonCode.UNDECRYPTABLE),
    (errors.VerificationError, ReasonCode.BAD_SIGNATURE),
    (errors.KeyTrustError, ReasonCode.UNKNOWN_KEY),
    (errors.SchemaError, ReasonCode.INVALID_MESSAGE),
    (errors.EnvelopeError, ReasonCode.MALFORMED),
    (errors.IntegrityError, ReasonCode.MALFORMED),
)


def accept(
    frame: bytes,
    *,
    me: PartnerCode,
    registry: Registry,
    decryption_keys: Mapping[KeyId, crypto.DecryptionKey],
    accords: Mapping[PartnerCode, AccordInForce],
    now: dt.datetime,
    max_retention: dt.timedelta,
    max_age: dt.timedelta = envelope.DEFAULT_MAX_AGE,
    max_skew: dt.timedelta = envelope.DEFAULT_MAX_SKEW,
) -> ReceiveOutcome:
    """Verify one delivery frame addressed to ``me`` and return what may be stored.

    ``decryption_keys`` holds our current and previous KEM keys (rotation overlap), by key
    id. ``accords`` is the accord ``me`` holds with each counterpart, as deciding now;
    ``max_retention`` is the longest this receiver keeps anything (a flow's retention or
    the message's own deadlines may end it sooner). Never raises for bad input: every
    failure is a :class:`Rejected`.
    """
    try:
        delivered = delivery.verify_delivery(
            frame, registry=registry, recipient=me, now=now, max_skew=max_skew
        )
    except errors.IntegrityError as exc:
        return Rejected(attestation_reason(exc), f"delivery attestation: {exc}")
    attestation = delivered.attestation
    try:
        opened = envelope.open(
            delivered.envelope,  # parsed once, by verify_delivery
            registry=registry,
            recipient=me,
            decryption_keys=decryption_keys,
            now=now,
            max_age=max_age,
            max_skew=max_skew,
        )
    except errors.IntegrityError as exc:
        return Rejected(_envelope_reason(exc), f"envelope: {exc}")
    header = opened.header
    mismatch = _attestation_mismatch(attestation, header)
    if mismatch is not None:
        return Rejected(ReasonCode.ATTESTATION_MISMATCH, mismatch)
    message = opened.message
    if message is None:  # open() always validates; None only comes from format-level seams
        return Rejected(ReasonCode.INVALID_MESSAGE, "the envelope carried no validated message")
    unlisted = unlisted_origin(registry, header.sender, header.origin)
    if unlisted is not None:
        return _refusal(opened, message, now, ReasonCode.UNLISTED_UNIT, unlisted)
    if isinstance(message.body, OnwardForward):
        try:
            check_forward(
                message,
                labels=header.labels,
                registry=registry,
                holder=header.sender,
                me=me,
                now=now,
            )
        except (errors.BrokerError, ValueError, TypeError) as exc:  # hostile bytes: never raise
            return _refusal(opened, message, now, ReasonCode.ONWARD_NOT_GRANTED, str(exc))
    return _check_content(opened, message, accords=accords, now=now, max_retention=max_retention)


def _check_content(
    opened: OpenedEnvelope,
    message: Message,
    *,
    accords: Mapping[PartnerCode, AccordInForce],
    now: dt.datetime,
    max_retention: dt.timedelta,
) -> ReceiveOutcome:
    header = opened.header
    content_digest = crypto.sha256(opened.message_bytes)

    def refuse(code: ReasonCode, reason: str) -> Rejected:
        return _refusal(opened, message, now, code, reason)

    undeclared = categories_present(message) - header.labels.data_categories
    if undeclared:
        names = ", ".join(sorted(str(c) for c in undeclared))
        return refuse(
            ReasonCode.LABEL_MISMATCH, f"content carries undeclared data categories: {names}"
        )
    if _labels_disagree(message, header.labels):
        return refuse(ReasonCode.LABEL_MISMATCH, "the signed labels do not describe the message")
    if message.expires is not None and message.expires <= now:
        return refuse(ReasonCode.EXPIRED, f"the message expired at {message.expires.isoformat()}")
    passed = [deadline for deadline in destroy_by(message) if deadline <= now]
    if passed:
        return refuse(
            ReasonCode.EXPIRED,
            f"the originator's destroy-by deadline {min(passed).isoformat()} has passed",
        )
    retention = _retention(header, message, accords.get(header.sender), now, max_retention)
    if isinstance(retention, Rejected):
        return retention
    receipt = None
    if message.type is not MessageType.RECEIPT:
        receipt = Acknowledgement.of(
            message,
            to=header.sender,
            message_id=header.message_id,
            content_sha256=content_digest,
            envelope_sha256=header.envelope_digest,
            received_at=now,
        )
    return Accepted(
        message_id=header.message_id,
        sender=header.sender,
        labels=header.labels,
        message=message,
        message_bytes=opened.message_bytes,
        header=header,
        envelope_digest=header.envelope_digest,
        received_at=now,
        retention=retention,
        salts=opened.salts,
        receipt=receipt,
    )


def _refusal(
    opened: OpenedEnvelope, message: Message, now: dt.datetime, code: ReasonCode, reason: str
) -> Rejected:
    """Refuse a verified delivery for its content: its authenticated sender gets a
    ``rejected`` receipt saying why (never for a receipt)."""
    header = opened.header
    receipt = None
    if message.type is not MessageType.RECEIPT:
        receipt = Acknowledgement.of(
            message,
            to=header.sender,
            message_id=header.message_id,
            content_sha256=crypto.sha256(opened.message_bytes),
            envelope_sha256=header.envelope_digest,
            received_at=now,
            rejected_because=f"{code}: {reason}",
        )
    return Rejected(code, reason, header.message_id, header.sender, receipt)


def _retention(
    header: VerifiedHeader,
    message: Message,
    held: AccordInForce | None,
    now: dt.datetime,
    max_retention: dt.timedelta,
) -> Retention | Rejected:
    """The view's retention under the accord the receiver holds with its sender; refused when
    that accord is missing, another than the one named, halted, or has no flow for it: then
    nobody here knows how long the view may be kept, or a party has stopped the sharing
    (the gateway may have passed it before a suspension reached it)."""

    def refuse(code: ReasonCode, reason: str) -> Rejected:
        return Rejected(code, reason, header.message_id, header.sender)

    if held is None:
        return refuse(
            ReasonCode.NO_ACCORD,
            f"no accord with {header.sender} is held here, so how long to keep it is unknown",
        )
    accord = held.accord
    if accord.accord_id != header.accord_id:
        return refuse(
            ReasonCode.ACCORD_MISMATCH,
            f"sealed under accord {header.accord_id}; the accord held with {header.sender} "
            f"is {accord.accord}",
        )
    if held.digest == header.accord_digest and header.suite is not accord.suite:
        # the version held here is the one it was sealed under, and that version fixes the
        # suite: a gateway that let another through is wrong, and this copy is refused too
        return refuse(
            ReasonCode.SUITE_MISMATCH,
            f"accord {accord.accord} v{accord.version} requires the {accord.suite} suite; "
            f"sealed with {header.suite}",
        )
    if held.halt is not None:
        return refuse(held.halt.code, held.halt.reason)
    flow = accord.routes.get((header.sender, header.recipient, message.type))
    if flow is None:
        return refuse(
            ReasonCode.POLICY_DENIED,
            f"no flow of accord {accord.accord} v{accord.version} carries {message.type} "
            f"from {header.sender} to {header.recipient}",
        )
    return retention_for(
        message, accord=accord, flow=flow, received_at=now, max_retention=max_retention
    )


def _labels_disagree(message: Message, labels: Labels) -> bool:
    # The markings the gateway decided on must be the message's own, not milder ones.
    return (
        labels.message_type is not message.type
        or labels.schema_version != message.schema_version
        or labels.classification is not message.classification
        or labels.tlp is not message.tlp
        or labels.handling is not message.handling
        or labels.purposes != message.purposes
    )


def _attestation_mismatch(attestation: delivery.Attestation, header: VerifiedHeader) -> str | None:
    expected = {
        "message_id": header.message_id,
        "sender": header.sender,
        "recipient": header.recipient,
        "accord_id": header.accord_id,
    }
    for field, value in expected.items():
        attested = getattr(attestation, field)
        if attested != value:
            return f"the gateway attested {field} {attested!r}, the envelope says {value!r}"
    return None


def attestation_reason(exc: errors.IntegrityError) -> ReasonCode:
    """The reason code of a gateway signature that does not check (attestation, notice)."""
    if isinstance(exc, errors.KeyTrustError):
        return ReasonCode.UNKNOWN_GATEWAY_KEY
    if isinstance(exc, errors.VerificationError):
        return ReasonCode.BAD_GATEWAY_SIGNATURE
    return ReasonCode.BAD_ATTESTATION


def _envelope_reason(exc: errors.IntegrityError) -> ReasonCode:
    for kind, code in _ENVELOPE_REASONS:
        if isinstance(exc, kind):
            return code
    return ReasonCode.MALFORMED
