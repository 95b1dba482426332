"""The gateway's quarantine notice: a sender learns, signed by the gateway, which of its views
was quarantined and why; nobody else can make the gateway speak to it, or speak for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import errors
from broker.clock import FixedClock
from broker.crypto import SigningKey, Suite
from broker.pipeline.gateway import InboundRecord, Quarantine, route
from broker.pipeline.notice import is_notice, notice_frame, verify_notice
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
    forged = notice_frame(
        message_id="01900000-0000-7000-8000-000000000001",
        sender="GB",
        recipient="RS",
        envelope_sha256=bytes(32),
        reason_code=ReasonCode.POLICY_DENIED,
        reason="forged",
        decided_at=NOW,
        gateway_key=forger,
    )
    assert is_notice(forged)
    with pytest.raises(errors.KeyTrustError):
        verify_notice(forged, registry=WORLD.registry, me=GB, now=NOW)
    for junk in (b"XBN1", frame + b"\x00", frame[:10]):
        with pytest.raises(errors.EnvelopeError):
            verify_notice(junk, registry=WORLD.registry, me=GB, now=NOW)


def test_the_sender_records_the_notice_against_its_view(tmp_path: Path) -> None:
    """GB's view to RS, routed by a gateway that holds no accord for the pair: GB's adapter
    reads the notice off its inbox and `broker status` says quarantined, with the reason; a
    forged notice is refused and changes nothing."""
    uk = make_adapter(GB, tmp_path / "gb", clock=FixedClock(NOW))
    (sent,) = uk.submit(redact(report(), [DataCategory.BIOMETRIC]), to=[RS])
    assert isinstance(sent, Outgoing)
    outcome = route(
        InboundRecord("xb.outbox.GB", 0, 7, sent.envelope),
        registry=WORLD.registry,
        accords=AccordBook([(GB_MK.accord, GB_MK.digest)]),
        gateway_key=GATEWAY_KEY,
        now=NOW,
        counters={},
        dedup=lambda _key: "new",
    )
    assert isinstance(outcome, Quarantine)
    assert outcome.notice is not None
    frame = outcome.notice[1]
    forged = frame[:-1] + bytes([frame[-1] ^ 1])
    assert uk.receive(forged) == "rejected"
    (fate,) = uk.journal.fates_of(sent.message_id)
    assert fate.state != "quarantined"
    assert uk.receive(frame) == "notice"
    (fate,) = uk.journal.fates_of(sent.message_id)
    assert fate.state == "quarantined"
    assert fate.quarantine_code == str(outcome.reason_code)
    assert fate.quarantine_reason
    # a redelivered notice changes nothing; one naming a view this adapter never sent (the
    # gateway's key, another id) matches no row
    assert uk.receive(frame) == "notice"
    stranger = notice_frame(
        message_id="01900000-0000-7000-8000-0000000000ff",
        sender="GB",
        recipient="RS",
        envelope_sha256=bytes(32),
        reason_code=ReasonCode.POLICY_DENIED,
        reason="no such view",
        decided_at=NOW,
        gateway_key=GATEWAY_KEY,
    )
    notice = verify_notice(stranger, registry=WORLD.registry, me=GB, now=NOW)
    assert uk.journal.record_quarantines([notice]) == 0
    (again,) = uk.journal.fates_of(sent.message_id)
    assert again == fate
