"""The delivery frame: what the gateway attests, and everything a receiver refuses."""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker import crypto, envelope, errors
from broker.ids import AccordId, MessageId, PartnerCode, new_message_id
from broker.keys import canonical_json
from broker.keys.testing import RegistryFixture, build_registry
from broker.pipeline import DELIVERY_DOMAIN, MAX_DELIVERY_BYTES, attest, verify_delivery
from broker.pipeline.delivery import attestation_for, sign_deliveries
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
GB, RS, AL = PartnerCode("GB"), PartnerCode("RS"), PartnerCode("AL")
MESSAGE = json.dumps(
    {
        "type": "network.report",
        "schema_version": 1,
        "classification": "OFFICIAL",
        "tlp": "GREEN",
        "handling": "H0",
        "purposes": ["people-smuggling"],
        "body": {"summary": "Routes through the Western Balkans."},
    }
).encode()
LABELS = Labels(
    message_type=MessageType.NETWORK_REPORT,
    schema_version=1,
    classification=Classification.OFFICIAL,
    tlp=TLP.GREEN,
    handling=HandlingCode.H0,
    purposes=frozenset({Purpose.PEOPLE_SMUGGLING}),
    data_categories=frozenset({DataCategory.OPERATIONAL}),
)


@pytest.fixture(scope="module")
def fixture() -> RegistryFixture:
    return build_registry(now=NOW, partners=("GB", "RS", "AL"), roots=1, threshold=1)


@pytest.fixture(scope="module")
def sealed(fixture: RegistryFixture) -> tuple[MessageId, bytes]:
    message_id = new_message_id()
    return message_id, _sealed_to_rs(fixture, message_id)


def _sealed_to_rs(fixture: RegistryFixture, message_id: MessageId) -> bytes:
    key_id, key = fixture.registry.current_encryption_key(RS, at=NOW)
    return envelope.seal(
        MESSAGE,
        labels=LABELS,
        sender=GB,
        sender_key=fixture.partners[GB].signing,
        recipient=RS,
        recipient_key_id=key_id,
        recipient_key=key,
        accord_id=AccordId("gb-rs"),
        accord_digest="cd" * 32,
        now=NOW,
        ttl=dt.timedelta(days=1),
        message_id=message_id,
    )


def gateway(fixture: RegistryFixture) -> crypto.SigningKey:
    return next(iter(fixture.gateways.values()))


def frame_for(
    fixture: RegistryFixture,
    sealed: tuple[MessageId, bytes],
    *,
    key: crypto.SigningKey | None = None,
    recipient: PartnerCode = RS,
    message_id: MessageId | None = None,
    decided_at: dt.datetime = NOW,
) -> bytes:
    return attest(
        sealed[1],
        message_id=message_id or sealed[0],
        sender=GB,
        recipient=recipient,
        accord_id=AccordId("gb-rs"),
        accord_version=3,
        accord_digest="ef" * 32,
        rule_ids=("GB-RS-OPS",),
        decided_at=decided_at,
        gateway_key=key or gateway(fixture),
    )


def test_a_frame_verifies_and_returns_what_was_attested(
    fixture: RegistryFixture, sealed: tuple[MessageId, bytes]
) -> None:
    """The receiver gets the exact envelope bytes and the gateway's decision."""
    verified = verify_delivery(
        frame_for(fixture, sealed), registry=fixture.registry, recipient=RS, now=NOW
    )
    assert verified.envelope_bytes == sealed[1]
    att = verified.attestation
    assert (att.message_id, att.sender, att.recipient) == (sealed[0], "GB", "RS")
    assert (att.accord_id, att.accord_version, att.accord_digest) == ("gb-rs", 3, "ef" * 32)
    assert att.envelope_sha256 == crypto.sha256(sealed[1]).hex()
    assert att.decided_time == NOW
    assert att.gateway_key_id == gateway(fixture).public_key().key_id
    with pytest.raises(TypeError):
        bool(verified)


def test_the_signature_is_over_the_documented_bytes(
    fixture: RegistryFixture, sealed: tuple[MessageId, bytes]
) -> None:
    """magic | u32 len | attestation | u32 len | signature | envelope; domain-separated."""
    frame = frame_for(fixture, sealed)
    assert frame[:4] == b"XBD1"
    (n,) = struct.unpack(">I", frame[4:8])
    attestation = frame[8 : 8 + n]
    assert canonical_json(json.loads(attestation)) == attestation
    (m,) = struct.unpack(">I", frame[8 + n : 12 + n])
    signature = frame[12 + n : 12 + n + m]
    assert frame[12 + n + m :] == sealed[1]
    gateway(fixture).public_key().verify(
        signature=signature,
        message=DELIVERY_DOMAIN + struct.pack(">I", len(attestation)) + attestation,
    )


def _patch_attestation(frame: bytes, edit: Callable[[dict[str, object]], None]) -> bytes:
    (n,) = struct.unpack(">I", frame[4:8])
    document = json.loads(frame[8 : 8 + n])
    edit(document)
    data = canonical_json(document)
    return frame[:4] + struct.pack(">I", len(data)) + data + frame[8 + n :]


