"""The gateway's decision for one outbox record: pure, one record in, one outcome out.

:func:`route` never reads the clock, never does I/O and never raises for bad input: every
failure becomes a :class:`Quarantine` with a stable :class:`~broker.pipeline.ReasonCode`.
The daemon passes ``now``, the registry and accords in force, the rate counters and a
read-only de-duplication lookup, then records the outcome's de-duplication key and produces
what the outcome says (docs/GATEWAY.md).

The gateway never decrypts: it decides on the signed clear labels, after checking the
sender's signature and key validity. Kafka's own metadata (topic, header) is trusted only to
be compared with the signed header, never instead of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from broker import crypto, envelope, errors, limits, strictjson
from broker.envelope import VerifiedHeader
from broker.ids import KeyId, MessageId, PartnerCode
from broker.keys import Registry
from broker.pipeline import delivery
from broker.pipeline._quarantine import QuarantineRecord, bounded_reason, sign_quarantine_record
from broker.pipeline.notice import notice_frame
from broker.pipeline.onward import Grant, check_grant, disclosure_of
from broker.pipeline.records import (
    AuditKind,
    AuditRecord,
    ReasonCode,
    SourcePosition,
    draft_audit_record,
    format_time,
    parse_time,
    sign_audit_record,
    sign_audit_records,
)
from broker.pipeline.revealed import GRANT_HEADER, acknowledged, read_revealed
from broker.pipeline.units import unlisted_origin
from broker.policy import Accord, Decision, Outcome, Request, evaluate
from broker.schema.labels import MessageType
from broker.schema.protocol import Disclosed
from broker.trust import AccordBook
from broker.trust.acts import Act, act_digest

__all__ = [
    "RECIPIENT_HEADER",
    "DedupKey",
    "DedupLookup",
    "Deliver",
    "Duplicate",
    "GatewayOutcome",
    "InboundRecord",
    "Limits",
    "Quarantine",
    "audit_accord_act",
    "quarantine_unroutable",
    "route",
    "sign_outcomes",
]

#: the only Kafka header an outbox record may carry: the recipient, for routing
RECIPIENT_HEADER = "xb-recipient"
DedupVerdict = Literal["new", "duplicate", "conflict"]


@dataclasses.dataclass(frozen=True, slots=True)
class InboundRecord:
    """One record read from an outbox topic, exactly as Kafka returned it."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    #: why the transport could not decode the record whole (None when it could)
    defect: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DedupKey:
    """What gateway de-duplication compares: (message id, recipient) and the envelope digest."""

    message_id: MessageId
    recipient: PartnerCode
    digest: bytes


#: what a key would be (new, duplicate, conflict), recording nothing: the daemon records the
#: outcome's key itself, in the SQLite transaction it commits after the acks
DedupLookup = Callable[[DedupKey], DedupVerdict]


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """The envelope bounds the gateway enforces (from the config's ``limits`` section)."""

    max_envelope_bytes: int = limits.MAX_ENVELOPE_BYTES
    max_age: dt.timedelta = envelope.DEFAULT_MAX_AGE
    max_skew: dt.timedelta = envelope.DEFAULT_MAX_SKEW


@dataclasses.dataclass(frozen=True, slots=True)
class Deliver:
    """Produce ``frame`` to ``topic`` and ``audit`` to the audit topic."""

    topic: str
    frame: bytes = dataclasses.field(repr=False)
    audit: AuditRecord = dataclasses.field(repr=False)
    dedup_key: DedupKey
    #: the accord's decision: the daemon counts it against its flow's rate limit
    decision: Decision = dataclasses.field(repr=False)
    #: the attestation and envelope, not signed yet (``frame`` is empty):
    #: :func:`sign_outcomes` signs the attestations of a batch together
    unsigned: tuple[bytes, bytes] | None = dataclasses.field(default=None, repr=False)


