"""The receiving pipeline: a delivery frame in, an accepted message (with its receipt) or a
rejection out, and never an exception for bad input.

Frames are built the way the exchange builds them: the sending pipeline seals a view, the
gateway's attest() wraps it, with a real signed registry and the accords in policies/.
"""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker import crypto, envelope
from broker.envelope import Origin
from broker.ids import MessageId, PartnerCode
from broker.keys import Registry
from broker.keys.testing import RegistryFixture, build_registry
from broker.pipeline.delivery import attest
from broker.pipeline.receipts import Acknowledgement, batch_receipts
from broker.pipeline.receive import Accepted, Rejected, accept
from broker.pipeline.send import (
    Outgoing,
    accord_digest,
    prepare,
    prepare_receipt,
)
from broker.policy import load_accord
from broker.schema import (
    TLP,
    DataCategory,
    HandlingCode,
    Message,
    MessageType,
    Purpose,
    categories_present,
    labels_of,
    message_bytes,
    parse_message,
    redact,
)
from broker.schema.labels import Labels
from broker.trust import AccordInForce

ROOT = pathlib.Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(seconds=30)
RETENTION = dt.timedelta(days=30)
GB, RS, MK = PartnerCode("GB"), PartnerCode("RS"), PartnerCode("MK")
WORLD = build_registry(now=NOW)
REGISTRY, KEYS = WORLD.registry, WORLD.partners
GATEWAY_KEY = next(iter(WORLD.gateways.values()))


def _in_force(name: str) -> AccordInForce:
    path = ROOT / "policies" / f"{name}.yaml"
    accord = load_accord(path)
    return AccordInForce(accord, accord_digest(accord))


GB_RS, GB_MK = _in_force("gb-rs"), _in_force("gb-mk")
#: the accords each partner holds with its counterparts
COUNTERPARTS = {RS: {GB: GB_RS}, MK: {GB: GB_MK}, GB: {RS: GB_RS, MK: GB_MK}}


def report() -> Message:
    """The example report, marked so the UK may send it to Serbia."""
    original = parse_message((ROOT / "schemas" / "examples" / "network.report.json").read_bytes())
    message = original.model_copy(
        update={
            "handling": HandlingCode.H2,
            "handling_conditions": (),
            "purposes": frozenset({Purpose.PEOPLE_SMUGGLING}),
            "tlp": TLP.AMBER,
            "expires": None,
        }
    )
    return redact(message, [DataCategory.SOURCE_IDENTIFYING, DataCategory.FINANCIAL])


def sealed_view(message: Message | None = None, recipient: PartnerCode = RS) -> Outgoing:
    (outgoing,) = prepare(
        message or report(),
        sender=GB,
        recipients=[recipient],
        accords={RS: GB_RS, MK: GB_MK},
        registry=REGISTRY,
        signing_key=KEYS[GB].signing,
        now=NOW,
        counters={},
    )
    assert isinstance(outgoing, Outgoing)
    return outgoing


def seal_for_rs(
    view: Message,
    *,
    labels: Labels,
    accord_digest: str = GB_RS.digest,
    world: RegistryFixture = WORLD,
    origin: Origin | None = None,
) -> bytes:
    """GB's envelope of ``view`` for RS under gb-rs (``accord_digest`` names its version),
    signed with ``labels``, which a test may make lie, on ``world``'s keys, naming
    ``origin``; sealed directly, with no sender-side check."""
    key_id, key = world.registry.current_encryption_key(RS, at=NOW)
    return envelope.seal(
        message_bytes(view),
        labels=labels,
        sender=GB,
        sender_key=world.partners[GB].signing,
        recipient=RS,
        recipient_key_id=key_id,
        recipient_key=key,
        accord_id=GB_RS.accord.accord_id,
        accord_digest=accord_digest,
        now=NOW,
        ttl=dt.timedelta(days=1),
        origin=origin,
    )


