"""The sending pipeline: one message in, one sealed, redacted view (or a refusal) per recipient.

Real parts throughout: a signed registry with every partner's keys, the accords in policies/,
and envelopes opened with the recipient's own key.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib

import pytest

from broker import crypto, envelope, errors
from broker.ids import MessageId, PartnerCode, new_message_id
from broker.keys.testing import build_registry, make_registry
from broker.pipeline.receipts import Acknowledgement, batch_receipts
from broker.pipeline.send import (
    Outgoing,
    Refused,
    accord_digest,
    prepare,
    prepare_receipt,
)
from broker.policy import Suite, load_accord
from broker.reasons import ReasonCode
from broker.schema import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Message,
    Purpose,
    categories_present,
    labels_of,
    parse_message,
    redact,
)
from broker.schema.protocol import ReceiptBatch, ReceiptStatus
from broker.trust import AccordInForce
from broker.trust.acts import Halt

ROOT = pathlib.Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
GB, RS, MK, XK, TR = (PartnerCode(c) for c in ("GB", "RS", "MK", "XK", "TR"))
REGISTRY, _, KEYS = make_registry(now=NOW)
HYBRID = crypto.Suite.PQ_HYBRID


def _in_force(name: str) -> AccordInForce:
    path = ROOT / "policies" / f"{name}.yaml"
    accord = load_accord(path)
    return AccordInForce(accord, accord_digest(accord))


ACCORDS = {RS: _in_force("gb-rs"), MK: _in_force("gb-mk"), XK: _in_force("gb-xk")}


def report() -> Message:
    """The example network report, marked so that both Serbia and North Macedonia may get it."""
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
    # Neither accord ever takes sources or financial data from the UK (deny for MK).
    return redact(message, [DataCategory.SOURCE_IDENTIFYING, DataCategory.FINANCIAL])


def _open(outgoing: Outgoing) -> envelope.OpenedEnvelope:
    keys = KEYS[outgoing.recipient]
    return envelope.open(
        outgoing.envelope,
        registry=REGISTRY,
        recipient=outgoing.recipient,
        decryption_keys={keys.encryption_key_id: keys.decryption},
        now=NOW,
    )


def _prepare(message: Message, *recipients: PartnerCode, **kw: object) -> list[Outgoing | Refused]:
    arguments: dict[str, object] = {
        "sender": GB,
        "recipients": list(recipients),
        "accords": ACCORDS,
        "registry": REGISTRY,
        "signing_key": KEYS[GB].signing,
        "now": NOW,
        "counters": {},
    }
    arguments.update(kw)
    return prepare(message, **arguments)  # type: ignore[arg-type]


def test_each_recipient_gets_its_own_redacted_view() -> None:
    """Serbia's view loses biometrics; North Macedonia's also loses locations and vehicles;
    each is sealed to that recipient alone, with the case id kept and labels matching it."""
    message = report()
    outcomes = _prepare(message, RS, MK)
    assert [type(o) for o in outcomes] == [Outgoing, Outgoing]
    removed = {
        RS: {DataCategory.BIOMETRIC},
        MK: {DataCategory.BIOMETRIC, DataCategory.LOCATION, DataCategory.VEHICLE},
    }
    for outgoing in outcomes:
        assert isinstance(outgoing, Outgoing)
        opened = _open(outgoing)
        assert opened.message is not None
        present = categories_present(opened.message)
        assert present == categories_present(message) - removed[outgoing.recipient]
        assert opened.header.labels == labels_of(opened.message)
        assert opened.header.message_id == outgoing.message_id
        assert opened.header.case_id == message.case_id
        assert opened.header.accord_id == ACCORDS[outgoing.recipient].accord.accord_id
        assert opened.header.accord_digest == ACCORDS[outgoing.recipient].digest
        assert outgoing.decision is not None
        assert outgoing.decision.permits


def test_every_view_has_a_fresh_message_id() -> None:
    """Two recipients, two ids; sending again gives new ids (ids name views, not messages)."""
    first = _prepare(report(), RS, MK)
    second = _prepare(report(), RS, MK)
    ids = [o.message_id for o in (*first, *second) if isinstance(o, Outgoing)]
    assert len(ids) == 4
    assert len(set(ids)) == 4


def test_a_view_is_not_readable_by_another_recipient() -> None:
    """Serbia's envelope does not open with North Macedonia's key."""
    (outgoing,) = _prepare(report(), RS)
    assert isinstance(outgoing, Outgoing)
    keys = KEYS[MK]
    with pytest.raises(errors.EnvelopeError):
        envelope.open(
            outgoing.envelope,
            registry=REGISTRY,
            recipient=MK,
            decryption_keys={keys.encryption_key_id: keys.decryption},
            now=NOW,
        )


@pytest.mark.parametrize(
    ("name", "recipient", "update", "code", "says"),
    [
        (
            "above Kosovo's ceiling",
            XK,
            {"classification": Classification.SECRET},
            "policy_denied",
            "classification SECRET",
        ),
        ("no accord with Turkey loaded", TR, {}, "no_accord", "no accord"),
        ("expired message", RS, {"expires": NOW - dt.timedelta(hours=1)}, "expired", "expired"),
        (
            "purpose outside the flow",
            MK,
            {"purposes": frozenset({Purpose.DOCUMENT_FRAUD})},
            "policy_denied",
            "purpose document-fraud",
        ),
    ],
)
def test_a_refused_recipient_gets_nothing_and_a_reason(
    name: str, recipient: PartnerCode, update: dict[str, object], code: str, says: str
) -> None:
    """A denied flow is refused with the accord's reasons, and no envelope exists for it."""
    outcomes = _prepare(
        report().model_copy(update=update), recipient, RS if recipient != RS else MK
    )
    refused = outcomes[0]
    assert isinstance(refused, Refused), name
    assert refused.recipient == recipient
    assert refused.reason_code == code
    assert any(says in reason for reason in refused.reasons), refused.reasons
    with pytest.raises(TypeError):
        bool(refused)