def sign_outcomes(
    outcomes: Sequence[GatewayOutcome], *, gateway_key: crypto.SigningKey
) -> list[GatewayOutcome]:
    """``outcomes`` as :func:`route` decided them with ``sign`` false, signed, in order: each
    recipient's attestations under one head (:func:`broker.pipeline.delivery.sign_deliveries`)
    and every audit record of the batch under one head
    (:func:`broker.pipeline.records.sign_audit_records`)."""
    inboxes: dict[str, list[Deliver]] = {}
    for o in outcomes:
        if isinstance(o, Deliver) and o.unsigned is not None:
            inboxes.setdefault(o.topic, []).append(o)
    frames: dict[int, bytes] = {}
    # One head per recipient's inbox: see delivery.sign_deliveries.
    for waiting in inboxes.values():
        pairs = [o.unsigned for o in waiting if o.unsigned is not None]
        signed = delivery.sign_deliveries(pairs, gateway_key=gateway_key)
        frames.update((id(o), frame) for o, frame in zip(waiting, signed, strict=True))
    # The audit log is one topic every auditor reads whole: one head for the batch.
    drafted = [o for o in outcomes if not isinstance(o, Duplicate) and not o.audit.signature]
    audits = dict(
        zip(
            map(id, drafted),
            sign_audit_records([o.audit for o in drafted], gateway_key=gateway_key),
            strict=True,
        )
    )
    return [_signed(o, frames.get(id(o)), audits.get(id(o))) for o in outcomes]


def _signed(
    outcome: GatewayOutcome, frame: bytes | None, audit: AuditRecord | None
) -> GatewayOutcome:
    if isinstance(outcome, Duplicate):
        return outcome
    if isinstance(outcome, Deliver) and frame is not None:
        outcome = dataclasses.replace(outcome, frame=frame, unsigned=None)
    return outcome if audit is None else dataclasses.replace(outcome, audit=audit)


@dataclasses.dataclass(frozen=True, slots=True)
class Quarantine:
    """Produce ``record`` to the quarantine topic and ``audit`` to the audit topic."""

    record: QuarantineRecord = dataclasses.field(repr=False)
    audit: AuditRecord = dataclasses.field(repr=False)
    #: for a replay conflict, the key the daemon counts as one
    dedup_key: DedupKey | None = None
    #: the notice telling the view's sender (topic, frame: notice.py), when the envelope's
    #: signature verified and it came from its sender's own outbox
    notice: tuple[str, bytes] | None = dataclasses.field(default=None, repr=False)

    @property
    def reason_code(self) -> ReasonCode:
        """Why, as a stable code."""
        return self.record.reason_code


@dataclasses.dataclass(frozen=True, slots=True)
class Duplicate:
    """A byte-identical redelivery of a message already delivered: produce nothing, count it."""

    dedup_key: DedupKey


GatewayOutcome = Deliver | Quarantine | Duplicate


@dataclasses.dataclass
class _Context:
    """What route() has learnt so far about a record, for the quarantine and audit records."""

    record: InboundRecord
    now: dt.datetime
    gateway_key: crypto.SigningKey
    topic_prefix: str = "xb."
    #: false: the audit record is left a draft, for sign_outcomes to sign with its batch
    sign: bool = True
    claimed: envelope.EnvelopeHeader | None = None
    header: envelope.VerifiedHeader | None = None
    accord: Accord | None = None
    accord_digest: str | None = None
    _digest: bytes | None = None

    @property
    def digest(self) -> bytes:
        """SHA-256 of the record's value: hashed once, by the envelope's verification when
        it got that far, else here."""
        if self.header is not None:
            return self.header.envelope_digest
        if self._digest is None:
            self._digest = crypto.sha256(self.record.value or b"")
        return self._digest