def frame_for(
    sealed: bytes,
    *,
    recipient: PartnerCode = RS,
    sender: PartnerCode = GB,
    gateway_key: crypto.SigningKey = GATEWAY_KEY,
    decided_at: dt.datetime = NOW,
) -> bytes:
    """What the gateway writes to inbox.<recipient> for ``sealed``."""
    header = envelope.parse(sealed).header
    return attest(
        sealed,
        message_id=MessageId(header.message_id),
        sender=sender,
        recipient=recipient,
        accord_id=GB_RS.accord.accord_id,
        accord_version=GB_RS.accord.version,
        accord_digest=header.accord_digest,
        rule_ids=("GB-RS-OPS",),
        decided_at=decided_at,
        gateway_key=gateway_key,
    )


def receive(frame: bytes, *, me: PartnerCode = RS, now: dt.datetime = LATER) -> Accepted | Rejected:
    keys = KEYS[me]
    return accept(
        frame,
        me=me,
        registry=REGISTRY,
        decryption_keys={keys.encryption_key_id: keys.decryption},
        accords=COUNTERPARTS[me],
        now=now,
        max_retention=RETENTION,
    )


def test_a_verified_delivery_is_accepted_with_a_receipt() -> None:
    """The view arrives intact, with its verified ids and digest, and a receipt for the
    sender naming the message and the digest of exactly the content received."""
    outgoing = sealed_view()
    outcome = receive(frame_for(outgoing.envelope))
    assert isinstance(outcome, Accepted)
    assert outcome.message_id == outgoing.message_id
    assert outcome.sender == GB
    assert outcome.envelope_digest == crypto.sha256(outgoing.envelope)
    assert outcome.labels == labels_of(outcome.message)
    assert DataCategory.BIOMETRIC not in categories_present(outcome.message)
    assert outcome.retain_until == LATER + RETENTION
    owed = outcome.receipt
    assert owed is not None
    assert (owed.to, owed.message_id) == (GB, outgoing.message_id)
    assert owed.rejected_because is None
    assert owed.content_sha256 == crypto.sha256(outcome.message_bytes)
    assert owed.envelope_sha256 == outcome.envelope_digest
    with pytest.raises(TypeError):
        bool(outcome)


def test_a_receipt_is_accepted_but_not_receipted() -> None:
    """Receipts are stored like any message; acknowledging them would never end."""
    owed = Acknowledgement.of(
        report(),
        to=GB,
        message_id=sealed_view().message_id,
        content_sha256=b"\x02" * 32,
        envelope_sha256=b"\x03" * 32,
        received_at=NOW,
    )
    (receipt,) = batch_receipts([owed])
    back = prepare_receipt(
        receipt.message,
        sender=GB,
        recipient=RS,
        accord=GB_RS,
        registry=REGISTRY,
        signing_key=KEYS[GB].signing,
        now=NOW,
    )
    assert isinstance(back, Outgoing)
    outcome = receive(frame_for(back.envelope))
    assert isinstance(outcome, Accepted)
    assert outcome.message.type is MessageType.RECEIPT
    assert outcome.receipt is None


def test_a_message_keeps_only_until_its_own_expiry() -> None:
    """A message that expires before the retention period is kept until it expires."""
    expiry = NOW + dt.timedelta(hours=3)
    outcome = receive(
        frame_for(sealed_view(report().model_copy(update={"expires": expiry})).envelope)
    )
    assert isinstance(outcome, Accepted)
    assert outcome.retain_until == expiry


def test_under_declared_labels_are_caught() -> None:
    """A sender whose signed labels omit a category present in the content (so the gateway
    decided on less than was sent) is rejected as label_mismatch and told so by receipt."""
    view = redact(report(), [DataCategory.BIOMETRIC])
    assert DataCategory.LOCATION in categories_present(view)
    honest = labels_of(view)
    lying = honest.model_copy(
        update={"data_categories": honest.data_categories - {DataCategory.LOCATION}}
    )
    sealed = seal_for_rs(view, labels=lying)
    outcome = receive(frame_for(sealed))
    assert isinstance(outcome, Rejected)
    assert outcome.reason_code == "label_mismatch"
    assert "location" in outcome.reason
    assert outcome.sender == GB
    assert outcome.receipt is not None
    assert outcome.receipt.rejected_because is not None
    assert outcome.receipt.rejected_because.startswith("label_mismatch: ")


