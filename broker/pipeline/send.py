"""The sending side, pure: one message and its recipients in, one sealed view or refusal each out.

For every recipient the accord of the pair decides on the full content
(:func:`broker.policy.decide_for_recipient`); a denial becomes a :class:`Refused` with the
accord's reasons, anything else is the recipient's own (possibly redacted) view, sealed for
that recipient alone with a fresh message id. Nothing here reads the clock, touches a file or
talks to Kafka: the daemon passes ``now``, the rate counters and the keys, and produces what
comes back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from broker import cosign, crypto, envelope, errors, limits
from broker.envelope import Origin, Unsigned
from broker.ids import CaseId, KeyId, MessageId, PartnerCode, new_message_id
from broker.keys import Registry
from broker.pipeline.revealed import revealed_field, revealed_header
from broker.pipeline.units import unlisted_origin, unreadable_at
from broker.policy import Accord, Decision, decide_for_recipient, out_of_force
from broker.reasons import ReasonCode
from broker.schema import Message, labels_of, parse_message
from broker.schema.handling import HandlingCondition, RestrictToUnits
from broker.schema.labels import HandlingCode, Labels, MessageType
from broker.trust import AccordInForce

__all__ = [
    "DEFAULT_TTL",
    "WITHHELD_REASON",
    "AccordInForce",
    "Cleared",
    "Outgoing",
    "Refused",
    "SendOutcome",
    "Signers",
    "accord_digest",
    "clear",
    "prepare",
    "prepare_receipt",
    "sign_views",
    "withdrawal_for",
    "withholds_reason",
]

#: the reason a withdrawal of a view restricted to units gives: the recipient's other units
#: read withdrawals too, and the reason may tell what the view held
WITHHELD_REASON = (
    "withdrawn by its originator; the reason is not sent for a view restricted to units"
)
#: how long an envelope stays acceptable; receivers also refuse anything older than max age
DEFAULT_TTL = dt.timedelta(days=2)
#: at most this many recipients per submission (one envelope each)
MAX_RECIPIENTS = 32
#: the sender's signing key, or its key per suite when it holds keys of two (the accord's
#: suite picks the one that signs)
Signers = crypto.SigningKey | Mapping[crypto.Suite, crypto.SigningKey]


def _no_truth(self: object) -> NoReturn:
    raise TypeError(f"{type(self).__name__} has no truth value; match on the type instead")


def accord_digest(accord: Accord) -> str:
    """The accord digest an envelope header carries: the digest the parties co-signed
    (:func:`broker.cosign.accord_digest`, hex SHA-256 of the accord's canonical bytes)."""
    return cosign.accord_digest(accord)


@dataclasses.dataclass(frozen=True, slots=True)
class Outgoing:
    """One sealed view for one recipient: produce ``envelope`` to the sender's outbox."""

    recipient: PartnerCode
    message_id: MessageId
    envelope: bytes = dataclasses.field(repr=False)
    #: the accord's decision for the view; ``None`` only for receipts (protocol messages)
    decision: Decision | None
    #: the labels and case id its signed header carries
    labels: Labels | None = None
    case_id: CaseId | None = None
    #: the Kafka header the gateway reads beside the envelope (name, value): a forward's
    #: grant, the id a receipt acknowledges
    gateway_header: tuple[str, bytes] | None = dataclasses.field(default=None, repr=False)
    #: sealed but not signed yet (``envelope`` is empty): :func:`sign_views` signs it with
    #: the other views of its batch under one head
    unsigned: Unsigned | None = dataclasses.field(default=None, repr=False)
    #: the officer its signed header names as having submitted it, if any
    origin: Origin | None = None
    #: the view's handling conditions, kept with its fate (:func:`withholds_reason`)
    conditions: tuple[HandlingCondition, ...] = ()

    __bool__ = _no_truth


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """A recipient who gets nothing, and why (stable ``reason_code`` plus readable reasons)."""

    recipient: PartnerCode
    reason_code: ReasonCode
    reasons: tuple[str, ...]
    decision: Decision | None = None

    __bool__ = _no_truth


SendOutcome = Outgoing | Refused


@dataclasses.dataclass(frozen=True, slots=True)
class Cleared:
    """A recipient the accord lets have a view, with everything sealing it needs: what
    :func:`clear` decides before any key of the sender is touched."""

    recipient: PartnerCode
    view: Message = dataclasses.field(repr=False)
    labels: Labels = dataclasses.field(repr=False)
    #: the accord's decision for the view; ``None`` only for receipts (protocol messages)
    decision: Decision | None
    in_force: AccordInForce = dataclasses.field(repr=False)
    recipient_key_id: KeyId
    recipient_key: crypto.EncryptionKey = dataclasses.field(repr=False)
    lifetime: dt.timedelta

    __bool__ = _no_truth


def clear(
    message: Message,
    *,
    sender: PartnerCode,
    recipients: Sequence[PartnerCode],
    accords: Mapping[PartnerCode, AccordInForce],
    registry: Registry,
    now: dt.datetime,
    counters: Mapping[str, int],
    ttl: dt.timedelta = DEFAULT_TTL,
) -> list[Cleared | Refused]:
    """Decide ``message`` for each recipient, in the order given, without sealing anything.

    ``accords`` maps each recipient to the accord the sender shares with it; a recipient
    without one is refused (``no_accord``), as is one whose accord has expired or is not yet
    in force (``accord_expired``, ``accord_not_yet_effective``), has been suspended or
    terminated by a party (``accord_suspended``, ``accord_terminated``), or denies the message
    (``policy_denied``, ``rate_limited``), who has no valid encryption key (``unknown_key``) or
    only one of another suite than the accord's (``suite_mismatch``), whose registry entry
    lists units none of which every ``restrict-to-units`` condition names, or any recipient
    when such a condition names something no unit can be called (``unlisted_unit``), or
    when the message has already expired (``expired``). This is all of :func:`prepare` that
    needs no private key: ``broker send`` runs it to tell the operator at once what the
    adapter would refuse.
    Raises :class:`errors.UsageError` for a bad recipient list (empty, repeated, too long, or
    the sender itself).
    """
    _check_recipients(sender, recipients)
    if now.tzinfo is None:
        raise errors.UsageError("now must be a timezone-aware datetime")
    lifetime = _lifetime(message, now=now, ttl=ttl)
    outcomes: list[Cleared | Refused] = []
    # The message's labels, computed once for every recipient; a view that redaction left
    # unchanged shares them, and a redacted one is labelled once, by decide_for_recipient.
    full_labels: Labels | None = None
    for recipient in recipients:
        in_force = accords.get(recipient)
        if lifetime is None:
            outcomes.append(
                Refused(
                    recipient,
                    ReasonCode.EXPIRED,
                    (f"the message expired at {message.expires}",),
                )
            )
            continue
        if in_force is None:
            outcomes.append(
                Refused(
                    recipient,
                    ReasonCode.NO_ACCORD,
                    (f"no accord in force between {sender} and {recipient}",),
                )
            )
            continue
        if in_force.halt is not None:
            outcomes.append(Refused(recipient, in_force.halt.code, (in_force.halt.reason,)))
            continue
        unmet = unreadable_at(registry, recipient, message)
        if unmet is not None:
            outcomes.append(Refused(recipient, ReasonCode.UNLISTED_UNIT, (unmet,)))
            continue
        if full_labels is None:
            full_labels = labels_of(message)
        result = decide_for_recipient(
            in_force.accord,
            message,
            sender,
            recipient,
            now=now,
            counters=counters,
            labels=full_labels,
        )
        if not result.decision.permits or result.view is None:
            code = result.decision.reason_code or ReasonCode.POLICY_DENIED
            outcomes.append(Refused(recipient, code, result.decision.reasons, result.decision))
            continue
        key = _recipient_key(registry, recipient, in_force, now=now, decision=result.decision)
        if isinstance(key, Refused):
            outcomes.append(key)
            continue
        view = result.view
        labels = result.labels if result.labels is not None else labels_of(view)
        outcomes.append(Cleared(recipient, view, labels, result.decision, in_force, *key, lifetime))
    return outcomes


def prepare(
    message: Message,
    *,
    sender: PartnerCode,
    recipients: Sequence[PartnerCode],
    accords: Mapping[PartnerCode, AccordInForce],
    registry: Registry,
    signing_key: Signers,
    now: dt.datetime,
    counters: Mapping[str, int],
    ttl: dt.timedelta = DEFAULT_TTL,
    max_envelope_bytes: int = limits.MAX_ENVELOPE_BYTES,
    message_ids: Mapping[PartnerCode, MessageId] | None = None,
    sign: bool = True,
    origin: Origin | None = None,
) -> list[SendOutcome]:
    """Decide, redact and seal ``message`` for each recipient, in the order given.

    Every refusal of :func:`clear`, and also: ``origin`` names a unit our registry entry
    does not list (``unlisted_unit``, for every recipient), our signing key is not of the
    accord's suite (``suite_mismatch``), or the sealed view is larger than ``max_envelope_bytes``
    (``oversized``: the gateway would refuse it, and Kafka might refuse to even take it,
    stalling the sender). ``message_ids`` gives the id of a recipient's view when it was
    chosen before (``broker send`` prints them); otherwise each view gets a fresh UUIDv7.
    With ``sign`` false the views wait, unsigned, for :func:`sign_views` to sign a whole
    batch of them (the size check then counts the largest batch proof). ``origin`` names the
    officer who submitted the message in every view's signed header.
    """
    outcomes: list[SendOutcome] = []
    chosen = message_ids or {}
    unlisted = unlisted_origin(registry, sender, origin)
    if unlisted is not None:
        _check_recipients(sender, recipients)
        return [Refused(r, ReasonCode.UNLISTED_UNIT, (unlisted,)) for r in recipients]
    cleared = clear(
        message,
        sender=sender,
        recipients=recipients,
        accords=accords,
        registry=registry,
        now=now,
        counters=counters,
        ttl=ttl,
    )
    for outcome in cleared:
        if isinstance(outcome, Refused):
            outcomes.append(outcome)
            continue
        sealed = _seal(
            outcome,
            sender=sender,
            signing_key=signing_key,
            now=now,
            message_id=chosen.get(outcome.recipient),
            sign=sign,
            origin=origin,
        )
        if isinstance(sealed, Outgoing) and _size(sealed) > max_envelope_bytes:
            why = f"the sealed view is {_size(sealed)} bytes, over {max_envelope_bytes}"
            sealed = Refused(outcome.recipient, ReasonCode.OVERSIZED, (why,), outcome.decision)
        outcomes.append(sealed)
    return outcomes


def _size(view: Outgoing) -> int:
    """The view's size signed: exact, or at most this once signed in any batch."""
    return len(view.envelope) if view.unsigned is None else view.unsigned.signed_size_bound


def sign_views(submissions: Sequence[Sequence[SendOutcome]]) -> list[list[SendOutcome]]:
    """Every unsigned view of ``submissions`` signed, each sender key's under one head
    (:func:`broker.envelope.sign_all`); the rest as they were, in the same places."""
    waiting = [o for views in submissions for o in views if isinstance(o, Outgoing) and o.unsigned]
    signed = iter(envelope.sign_all([o.unsigned for o in waiting if o.unsigned is not None]))
    done = {id(o): dataclasses.replace(o, envelope=next(signed), unsigned=None) for o in waiting}
    return [[done.get(id(o), o) for o in views] for views in submissions]


def withdrawal_for(
    labels: Labels,
    *,
    case_id: str | None,
    withdraws: MessageId,
    reason: str,
    replaced_by: MessageId | None = None,
    conditions: Sequence[HandlingCondition] | None = None,
) -> Message:
    """The ``withdrawal`` taking back view ``withdraws``, sealed earlier under ``labels``
    (and ``case_id``) with handling ``conditions``; with ``replaced_by`` a correction, naming
    the view that replaces it.

    It keeps the view's markings and purposes, as a receipt does: it speaks of that view. It
    binds no conditions of its own, so it passes wherever the view did and shreds it whatever
    has changed since (an accord's handling codes, the recipient's units, a deadline); an H3
    view's withdrawal is H2, which still forbids passing it on. Anyone who may read the
    recipient's inbox reads it, so :data:`WITHHELD_REASON` stands for ``reason`` when the
    view was restricted to units (:func:`withholds_reason`).
    """
    if labels.message_type in (MessageType.RECEIPT, MessageType.WITHDRAWAL):
        raise errors.UsageError(f"a {labels.message_type} is never withdrawn or corrected")
    handling = HandlingCode.H2 if labels.handling is HandlingCode.H3 else labels.handling
    document: dict[str, object] = {
        "type": str(MessageType.WITHDRAWAL),
        "schema_version": 1,
        "classification": str(labels.classification),
        "tlp": str(labels.tlp),
        "handling": str(handling),
        "purposes": sorted(str(p) for p in labels.purposes),
        "body": {
            "withdraws": withdraws,
            "reason": WITHHELD_REASON if withholds_reason(labels, conditions) else reason,
            **({} if replaced_by is None else {"replaced_by": replaced_by}),
        },
    }
    if case_id is not None:
        document["case_id"] = case_id
    return parse_message(json.dumps(document, separators=(",", ":"), sort_keys=True).encode())


def withholds_reason(labels: Labels, conditions: Sequence[HandlingCondition] | None) -> bool:
    """Whether a withdrawal of a view sealed under ``labels`` and ``conditions`` keeps its
    reason from the recipient: when the view was restricted to units, whose officers alone
    may know what it held, or was H3 under conditions not kept (``None``: journalled by an
    earlier release), which may have restricted it."""
    if conditions is None:
        return labels.handling is HandlingCode.H3
    return any(isinstance(c, RestrictToUnits) for c in conditions)


def prepare_receipt(
    receipt: Message,
    *,
    sender: PartnerCode,
    recipient: PartnerCode,
    accord: AccordInForce,
    registry: Registry,
    signing_key: Signers,
    now: dt.datetime,
    ttl: dt.timedelta = DEFAULT_TTL,
    sign: bool = True,
) -> SendOutcome:
    """Seal a receipt back to the original sender under the accord the two share (unsigned,
    for :func:`sign_views`, with ``sign`` false).

    Receipts are protocol messages: no flow of the accord decides on their content (they
    carry no intelligence), but they are signed and encrypted like any view and travel through
    the gateway, which audits them. They travel only while the accord is in force: one that has
    expired or is not yet in force refuses the receipt here, as the gateway would.
    """
    if receipt.type is not MessageType.RECEIPT:
        raise errors.UsageError(f"prepare_receipt seals receipts, not {receipt.type}")
    if recipient == sender:
        raise errors.UsageError("a partner does not send receipts to itself")
    if accord.halt is not None:
        return Refused(recipient, accord.halt.code, (accord.halt.reason,))
    lapsed = out_of_force(accord.accord, now=now)
    if lapsed is not None:
        code = lapsed.reason_code or ReasonCode.ACCORD_EXPIRED
        return Refused(recipient, code, lapsed.reasons, lapsed)
    key = _recipient_key(registry, recipient, accord, now=now, decision=None)
    if isinstance(key, Refused):
        return key
    cleared = Cleared(recipient, receipt, labels_of(receipt), None, accord, *key, ttl)
    return _seal(
        cleared, sender=sender, signing_key=signing_key, now=now, message_id=None, sign=sign
    )


def _recipient_key(
    registry: Registry,
    recipient: PartnerCode,
    in_force: AccordInForce,
    *,
    now: dt.datetime,
    decision: Decision | None,
) -> tuple[KeyId, crypto.EncryptionKey] | Refused:
    # The accord fixes the suite for the pair (e.g. post-quantum for long-lived secrets): the
    # recipient's newest key of that suite, never one of another, which would downgrade it.
    try:
        return registry.current_encryption_key(recipient, at=now, suite=in_force.accord.suite)
    except errors.KeyTrustError as exc:
        try:
            _, other = registry.current_encryption_key(recipient, at=now)
        except errors.KeyTrustError:
            return Refused(recipient, ReasonCode.UNKNOWN_KEY, (str(exc),), decision)
    return _suite_mismatch(recipient, in_force, recipient_suite=other.suite, decision=decision)


def _seal(
    cleared: Cleared,
    *,
    sender: PartnerCode,
    signing_key: Signers,
    now: dt.datetime,
    message_id: MessageId | None,
    sign: bool = True,
    origin: Origin | None = None,
) -> SendOutcome:
    in_force, recipient = cleared.in_force, cleared.recipient
    decision = cleared.decision
    signers = (
        {signing_key.suite: signing_key}
        if isinstance(signing_key, crypto.SigningKey)
        else signing_key
    )
    signer = signers.get(in_force.accord.suite)
    if signer is None:
        return _suite_mismatch(
            recipient,
            in_force,
            recipient_suite=cleared.recipient_key.suite,
            decision=decision,
            sender_suite=", ".join(sorted(signers)),
        )
    message_id = message_id or new_message_id(unix_ms=int(now.timestamp() * 1000))
    sealing: dict[str, Any] = {
        "labels": cleared.labels,
        "sender": sender,
        "sender_key": signer,
        "recipient": recipient,
        "recipient_key_id": cleared.recipient_key_id,
        "recipient_key": cleared.recipient_key,
        "accord_id": in_force.accord.accord_id,
        "accord_digest": in_force.digest,
        "now": now,
        "ttl": cleared.lifetime,
        "message_id": message_id,
        "origin": origin,
    }
    beside: tuple[str, bytes] | None = None
    shown = revealed_field(cleared.view.type, cleared.view.schema_version)
    # one field of the body shown to the gateway, bound to this envelope (revealed.py)
    reveal = () if shown is None else (shown[1],)
    unsigned, revealed = envelope.seal_unsigned(cleared.view, reveal=reveal, **sealing)
    if shown is not None:
        beside = (shown[0], revealed_header(revealed[shown[1]]))
    sealed = envelope.sign_all([unsigned])[0] if sign else b""
    case_id = None if cleared.view.case_id is None else CaseId(cleared.view.case_id)
    return Outgoing(
        recipient,
        message_id,
        sealed,
        decision,
        cleared.labels,
        case_id,
        beside,
        None if sign else unsigned,
        origin,
        cleared.view.handling_conditions,
    )


def _suite_mismatch(
    recipient: PartnerCode,
    in_force: AccordInForce,
    *,
    recipient_suite: crypto.Suite,
    decision: Decision | None,
    sender_suite: str | None = None,
) -> Refused:
    wanted = in_force.accord.suite
    keys = f"{recipient_suite} (recipient)"
    if sender_suite is not None:
        keys = f"{sender_suite} (sender) and {keys}"
    return Refused(
        recipient,
        ReasonCode.SUITE_MISMATCH,
        (f"accord {in_force.accord.accord_id} requires the {wanted} suite; the keys are {keys}",),
        decision,
    )


def _check_recipients(sender: PartnerCode, recipients: Sequence[PartnerCode]) -> None:
    if not recipients:
        raise errors.UsageError("a message needs at least one recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise errors.UsageError(f"at most {MAX_RECIPIENTS} recipients per message")
    if len(set(recipients)) != len(recipients):
        raise errors.UsageError("each recipient may be named once")
    if sender in recipients:
        raise errors.UsageError(f"{sender} cannot send to itself")


def _lifetime(message: Message, *, now: dt.datetime, ttl: dt.timedelta) -> dt.timedelta | None:
    # An envelope never outlives the message it carries; None when the message is already dead.
    if message.expires is None:
        return ttl
    left = message.expires - now.replace(microsecond=0)
    if left <= dt.timedelta(0):
        return None
    return min(ttl, left)