def route(
    record: InboundRecord,
    *,
    registry: Registry,
    accords: AccordBook,
    gateway_key: crypto.SigningKey,
    now: dt.datetime,
    counters: Mapping[str, int],
    dedup: DedupLookup,
    topic_prefix: str = "xb.",
    limits: Limits = Limits(),
    sign: bool = True,
) -> GatewayOutcome:
    """Decide what happens to one outbox record (the numbered steps are docs/GATEWAY.md's).

    With ``sign`` false a delivery's attestation and every audit record wait for
    :func:`sign_outcomes` to sign them with the rest of the daemon's output batch."""
    value = record.value or b""
    ctx = _Context(
        record=record, now=now, gateway_key=gateway_key, topic_prefix=topic_prefix, sign=sign
    )

    # 1. a record the transport could not decode whole, then size, before any parsing
    if record.defect is not None:
        return _quarantine(
            ctx, ReasonCode.MALFORMED, f"the record cannot be decoded: {record.defect}"
        )
    if record.value is None:
        return _quarantine(ctx, ReasonCode.MALFORMED, "the record has no value")
    if len(value) > limits.max_envelope_bytes:
        return _quarantine(
            ctx, ReasonCode.OVERSIZED, f"{len(value)} bytes, over {limits.max_envelope_bytes}"
        )
    # 2 and 3. structure, then signature and key validity with the registry and the acceptance
    # window at `now`. verify() parses first, so a malformed envelope fails it exactly where a
    # separate parse would; the envelope is parsed a second time only to name what a failing
    # one claims (the common, valid case parses once).
    try:
        ctx.header = header = envelope.verify(
            value, registry=registry, now=now, max_age=limits.max_age, max_skew=limits.max_skew
        )
    except errors.IntegrityError as exc:
        try:
            claimed = ctx.claimed = envelope.parse(value).header
        except errors.EnvelopeError as malformed:
            return _quarantine(ctx, ReasonCode.MALFORMED, str(malformed))
        code, why = _classify_verify_failure(exc, claimed, registry=registry, now=now)
        return _quarantine(ctx, code, why)
    # 4. the outbox a record came from must be its signed sender's own
    source = _outbox_partner(record.topic, topic_prefix)
    if source != header.sender:
        return _quarantine(
            ctx,
            ReasonCode.SENDER_MISMATCH,
            f"signed by {header.sender} but read from topic {record.topic}",
        )
    # 4b. an officer named in the signed origin is of a unit its partner declares, if it does
    unlisted = unlisted_origin(registry, header.sender, header.origin)
    if unlisted is not None:
        return _quarantine(ctx, ReasonCode.UNLISTED_UNIT, unlisted)
    # 5. the recipient is registered, and the routing header (if any) agrees with the signed one
    if header.recipient not in registry.partners:
        return _quarantine(ctx, ReasonCode.UNKNOWN_RECIPIENT, f"{header.recipient} is unknown")
    routed = [v for name, v in record.headers if name == RECIPIENT_HEADER]
    if len(routed) > 1 or (routed and routed[0] != header.recipient.encode("ascii")):
        return _quarantine(
            ctx,
            ReasonCode.RECIPIENT_MISMATCH,
            f"Kafka header {RECIPIENT_HEADER}={routed!r} disagrees with the signed recipient "
            f"{header.recipient}",
        )
    # 6. the accord in force for the pair; the signed accord id must name it
    accord = accords.for_pair(header.sender, header.recipient)
    if accord is None:
        return _quarantine(
            ctx, ReasonCode.NO_ACCORD, f"no accord between {header.sender} and {header.recipient}"
        )
    ctx.accord, ctx.accord_digest = accord, accords.digest(accord)
    if header.accord_id != accord.accord_id:
        return _quarantine(
            ctx,
            ReasonCode.ACCORD_MISMATCH,
            f"sealed under accord {header.accord_id}; the accord in force is {accord.accord}",
        )
    if header.suite is not accord.suite:
        return _quarantine(
            ctx,
            ReasonCode.SUITE_MISMATCH,
            f"accord {accord.accord_id} requires the {accord.suite} suite; sealed with "
            f"{header.suite}",
        )
    # A party's signed suspension or termination stops every flow, whatever the rules say.
    halt = accords.halt(accord)
    if halt is not None:
        return _quarantine(ctx, halt.code, halt.reason)
    # A different digest under the same id means another version of this accord: the version
    # in force decides (never an older, possibly laxer one), and the audit record names it.
    # 7. policy on the signed labels; REDACT here would mean the sender did not redact: deny
    request = Request(labels=header.labels, sender=header.sender, recipient=header.recipient)
    decision = evaluate(accord, request, now=now, counters=counters)
    if decision.outcome is not Outcome.ALLOW:
        # REDACT here means the sender did not redact: a policy denial like any other
        code = decision.reason_code or ReasonCode.POLICY_DENIED
        return _quarantine(ctx, code, "; ".join(decision.reasons), decision=decision)
    # 8. de-duplication, so only what would be delivered is ever recorded; a redelivery is a
    # duplicate whatever rides beside it
    key = DedupKey(header.message_id, header.recipient, header.envelope_digest)
    verdict = dedup(key)
    if verdict == "duplicate":
        return Duplicate(dedup_key=key)
    if verdict == "conflict":
        conflict = _quarantine(
            ctx,
            ReasonCode.REPLAY_CONFLICT,
            f"message id {header.message_id} was already delivered with different bytes",
        )
        return dataclasses.replace(conflict, dedup_key=key)
    # 8b. the field a receipt or a forward reveals beside it (revealed.py): the message a
    # receipt acknowledges, named in its audit record; the originator's grant for a forward,
    # which must hold for this holder and third party now
    reasons = decision.reasons
    try:
        shown = read_revealed(header, record.headers)
        if header.labels.message_type is MessageType.RECEIPT:
            reasons = (*reasons, _acknowledging(shown, header.labels.schema_version))
    except errors.IntegrityError as exc:
        return _quarantine(ctx, ReasonCode.MALFORMED, f"beside the envelope: {exc}")
    if header.labels.message_type is MessageType.ONWARD_FORWARD:
        grant = _onward_grant(shown, header, registry=registry, now=now)
        if isinstance(grant, str):
            return _quarantine(ctx, ReasonCode.ONWARD_NOT_GRANTED, grant, decision=decision)
        reasons = (*reasons, grant.describe())
    # 9. deliver, with the gateway's attestation and audit record
    attestation = delivery.attestation_for(
        value,
        message_id=header.message_id,
        sender=header.sender,
        recipient=header.recipient,
        accord_id=accord.accord_id,
        accord_version=accord.version,
        accord_digest=ctx.accord_digest,
        rule_ids=decision.rule_ids,
        decided_at=now,
        gateway_key_id=gateway_key.public_key().key_id,
        envelope_sha256=header.envelope_digest,
    )
    unsigned = (attestation, value)
    frame = delivery.sign_deliveries([unsigned], gateway_key=gateway_key)[0] if sign else b""
    kind = (
        AuditKind.RECEIPT
        if header.labels.message_type is MessageType.RECEIPT
        else AuditKind.DISCLOSURE
    )
    return Deliver(
        topic=f"{topic_prefix}inbox.{header.recipient}",
        frame=frame,
        audit=_audit(ctx, kind=kind, decision=decision, reason_code=None, reasons=reasons),
        dedup_key=key,
        decision=decision,
        unsigned=None if sign else unsigned,
    )