# name -> (make the frame, the error the receiver raises)
TAMPER: dict[str, tuple[Callable[[RegistryFixture, tuple[MessageId, bytes]], bytes], type]] = {
    "bad magic": (lambda f, s: b"XBD2" + frame_for(f, s)[4:], errors.EnvelopeError),
    "truncated": (lambda f, s: frame_for(f, s)[:10], errors.EnvelopeError),
    "empty": (lambda f, s: b"", errors.EnvelopeError),
    "oversized": (lambda f, s: b"XBD1" + b"\0" * MAX_DELIVERY_BYTES, errors.EnvelopeError),
    "attestation edited": (
        lambda f, s: _patch_attestation(frame_for(f, s), lambda d: d.update(accord_version=4)),
        errors.VerificationError,
    ),
    "attestation not canonical": (
        lambda f, s: _patch_attestation(frame_for(f, s), lambda d: None).replace(
            b'{"accord_digest"', b'{ "accord_digest"', 1
        ),
        errors.EnvelopeError,
    ),
    "envelope swapped": (
        lambda f, s: frame_for(f, s)[: -len(s[1])] + s[1][:-1] + bytes([s[1][-1] ^ 1]),
        errors.VerificationError,
    ),
    "signed by a partner, not a gateway": (
        lambda f, s: frame_for(f, s, key=f.partners[GB].signing),
        errors.KeyTrustError,
    ),
    "addressed to another partner": (
        lambda f, s: frame_for(f, s, recipient=AL),
        errors.EnvelopeError,
    ),
    "attests another message id": (
        lambda f, s: frame_for(f, s, message_id=new_message_id()),
        errors.VerificationError,
    ),
    "decided in the future": (
        lambda f, s: frame_for(f, s, decided_at=NOW + dt.timedelta(hours=1)),
        errors.ReplayError,
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_a_tampered_frame_is_refused(
    fixture: RegistryFixture, sealed: tuple[MessageId, bytes], case: str
) -> None:
    """Each case raises its documented error class, before anything is returned."""
    make, error = TAMPER[case]
    with pytest.raises(error):
        verify_delivery(make(fixture, sealed), registry=fixture.registry, recipient=RS, now=NOW)


def test_a_revoked_gateway_key_is_refused_after_its_revocation(
    fixture: RegistryFixture, sealed: tuple[MessageId, bytes]
) -> None:
    """The key is looked up at decided_at: revoked before the decision means refused."""
    draft = fixture.edit()
    key_id = gateway(fixture).public_key().key_id
    draft.revoke(partner=None, key_id=key_id, at=NOW - dt.timedelta(minutes=1), reason="test")
    revoked, _ = fixture.resign(draft, now=NOW)
    with pytest.raises(errors.KeyTrustError):
        verify_delivery(frame_for(fixture, sealed), registry=revoked, recipient=RS, now=NOW)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_bit_flip_is_refused(
    fixture: RegistryFixture, sealed: tuple[MessageId, bytes], data: st.DataObject
) -> None:
    """Flipping any one bit anywhere in the frame makes verification fail with our error."""
    frame = frame_for(fixture, sealed)
    position = data.draw(st.integers(0, len(frame) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = frame[:position] + bytes([frame[position] ^ (1 << bit)]) + frame[position + 1 :]
    with pytest.raises(errors.IntegrityError):
        verify_delivery(flipped, registry=fixture.registry, recipient=RS, now=NOW)


def _batch_frames(
    fixture: RegistryFixture, count: int, *, key: crypto.SigningKey | None = None
) -> list[bytes]:
    """``count`` deliveries to RS of fresh envelopes, their attestations signed together."""
    items = []
    for _ in range(count):
        message_id = new_message_id()
        sealed = _sealed_to_rs(fixture, message_id)
        attestation = attestation_for(
            sealed,
            message_id=message_id,
            sender=GB,
            recipient=RS,
            accord_id=AccordId("gb-rs"),
            accord_version=3,
            accord_digest="ef" * 32,
            rule_ids=("GB-RS-OPS",),
            decided_at=NOW,
            gateway_key_id=(key or gateway(fixture)).public_key().key_id,
        )
        items.append((attestation, sealed))
    return sign_deliveries(items, gateway_key=key or gateway(fixture))


def test_the_attestations_of_a_batch_share_one_signature_and_each_frame_verifies_alone(
    fixture: RegistryFixture,
) -> None:
    frames = _batch_frames(fixture, 6)
    assert all(f[:4] == b"XBD2" for f in frames)
    a = [struct.unpack_from(">I", f, 4)[0] for f in frames]
    signatures = {f[12 + n : 12 + n + 64] for f, n in zip(frames, a, strict=True)}
    assert len(signatures) == 1
    for frame in frames:
        verify_delivery(frame, registry=fixture.registry, recipient=RS, now=NOW)
    (alone,) = _batch_frames(fixture, 1)
    assert alone[:4] == b"XBD1"


def test_a_batch_delivery_moved_in_its_batch_is_refused(fixture: RegistryFixture) -> None:
    """Index, size, a path byte, the magic back to XBD1: each leads to another head."""
    frame = _batch_frames(fixture, 5)[1]
    (n,) = struct.unpack_from(">I", frame, 4)
    proof_at = 12 + n + 64
    for offset in (proof_at + 3, proof_at + 7, proof_at + 9):
        changed = bytearray(frame)
        changed[offset] ^= 1
        with pytest.raises(errors.IntegrityError):
            verify_delivery(bytes(changed), registry=fixture.registry, recipient=RS, now=NOW)
    as_single = b"XBD1" + frame[4:proof_at] + frame[proof_at + 9 + 32 * frame[proof_at + 8] :]
    with pytest.raises(errors.VerificationError):
        verify_delivery(as_single, registry=fixture.registry, recipient=RS, now=NOW)


def test_a_batch_signed_by_a_partner_key_is_refused(fixture: RegistryFixture) -> None:
    """A partner's registered key is no gateway's, batch or not."""
    frames = _batch_frames(fixture, 3, key=fixture.partners[GB].signing)
    for frame in frames:
        with pytest.raises(errors.KeyTrustError):
            verify_delivery(frame, registry=fixture.registry, recipient=RS, now=NOW)