def test_a_denial_carries_the_accord_decision() -> None:
    """The refusal keeps the decision, so the operator sees every rule that failed."""
    message = report().model_copy(update={"classification": Classification.SECRET, "tlp": TLP.RED})
    (refused,) = _prepare(message, XK)
    assert isinstance(refused, Refused)
    assert refused.decision is not None
    assert {"GB-XK-STRATEGIC.classification", "GB-XK-STRATEGIC.tlp"} <= set(
        refused.decision.rule_ids
    )


def test_rate_counters_are_honoured() -> None:
    """A flow whose window is full refuses; the counters come from the caller."""
    (refused,) = _prepare(report(), MK, counters={"GB-MK-PERSONS": 500})
    assert isinstance(refused, Refused)
    assert refused.reason_code == "rate_limited"


def test_an_envelope_never_outlives_its_message() -> None:
    """A message expiring in an hour is sealed with an hour to live."""
    soon = NOW + dt.timedelta(hours=1)
    (outgoing,) = _prepare(report().model_copy(update={"expires": soon}), RS)
    assert isinstance(outgoing, Outgoing)
    assert _open(outgoing).header.expires == soon


@pytest.mark.parametrize(
    ("name", "recipients"),
    [("none", []), ("repeated", [RS, RS]), ("to itself", [GB, RS])],
)
def test_bad_recipient_lists_are_usage_errors(name: str, recipients: list[PartnerCode]) -> None:
    """The caller learns at once that the recipient list is wrong."""
    with pytest.raises(errors.UsageError):
        _prepare(report(), *recipients)


def test_a_receipt_is_sealed_back_to_the_sender_under_the_accord() -> None:
    """A batch receipt keeps the markings and case of what it acknowledges and is sealed back
    to the sender under the pair's accord, showing the gateway its lines."""
    message = report()
    receipt = _receipt(message, digest=b"\x01" * 32)
    assert receipt.case_id == message.case_id
    assert receipt.classification is message.classification
    assert isinstance(receipt.body, ReceiptBatch)
    (line,) = receipt.body.items
    assert line.content_sha256 == (b"\x01" * 32).hex()
    assert line.status is ReceiptStatus.ACCEPTED
    sealed = prepare_receipt(
        receipt,
        sender=RS,
        recipient=GB,
        accord=ACCORDS[RS],
        registry=REGISTRY,
        signing_key=KEYS[RS].signing,
        now=NOW,
    )
    assert isinstance(sealed, Outgoing)
    assert sealed.gateway_header is not None
    assert sealed.gateway_header[0] == "xb-acknowledges"
    keys = KEYS[GB]
    opened = envelope.open(
        sealed.envelope,
        registry=REGISTRY,
        recipient=GB,
        decryption_keys={keys.encryption_key_id: keys.decryption},
        now=NOW,
    )
    assert opened.message == receipt


def test_a_receipt_is_never_receipted() -> None:
    """Acknowledging a receipt would ping-pong forever: it is refused."""
    with pytest.raises(errors.UsageError):
        _receipt(_receipt(report()))


def _receipt(message: Message, *, at: dt.datetime = NOW, digest: bytes = bytes(32)) -> Message:
    """The batch receipt RS owes GB for ``message`` alone."""
    acknowledgement = Acknowledgement.of(
        message,
        to=GB,
        message_id=_any_id(),
        content_sha256=digest,
        envelope_sha256=digest,
        received_at=at,
    )
    (batch,) = batch_receipts([acknowledgement])
    return batch.message


def _any_id() -> MessageId:
    return new_message_id(unix_ms=int(NOW.timestamp() * 1000))


def test_a_view_is_refused_when_the_accord_requires_another_suite() -> None:
    """An accord fixing the post-quantum suite is never silently served with classic keys."""
    hybrid = ACCORDS[RS].accord.model_copy(update={"suite": Suite.PQ_HYBRID})
    (refused,) = _prepare(report(), RS, accords={RS: AccordInForce(hybrid, accord_digest(hybrid))})
    assert isinstance(refused, Refused)
    assert refused.reason_code == "suite_mismatch"
    assert "pq-hybrid" in refused.reasons[0]