def _onward_grant(
    shown: Any, header: VerifiedHeader, *, registry: Registry, now: dt.datetime
) -> Grant | str:
    """The grant a forward reveals beside it (its own committed ``body.grant``), checked for
    this holder and third party now; or why there is none that holds."""
    if shown is None:
        return f"an onward forward reveals its grant in a Kafka header {GRANT_HEADER}; none came"
    try:
        return check_grant(
            disclosure_of(Disclosed.model_validate_json(strictjson.encode(shown))),
            registry=registry,
            holder=header.sender,
            third_party=header.recipient,
            now=now,
        )
    except (errors.BrokerError, ValueError, TypeError) as exc:  # hostile bytes: never raise
        return f"the grant does not hold: {exc}"


def _acknowledging(shown: Any, schema_version: int) -> str:
    """What a receipt's audit record says it acknowledges (a receipt from an adapter that
    does not reveal it yet is routed, and says so)."""
    if shown is None:
        return "acknowledges a message it does not name to the gateway"
    return f"acknowledges {', '.join(acknowledged(shown, schema_version))}"


def audit_accord_act(act: Act, *, gateway_key: crypto.SigningKey, now: dt.datetime) -> AuditRecord:
    """The audit record of a signed act on an accord, from the moment the gateway applies it:
    a suspension or termination is a ``deny`` naming its code, a resumption an ``allow``."""
    code = {
        "suspend": ReasonCode.ACCORD_SUSPENDED,
        "terminate": ReasonCode.ACCORD_TERMINATED,
    }.get(act.kind)
    fields: dict[str, Any] = {
        "kind": AuditKind.ACCORD_ACT,
        "message_id": None,
        "sender": act.by,
        "recipient": None,
        "labels": None,
        "envelope_sha256": act_digest(act),
        "decision": "allow" if code is None else "deny",
        "reason_code": code,
        "rule_ids": (f"{act.accord}.{act.kind}",),
        "reasons": (f"{act.by} signed at {act.at}: {act.reason}",),
        "accord_id": act.accord,
        "accord_version": None,
        "accord_digest": None,
        "justification": None,
        "decided_at": format_time(now),
    }
    return sign_audit_record(fields, gateway_key=gateway_key)