def test_a_view_in_another_suite_than_its_accord_version_fixes_is_refused() -> None:
    """RS holds the very accord version the view names, and it fixes pq-hybrid: a classic
    view a gateway let through anyway is refused (suite_mismatch), not kept."""
    hybrid = GB_RS.accord.model_copy(update={"suite": crypto.Suite.PQ_HYBRID})
    digest = accord_digest(hybrid)
    view = redact(report(), [DataCategory.BIOMETRIC])
    sealed = seal_for_rs(view, labels=labels_of(view), accord_digest=digest)
    keys = KEYS[RS]
    outcome = accept(
        frame_for(sealed),
        me=RS,
        registry=REGISTRY,
        decryption_keys={keys.encryption_key_id: keys.decryption},
        accords={GB: AccordInForce(hybrid, digest)},
        now=LATER,
        max_retention=RETENTION,
    )
    assert isinstance(outcome, Rejected)
    assert outcome.reason_code == "suite_mismatch"
    assert "requires the pq-hybrid suite; sealed with classic" in outcome.reason


def test_milder_markings_in_the_labels_are_caught() -> None:
    """Labels claiming TLP:GREEN for an AMBER message are a mismatch too."""
    view = redact(report(), [DataCategory.BIOMETRIC])
    mild = labels_of(view).model_copy(update={"tlp": TLP.GREEN})
    sealed = seal_for_rs(view, labels=mild)
    outcome = receive(frame_for(sealed))
    assert isinstance(outcome, Rejected)
    assert outcome.reason_code == "label_mismatch"


def _flip_signature(frame: bytes) -> bytes:
    # The signature follows magic, length and attestation; flip its first byte.
    length = int.from_bytes(frame[4:8], "big")
    at = 8 + length + 4
    return frame[:at] + bytes([frame[at] ^ 1]) + frame[at + 1 :]


@pytest.mark.parametrize(
    ("name", "make", "me", "code"),
    [
        (
            "a frame for another recipient",
            lambda: frame_for(sealed_view().envelope),
            MK,
            "bad_attestation",
        ),
        (
            "a bad gateway signature",
            lambda: _flip_signature(frame_for(sealed_view().envelope)),
            RS,
            "bad_gateway_signature",
        ),
        (
            "an unregistered gateway key",
            lambda: frame_for(sealed_view().envelope, gateway_key=KEYS[GB].signing),
            RS,
            "unknown_gateway_key",
        ),
        (
            "an envelope swapped after attestation",
            lambda: (f := frame_for(sealed_view().envelope))[:-1] + bytes([f[-1] ^ 1]),
            RS,
            "bad_gateway_signature",
        ),
        ("not a frame at all", lambda: b"hello", RS, "bad_attestation"),
        (
            "an envelope sealed for MK, attested to RS",
            lambda: frame_for(sealed_view(recipient=MK).envelope, recipient=RS),
            RS,
            "bad_gateway_signature",
        ),
    ],
)
def test_bad_deliveries_are_rejected_before_opening(
    name: str, make: object, me: PartnerCode, code: str
) -> None:
    """Every delivery the gateway did not vouch for, for us, is rejected with a stable code."""
    assert callable(make)
    outcome = receive(make(), me=me)
    assert isinstance(outcome, Rejected), name
    assert outcome.reason_code == code, outcome.reason
    assert outcome.receipt is None


def test_a_stale_envelope_is_rejected() -> None:
    """An envelope older than the acceptance window is refused even with a valid attestation."""
    outcome = receive(frame_for(sealed_view().envelope), now=NOW + dt.timedelta(hours=25))
    assert isinstance(outcome, Rejected)
    assert outcome.reason_code == "stale"