def test_each_accord_s_suite_picks_the_keys_that_seal_and_sign() -> None:
    """GB and RS hold classic and pq-hybrid keys; one message to RS (a pq-hybrid accord) and
    MK (classic) is sealed and signed in each accord's suite, and a sender without a hybrid
    signing key is refused for RS only, saying which suites it has."""
    fixture = build_registry(
        now=NOW, partners=("GB", "RS", "MK"), also_suites={"GB": [HYBRID], "RS": [HYBRID]}
    )
    hybrid = ACCORDS[RS].accord.model_copy(update={"suite": Suite.PQ_HYBRID})
    accords = {RS: AccordInForce(hybrid, accord_digest(hybrid)), MK: ACCORDS[MK]}
    gb = fixture.partners[GB].signing
    signers = {crypto.Suite.CLASSIC: gb, HYBRID: fixture.other_suites[GB][HYBRID].signing}
    to_rs, to_mk = _prepare(
        report(), RS, MK, accords=accords, registry=fixture.registry, signing_key=signers
    )
    assert isinstance(to_rs, Outgoing)
    assert isinstance(to_mk, Outgoing)
    rs_keys = fixture.other_suites[RS][HYBRID]
    opened = envelope.open(
        to_rs.envelope,
        registry=fixture.registry,
        recipient=RS,
        decryption_keys={rs_keys.encryption_key_id: rs_keys.decryption},
        now=NOW,
    )
    assert opened.header.suite is HYBRID
    assert opened.header.recipient_key_id == rs_keys.encryption_key_id
    assert envelope.parse(to_mk.envelope).header.suite is crypto.Suite.CLASSIC

    (refused,) = _prepare(report(), RS, accords=accords, registry=fixture.registry, signing_key=gb)
    assert isinstance(refused, Refused)
    assert refused.reason_code == "suite_mismatch"
    assert "the keys are classic (sender)" in refused.reasons[0]


def test_an_accord_out_of_force_refuses_by_name() -> None:
    """After gb-xk lapses, and before gb-rs takes effect, the sender refuses with the accord's
    own reason code, naming the instant; the other recipient is unaffected."""
    xk = ACCORDS[XK].accord
    after = xk.expires_at() + dt.timedelta(seconds=1)
    registry, _, keys = make_registry(now=after)
    outcomes = _prepare(
        report(), XK, RS, now=after, registry=registry, signing_key=keys[GB].signing
    )
    refused = outcomes[0]
    assert isinstance(refused, Refused)
    assert refused.reason_code == "accord_expired"
    assert refused.reasons == (f"accord gb-xk v{xk.version} expired on {xk.expires_text}",)
    assert isinstance(outcomes[1], Outgoing)
    before = ACCORDS[RS].accord.effective_from() - dt.timedelta(days=1)
    (early,) = _prepare(report(), RS, now=before)
    assert isinstance(early, Refused)
    assert early.reason_code == "accord_not_yet_effective"


def test_a_receipt_is_not_sealed_under_a_lapsed_accord() -> None:
    """The gateway would quarantine it as accord_expired: the receiver refuses it up front."""
    after = ACCORDS[RS].accord.expires_at()
    registry, _, keys = make_registry(now=after)
    receipt = _receipt(report(), at=after)
    sealed = prepare_receipt(
        receipt,
        sender=RS,
        recipient=GB,
        accord=ACCORDS[RS],
        registry=registry,
        signing_key=keys[RS].signing,
        now=after,
    )
    assert isinstance(sealed, Refused)
    assert sealed.reason_code == "accord_expired"


def test_a_suspended_accord_refuses_every_view_and_receipt() -> None:
    """A party's signed suspension: the sender refuses the view, and the receipt, by name."""
    halted = dataclasses.replace(
        ACCORDS[RS], halt=Halt(ReasonCode.ACCORD_SUSPENDED, "RS suspended accord gb-rs")
    )
    (refused,) = _prepare(report(), RS, accords={RS: halted})
    assert isinstance(refused, Refused)
    assert (refused.reason_code, refused.reasons) == (
        "accord_suspended",
        ("RS suspended accord gb-rs",),
    )
    receipt = _receipt(report())
    sealed = prepare_receipt(
        receipt,
        sender=RS,
        recipient=GB,
        accord=halted,
        registry=REGISTRY,
        signing_key=KEYS[RS].signing,
        now=NOW,
    )
    assert isinstance(sealed, Refused)
    assert sealed.reason_code == "accord_suspended"


def test_a_view_larger_than_the_envelope_limit_is_refused_not_sent() -> None:
    """A sealed view over the limit is refused at the sender (``oversized``): sent, the
    gateway would refuse it, and a broker might not take it at all, stalling the sender."""
    (fits,) = _prepare(report(), RS)
    assert isinstance(fits, Outgoing)
    (refused,) = _prepare(report(), RS, max_envelope_bytes=len(fits.envelope) - 1)
    assert isinstance(refused, Refused)
    assert refused.reason_code == "oversized"