def quarantine_unroutable(
    record: InboundRecord,
    *,
    reason: str,
    gateway_key: crypto.SigningKey,
    now: dt.datetime,
    limits: Limits = Limits(),
) -> Quarantine:
    """Quarantine a record as malformed without looking inside (the daemon's last resort)."""
    ctx = _Context(record=record, now=now, gateway_key=gateway_key)
    return _quarantine(ctx, ReasonCode.MALFORMED, reason)


def _outbox_partner(topic: str, prefix: str) -> PartnerCode | None:
    stem = f"{prefix}outbox."
    code = topic.removeprefix(stem)
    if not topic.startswith(stem) or len(code) != 2 or not code.isascii() or not code.isupper():
        return None
    return PartnerCode(code)


def _classify_verify_failure(
    exc: errors.IntegrityError,
    claimed: envelope.EnvelopeHeader,
    *,
    registry: Registry,
    now: dt.datetime,
) -> tuple[ReasonCode, str]:
    """Name a verification failure by looking at the registry, never by parsing messages."""
    if isinstance(exc, errors.ReplayError):
        future = parse_time(claimed.created) > now
        return (ReasonCode.FUTURE_DATED if future else ReasonCode.STALE), str(exc)
    if isinstance(exc, errors.VerificationError):
        return ReasonCode.BAD_SIGNATURE, "the sender's signature does not verify"
    if not isinstance(exc, errors.KeyTrustError):
        return ReasonCode.MALFORMED, str(exc)
    if claimed.sender not in registry.partners:
        return ReasonCode.UNKNOWN_SENDER, f"sender {claimed.sender} is not a registered partner"
    records = {r.key_id: r for r in registry.key_records()}
    signing = records.get(KeyId(claimed.sender_key_id))
    if signing is None or signing.role != "signing" or signing.owner != claimed.sender:
        return (
            ReasonCode.UNKNOWN_KEY,
            f"{claimed.sender} has no signing key {claimed.sender_key_id}",
        )
    created = parse_time(claimed.created)
    # the key must be valid when the envelope says it was sealed and now (a back-dated
    # envelope signed with a key revoked since is refused as revoked)
    for at, when in ((created, claimed.created), (now, "now")):
        status = signing.status_at(at)
        if status == "revoked":
            why = f"signing key {signing.key_id} was revoked: {signing.reason}"
            return ReasonCode.REVOKED_KEY, why
        if status != "valid":
            return ReasonCode.EXPIRED_KEY, f"signing key {signing.key_id} {status} at {when}"
    if claimed.recipient not in registry.partners:
        return ReasonCode.UNKNOWN_RECIPIENT, f"recipient {claimed.recipient} is not registered"
    encryption = records.get(KeyId(claimed.recipient_key_id))
    if (
        encryption is None
        or encryption.owner != claimed.recipient
        or encryption.status_at(created) != "valid"
        or encryption.status_at(now) != "valid"
    ):
        return ReasonCode.RECIPIENT_KEY_INVALID, str(exc)
    return ReasonCode.SUITE_MISMATCH, str(exc)


