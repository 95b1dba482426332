"""The gateway's quarantine notice: a sender learns, signed by the gateway, which of its views
was quarantined and why; nobody else can make the gateway speak to it, or speak for it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from broker import errors
from broker.adapter.fates import Acknowledged, Receipted
from broker.clock import FixedClock
from broker.crypto import SigningKey, Suite
from broker.ids import MessageId
from broker.pipeline.gateway import InboundRecord, Quarantine, route
from broker.pipeline.notice import is_notice, notice_frame, verify_notice
from broker.pipeline.records import SourcePosition
from broker.pipeline.send import Outgoing
from broker.reasons import ReasonCode
from broker.schema import TLP, DataCategory, redact
from broker.trust import AccordBook

from ..adapter.world import (
    GATEWAY_KEY,
    GB,
    GB_MK,
    NOW,
    RS,
    WORLD,
    make_adapter,
    report,
    route_at_gateway,
    seal_for_rs,
)


def _gb_to_rs_notice(
    message_id: str, *, offset: int, code: ReasonCode, reason: str, key: SigningKey
) -> bytes:
    """A notice signed by ``key`` of a GB -> RS view read at ``xb.outbox.GB/0/<offset>``."""
    return notice_frame(
        message_id=message_id,
        sender="GB",
        recipient="RS",
        envelope_sha256=bytes(32),
        source=SourcePosition(topic="xb.outbox.GB", partition=0, offset=offset),
        reason_code=code,
        reason=reason,
        decided_at=NOW,
        gateway_key=key,
    )


def _red() -> bytes:
    """GB's honest view for RS, marked TLP:RED, which gb-rs never lets through."""
    view = redact(report(), [DataCategory.BIOMETRIC]).model_copy(update={"tlp": TLP.RED})
    return seal_for_rs(view)


def test_a_quarantined_view_of_its_own_outbox_is_told_to_its_sender() -> None:
    outcome = route_at_gateway("xb.outbox.GB", _red(), ())
    assert isinstance(outcome, Quarantine)
    assert outcome.reason_code is ReasonCode.POLICY_DENIED
    assert outcome.notice is not None
    topic, frame = outcome.notice
    assert topic == "xb.inbox.GB"
    notice = verify_notice(frame, registry=WORLD.registry, me=GB, now=NOW)
    assert notice.recipient == RS
    assert notice.reason_code == "policy_denied"
    assert notice.message_id == outcome.audit.message_id


@pytest.mark.parametrize(
    ("outbox", "value", "code"),
    [
        ("xb.outbox.RS", None, ReasonCode.SENDER_MISMATCH),  # GB's envelope on RS's outbox
        ("xb.outbox.GB", b"XB", ReasonCode.MALFORMED),  # nothing verified: no known sender
    ],
)
def test_nobody_but_the_signed_sender_on_its_own_outbox_gets_a_notice(
    outbox: str, value: bytes | None, code: ReasonCode
) -> None:
    """Otherwise a partner could make the gateway write to another partner's inbox."""
    outcome = route_at_gateway(outbox, value or _red(), ())
    assert isinstance(outcome, Quarantine)
    assert outcome.reason_code is code
    assert outcome.notice is None


def test_a_forged_or_misaddressed_notice_is_refused() -> None:
    genuine = route_at_gateway("xb.outbox.GB", _red(), ())
    assert isinstance(genuine, Quarantine)
    assert genuine.notice is not None
    frame = genuine.notice[1]
    with pytest.raises(errors.EnvelopeError, match="not RS"):
        verify_notice(frame, registry=WORLD.registry, me=RS, now=NOW)
    flipped = frame[:-1] + bytes([frame[-1] ^ 1])
    with pytest.raises(errors.VerificationError):
        verify_notice(flipped, registry=WORLD.registry, me=GB, now=NOW)
    forger = SigningKey.generate(Suite.CLASSIC)  # a key the registry does not list
    forged = _gb_to_rs_notice(
        "01900000-0000-7000-8000-000000000001",
        offset=1,
        code=ReasonCode.POLICY_DENIED,
        reason="forged",
        key=forger,
    )
    assert is_notice(forged)
    with pytest.raises(errors.KeyTrustError):
        verify_notice(forged, registry=WORLD.registry, me=GB, now=NOW)
    for junk in (b"XBN1", frame + b"\x00", frame[:10]):
        with pytest.raises(errors.EnvelopeError):
            verify_notice(junk, registry=WORLD.registry, me=GB, now=NOW)