def test_without_our_key_the_envelope_is_rejected() -> None:
    """A rotation that dropped the key the envelope was sealed to rejects, never crashes."""
    frame = frame_for(sealed_view().envelope)
    outcome = accept(
        frame,
        me=RS,
        registry=REGISTRY,
        decryption_keys={},
        accords=COUNTERPARTS[RS],
        now=LATER,
        max_retention=RETENTION,
    )
    assert isinstance(outcome, Rejected)
    assert outcome.reason_code == "unknown_key"


FRAME = frame_for(sealed_view().envelope)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0, max_value=len(FRAME) - 1), bit=st.integers(0, 7))
def test_any_flipped_bit_is_rejected(position: int, bit: int) -> None:
    """No single-bit change anywhere in a frame is ever accepted, and none raises."""
    tampered = bytearray(FRAME)
    tampered[position] ^= 1 << bit
    assert isinstance(receive(bytes(tampered)), Rejected)


def _revoking(*, partner: PartnerCode | None = None, gateway: bool = False) -> Registry:
    """WORLD's registry with GB's signing key, or the gateway's key, revoked at NOW."""
    draft = WORLD.edit()
    if gateway:
        draft.revoke(partner=None, key_id=GATEWAY_KEY.public_key().key_id, at=NOW, reason="lost")
    else:
        assert partner is not None
        draft.revoke(partner=partner, key_id=KEYS[partner].signing_key_id, at=NOW, reason="lost")
    return WORLD.resign(draft, now=LATER)[0]


def test_an_envelope_back_dated_before_its_keys_revocation_is_rejected() -> None:
    """GB's key was revoked at NOW; an envelope it signs after, dated a second before, is
    rejected: the receiver checks the sender's key at ``created`` and now."""
    back_dated = NOW - dt.timedelta(seconds=1)
    (outgoing,) = prepare(
        report(),
        sender=GB,
        recipients=[RS],
        accords={RS: GB_RS},
        registry=REGISTRY,
        signing_key=KEYS[GB].signing,
        now=back_dated,
        counters={},
    )
    assert isinstance(outgoing, Outgoing)
    keys = KEYS[RS]
    outcome = accept(
        frame_for(outgoing.envelope),
        me=RS,
        registry=_revoking(partner=GB),
        decryption_keys={keys.encryption_key_id: keys.decryption},
        accords=COUNTERPARTS[RS],
        now=LATER,
        max_retention=RETENTION,
    )
    assert isinstance(outcome, Rejected)
    assert outcome.reason_code == "unknown_key"


def test_an_attestation_signed_after_the_gateway_keys_revocation_is_rejected() -> None:
    """The gateway key was revoked at NOW; an attestation dated a second before that, signed
    with it afterwards, is refused (the key must be valid now too)."""
    keys = KEYS[RS]
    outcome = accept(
        frame_for(sealed_view().envelope, decided_at=NOW - dt.timedelta(seconds=1)),
        me=RS,
        registry=_revoking(gateway=True),
        decryption_keys={keys.encryption_key_id: keys.decryption},
        accords=COUNTERPARTS[RS],
        now=LATER,
        max_retention=RETENTION,
    )
    assert isinstance(outcome, Rejected)
    assert outcome.reason_code == "unknown_gateway_key"


def test_an_attestation_dated_before_the_envelope_is_rejected() -> None:
    """A gateway cannot have decided on an envelope before it was sealed: decided_at must be
    no earlier than ``created`` less the clock skew."""
    sealed = sealed_view().envelope
    header = envelope.parse(sealed).header
    frame = attest(
        sealed,
        message_id=MessageId(header.message_id),
        sender=GB,
        recipient=RS,
        accord_id=GB_RS.accord.accord_id,
        accord_version=GB_RS.accord.version,
        accord_digest=header.accord_digest,
        rule_ids=("GB-RS-OPS",),
        decided_at=NOW - dt.timedelta(minutes=6),
        gateway_key=GATEWAY_KEY,
    )
    outcome = receive(frame)
    assert isinstance(outcome, Rejected)
    assert outcome.reason_code == "bad_attestation"