def _named(ctx: _Context) -> envelope.EnvelopeHeader | envelope.VerifiedHeader | None:
    """Where the message id, sender and recipient of the records come from: the verified
    header once there is one (the same values the envelope claims), else the claimed one."""
    return ctx.header if ctx.header is not None else ctx.claimed


def _quarantine(
    ctx: _Context,
    code: ReasonCode,
    reason: str,
    *,
    decision: Decision | None = None,
) -> Quarantine:
    # The record keeps a digest and a bounded prefix of the value, never all of it: it must
    # fit what the broker accepts whatever was refused, or it would stall the gateway.
    record = ctx.record
    source = SourcePosition(topic=record.topic, partition=record.partition, offset=record.offset)
    claimed = _named(ctx)
    fields = {
        "id": source.record_id,
        "reason_code": code,
        "reason": reason,
        "quarantined_at": format_time(ctx.now),
        "source": source,
        "message_id": None if claimed is None else claimed.message_id,
        "sender": None if claimed is None else claimed.sender,
        "recipient": None if claimed is None else claimed.recipient,
        "decision": None if decision is None else decision.to_json(),
    }
    quarantined = sign_quarantine_record(fields, record.value, gateway_key=ctx.gateway_key)
    reasons = (reason,) if decision is None else decision.reasons
    audit = _audit(
        ctx, kind=AuditKind.REFUSAL, decision=decision, reason_code=code, reasons=reasons
    )
    notice = _notice(ctx, code, reason, source)
    return Quarantine(record=quarantined, audit=audit, notice=notice)


def _notice(
    ctx: _Context, code: ReasonCode, reason: str, source: SourcePosition
) -> tuple[str, bytes] | None:
    """The sender's notice of its quarantined view: only for an envelope its sender signed,
    read from that sender's own outbox (never one a third party could make us send)."""
    header = ctx.header
    if header is None or code is ReasonCode.SENDER_MISMATCH:
        return None
    frame = notice_frame(
        message_id=header.message_id,
        sender=header.sender,
        recipient=header.recipient,
        envelope_sha256=ctx.digest,
        source=source,
        reason_code=code,
        reason=reason,
        decided_at=ctx.now,
        gateway_key=ctx.gateway_key,
    )
    return f"{ctx.topic_prefix}inbox.{header.sender}", frame


def _audit(
    ctx: _Context,
    *,
    kind: AuditKind,
    decision: Decision | None,
    reason_code: ReasonCode | None,
    reasons: tuple[str, ...],
) -> AuditRecord:
    header, claimed, accord = ctx.header, _named(ctx), ctx.accord
    fields: dict[str, Any] = {
        "kind": kind,
        "message_id": None if claimed is None else claimed.message_id,
        "sender": None if claimed is None else claimed.sender,
        "recipient": None if claimed is None else claimed.recipient,
        "labels": None if header is None else header.labels,
        "envelope_sha256": ctx.digest.hex(),
        "decision": "allow" if reason_code is None else "deny",
        "reason_code": reason_code,
        "rule_ids": () if decision is None else decision.rule_ids,
        "reasons": tuple(bounded_reason(r) for r in reasons),
        "accord_id": None if accord is None else accord.accord,
        "accord_version": None if accord is None else accord.version,
        "accord_digest": ctx.accord_digest,
        "justification": None
        if header is None
        else {
            "purposes": tuple(sorted(str(p) for p in header.labels.purposes)),
            "flow": None if decision is None else decision.flow,
        },
        "decided_at": format_time(ctx.now),
    }
    if ctx.sign:
        return sign_audit_record(fields, gateway_key=ctx.gateway_key)
    return draft_audit_record(fields, gateway_key_id=ctx.gateway_key.public_key().key_id)