def _quarantined_at(envelope: bytes, offset: int, **headers: bytes) -> bytes:
    """The notice a gateway holding no gb-rs writes for ``envelope`` read at ``offset``."""
    outcome = route(
        InboundRecord("xb.outbox.GB", 0, offset, envelope, headers=tuple(headers.items())),
        registry=WORLD.registry,
        accords=AccordBook([(GB_MK.accord, GB_MK.digest)]),
        gateway_key=GATEWAY_KEY,
        now=NOW,
        counters={},
        dedup=lambda _key: "new",
    )
    assert isinstance(outcome, Quarantine)
    assert outcome.notice is not None
    return outcome.notice[1]


def test_the_sender_records_the_notice_against_its_view(tmp_path: Path) -> None:
    """GB's view to RS, acknowledged by Kafka at offset 7 and routed by a gateway that holds
    no accord for the pair: GB's adapter reads the notice off its inbox and `broker status`
    says quarantined, with the reason; a forged notice is refused and changes nothing."""
    uk = make_adapter(GB, tmp_path / "gb", clock=FixedClock(NOW))
    (sent,) = uk.submit(redact(report(), [DataCategory.BIOMETRIC]), to=[RS])
    assert isinstance(sent, Outgoing)
    uk.journal.acknowledge(Acknowledged(sent.message_id, "xb.outbox.GB", 0, 7), now=NOW)
    frame = _quarantined_at(sent.envelope, 7)
    forged = frame[:-1] + bytes([frame[-1] ^ 1])
    assert uk.receive(forged) == "rejected"
    (fate,) = uk.journal.fates_of(sent.message_id)
    assert fate.state == "sent"
    assert uk.receive(frame) == "notice"
    (fate,) = uk.journal.fates_of(sent.message_id)
    assert fate.state == "quarantined"
    assert fate.quarantine_code == "no_accord"
    assert fate.quarantine_reason == "no accord between GB and RS"
    assert uk.receive(frame) == "notice"  # redelivered: the first notice stands
    (again,) = uk.journal.fates_of(sent.message_id)
    assert again == fate


def test_a_copy_quarantined_elsewhere_never_marks_the_view(tmp_path: Path) -> None:
    """Anyone who can write GB's outbox can copy GB's envelope there, under a routing header
    naming another recipient, say: the gateway quarantines the copy and tells GB, but the
    notice names the copy's position, not the view's, and changes nothing. Nor does a
    notice for a view already receipted, or for one this adapter never sent."""
    uk = make_adapter(GB, tmp_path / "gb", clock=FixedClock(NOW))
    (sent,) = uk.submit(redact(report(), [DataCategory.BIOMETRIC]), to=[RS])
    assert isinstance(sent, Outgoing)
    uk.journal.acknowledge(Acknowledged(sent.message_id, "xb.outbox.GB", 0, 7), now=NOW)
    copy = _quarantined_at(sent.envelope, 99, **{"xb-recipient": b"MK"})
    assert uk.receive(copy) == "notice"
    (fate,) = uk.journal.fates_of(sent.message_id)
    assert fate.state == "sent"
    stranger = _gb_to_rs_notice(
        "01900000-0000-7000-8000-0000000000ff",
        offset=7,
        code=ReasonCode.POLICY_DENIED,
        reason="no such view",
        key=GATEWAY_KEY,
    )
    assert (
        uk.journal.record_quarantines(
            [verify_notice(stranger, registry=WORLD.registry, me=GB, now=NOW)]
        )
        == 0
    )
    receipt = Receipted(sent.message_id, RS, "accepted", NOW, MessageId(str(uuid.uuid4())))
    assert uk.journal.record_receipts([receipt], now=NOW) == 1
    assert uk.receive(_quarantined_at(sent.envelope, 7)) == "notice"
    (fate,) = uk.journal.fates_of(sent.message_id)
    assert fate.state == "receipted"


def test_a_reason_of_any_content_fits_the_notice_as_ascii() -> None:
    """The reason may quote what an attacker sent: control characters and emoji, at length,
    become an ASCII reason the notice holds whole, and the frame verifies."""
    frame = _gb_to_rs_notice(
        "01900000-0000-7000-8000-000000000001",
        offset=1,
        code=ReasonCode.MALFORMED,
        reason="\x01" * 3000 + "\U0001f600" * 3000 + "[/x]",
        key=GATEWAY_KEY,
    )
    notice = verify_notice(frame, registry=WORLD.registry, me=GB, now=NOW)
    assert notice.reason.isascii()
