"""What the adapter does with a delivery it refuses: count it, log it, and record it.

A delivery the gateway let through may still be refused here (a sender key revoked under our
newer registry, a bad attestation, a label mismatch). Counting and logging alone would let it
vanish, so :func:`rejection_row` also turns it into a row of the inbox's ``rejected`` table,
which :meth:`~broker.adapter.core.Adapter.receive_many` writes in the same transaction as the
batch's accepted messages, before the offsets are committed.

What the row says about the message is only what could be verified: the sender-verified id
and sender when the envelope's signature checked; otherwise, when the gateway's signature on
the frame's attestation checks, the attested id and sender and the case id of the exact
envelope the gateway attested (``identified_by="attestation"``); otherwise nothing. Nothing
is decrypted to find out more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import structlog

from broker import crypto, errors
from broker.ids import KeyId, PartnerCode
from broker.keys import Registry
from broker.pipeline import verify_delivery
from broker.pipeline.disclosure import Evidence
from broker.pipeline.notice import VerifiedNotice, is_notice, verify_notice
from broker.pipeline.receive import Accepted, Rejected, accept, attestation_reason
from broker.reasons import ReasonCode
from broker.runtime import Counter
from broker.store import IdentifiedBy, InboxItem, RejectedDelivery
from broker.trust import AccordInForce

__all__ = ["inbox_item", "log_rejection", "rejection_row", "verify_record"]

_log = structlog.get_logger(__name__)


def verify_record(
    frame: bytes | None,
    defect: str | None,
    *,
    me: PartnerCode,
    registry: Registry,
    decryption_keys: Mapping[KeyId, crypto.DecryptionKey],
    accords: Mapping[PartnerCode, AccordInForce],
    now: dt.datetime,
    max_retention: dt.timedelta,
    max_age: dt.timedelta,
    max_skew: dt.timedelta,
) -> Accepted | Rejected | VerifiedNotice:
    """:func:`broker.pipeline.receive.accept`, for any record the inbox topic holds (or the
    gateway's :mod:`notice <broker.pipeline.notice>` of a view of ours it quarantined): one the
    transport could not decode whole (``defect``), or with no value, or that the checks fail on
    unexpectedly, is refused as ``malformed``, never raised: no record may stop the inbox."""
    if defect is not None:
        return Rejected(ReasonCode.MALFORMED, f"the record cannot be decoded: {defect}")
    if frame is None:
        return Rejected(ReasonCode.MALFORMED, "empty record")
    if is_notice(frame):
        try:
            return verify_notice(frame, registry=registry, me=me, now=now)
        except errors.IntegrityError as exc:
            return Rejected(attestation_reason(exc), f"quarantine notice: {exc}")
    try:
        return accept(
            frame,
            me=me,
            registry=registry,
            decryption_keys=decryption_keys,
            accords=accords,
            now=now,
            max_retention=max_retention,
            max_age=max_age,
            max_skew=max_skew,
        )
    except Exception as exc:  # noqa: BLE001 - one poison record must never stop the inbox
        _log.exception("receive_failed_rejecting")
        return Rejected(
            ReasonCode.MALFORMED,
            f"the adapter could not process this record ({type(exc).__name__})",
        )


def inbox_item(outcome: Accepted, frame: bytes) -> InboxItem:
    """What the inbox stores of an accepted delivery: the message, the rule that decided how
    long it is kept, and the evidence a disclosure of it is built from (``frame`` as read)."""
    retention = outcome.retention
    return InboxItem(
        message_id=outcome.message_id,
        sender=outcome.sender,
        labels=outcome.labels,
        case_id=outcome.header.case_id,
        plaintext=outcome.message_bytes,
        digest=outcome.envelope_digest,
        received_at=outcome.received_at,
        retain_until=retention.until,
        retention_rule=str(retention.rule),
        retention_reason=retention.reason,
        evidence=Evidence(frame, outcome.salts).to_bytes(),
        origin=outcome.header.origin,
    )


#: refusals that mean the sender lied in what it signed, and a gateway let it through
_ALERTING = frozenset({ReasonCode.LABEL_MISMATCH, ReasonCode.UNLISTED_UNIT})


def log_rejection(outcome: Rejected, counter: Counter) -> None:
    """Count a refused delivery by reason code and log it (a security alert if it must be)."""
    counter.inc(reason_code=outcome.reason_code)
    _log.warning(
        "delivery_rejected",
        reason_code=outcome.reason_code,
        reason=outcome.reason,
        message_id=outcome.message_id,
        sender=outcome.sender,
    )
    if outcome.reason_code in _ALERTING:
        _log.error(
            "security_alert",
            alert=str(outcome.reason_code),
            message_id=outcome.message_id,
            sender=outcome.sender,
            reason=outcome.reason,
        )


def rejection_row(
    outcome: Rejected,
    frame: bytes | None,
    *,
    position: Mapping[str, object] | None,
    me: PartnerCode,
    registry: Registry,
    now: dt.datetime,
    max_skew: dt.timedelta,
    max_frame_bytes: int,
) -> RejectedDelivery:
    """The ``rejected`` table's row for ``outcome``: ``position`` is the frame's topic,
    partition and offset (as bound to its log lines), ``max_frame_bytes`` bounds the bytes kept
    (``limits.REJECTED_PREFIX_BYTES`` in the daemon; the digest is always of the whole frame).
    """
    data = frame or b""
    topic, partition, offset = _position(position)
    message_id: str | None = outcome.message_id
    sender: str | None = outcome.sender
    case_id: str | None = None
    identified_by: IdentifiedBy | None = "envelope" if message_id and sender else None
    attested = _attested(data, me=me, registry=registry, now=now, max_skew=max_skew)
    if attested is not None:
        if identified_by is None:
            message_id, sender, identified_by = attested[0], attested[1], "attestation"
        if (message_id, sender) == attested[:2]:
            case_id = attested[2]
    return RejectedDelivery(
        reason_code=outcome.reason_code,
        reason=outcome.reason,
        rejected_at=now,
        frame=data[: max(max_frame_bytes, 0)],
        frame_size=len(data),
        frame_sha256=crypto.sha256(data),
        topic=topic,
        partition=partition,
        offset=offset,
        message_id=message_id,
        sender=sender,
        case_id=case_id,
        identified_by=identified_by,
    )


def _position(ids: Mapping[str, object] | None) -> tuple[str | None, int | None, int | None]:
    if ids is None:
        return None, None, None
    topic, partition, offset = ids.get("topic"), ids.get("partition"), ids.get("offset")
    if isinstance(topic, str) and isinstance(partition, int) and isinstance(offset, int):
        return topic, partition, offset
    return None, None, None


def _attested(
    frame: bytes,
    *,
    me: PartnerCode,
    registry: Registry,
    now: dt.datetime,
    max_skew: dt.timedelta,
) -> tuple[str, str, str | None] | None:
    """The message id and sender the gateway signed for this frame, and the case id of the
    envelope it attested; ``None`` if the attestation does not verify."""
    try:
        delivered = verify_delivery(
            frame, registry=registry, recipient=me, now=now, max_skew=max_skew
        )
        header = delivered.envelope.header
    except errors.BrokerError:
        return None
    attestation = delivered.attestation
    return attestation.message_id, attestation.sender, header.case_id
