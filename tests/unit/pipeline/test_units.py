"""The units a partner declares in the registry, checked by the sender and the recipient
(the gateway's check is a case of test_gateway.py): an origin names a unit its sender lists,
a restrict-to-units condition names units its recipient lists, and a partner that lists none
is not checked. Real signed registries, real sealed envelopes, the accords in policies/."""

from __future__ import annotations

import pytest

from broker.envelope import Origin
from broker.ids import MessageId, PartnerCode
from broker.keys import PartnerUnit
from broker.keys.testing import build_registry
from broker.pipeline.receive import Accepted, Rejected, accept
from broker.pipeline.send import (
    Cleared,
    Outgoing,
    Refused,
    SendOutcome,
    accord_digest,
    clear,
    prepare,
    withdrawal_for,
)
from broker.pipeline.units import unlisted_origin, unlisted_unit, unreadable_at
from broker.policy import parse_accord
from broker.reasons import ReasonCode
from broker.schema import HandlingCode, Message, labels_of
from broker.schema.handling import ConditionKind, RestrictToUnits
from broker.trust import AccordInForce

from .test_receive import GB_MK, GB_RS, LATER, NOW, RETENTION, ROOT, frame_for, report, seal_for_rs

GB, RS, MK = PartnerCode("GB"), PartnerCode("RS"), PartnerCode("MK")
MARITIME = ("Border Force", "Maritime Intelligence")
WORLD = build_registry(
    now=NOW,
    partners=("GB", "RS", "MK"),
    units={"GB": [MARITIME, ("NCA", "Organised Immigration Crime")], "RS": [("MUP", "UKP")]},
)
REGISTRY, KEYS = WORLD.registry, WORLD.partners
CLARKE = Origin(agency=MARITIME[0], unit=MARITIME[1], officer="d.clarke")


def _gb_rs_with_h3() -> AccordInForce:
    """gb-rs as amended by the exchange of letters its H3 note asks for (every flow H3 too)."""
    text = (ROOT / "policies" / "gb-rs.yaml").read_text(encoding="utf-8")
    amended = text.replace("version: 1\n", "version: 2\n", 1).replace(
        "[H0, H1, H2]", "[H0, H1, H2, H3]"
    )
    accord = parse_accord(amended.encode(), source="gb-rs.yaml, amended")
    return AccordInForce(accord, accord_digest(accord))


def _restricted(*conditions: tuple[str, ...]) -> Message:
    """The report under H3, with one restrict-to-units condition per tuple of units."""
    restrictions = tuple(
        RestrictToUnits(kind=ConditionKind.RESTRICT_TO_UNITS, units=units) for units in conditions
    )
    return report().model_copy(
        update={"handling": HandlingCode.H3, "handling_conditions": restrictions}
    )


def _clear(message: Message, recipients: list[PartnerCode]) -> list[Cleared | Refused]:
    return clear(
        message,
        sender=GB,
        recipients=recipients,
        accords={RS: _gb_rs_with_h3(), MK: GB_MK},
        registry=REGISTRY,
        now=NOW,
        counters={},
    )


def _sealed_by_gb(origin: Origin) -> bytes:
    """GB's view for RS naming ``origin``, sealed directly (no sender-side check)."""
    return seal_for_rs(report(), labels=labels_of(report()), world=WORLD, origin=origin)


def _received_by_rs(sealed: bytes) -> Accepted | Rejected:
    rs = KEYS[RS]
    return accept(
        frame_for(sealed, gateway_key=next(iter(WORLD.gateways.values()))),
        me=RS,
        registry=REGISTRY,
        decryption_keys={rs.encryption_key_id: rs.decryption},
        accords={GB: GB_RS},
        now=LATER,
        max_retention=RETENTION,
    )


def _prepared_by_gb(recipients: list[PartnerCode], *, origin: Origin) -> list[SendOutcome]:
    return prepare(
        report(),
        sender=GB,
        recipients=recipients,
        accords={RS: GB_RS, MK: GB_MK},
        registry=REGISTRY,
        signing_key=KEYS[GB].signing,
        now=NOW,
        counters={},
        origin=origin,
    )


def test_the_registry_lists_each_partners_units_in_order_and_none_for_the_silent() -> None:
    assert REGISTRY.units_of(GB) == (
        PartnerUnit(*MARITIME),
        PartnerUnit("NCA", "Organised Immigration Crime"),
    )
    assert REGISTRY.units_of(MK) is None
    assert unlisted_unit(REGISTRY, GB, *MARITIME) is None
    assert unlisted_unit(REGISTRY, MK, "Any agency", "Any unit") is None
    # agency and unit are compared together and exactly
    for agency, unit in [("NCA", MARITIME[1]), (MARITIME[0], "maritime intelligence")]:
        why = unlisted_unit(REGISTRY, GB, agency, unit)
        assert why is not None
        assert repr(unit) in why
        assert "'Maritime Intelligence' of 'Border Force'" in why


def test_a_recipient_refuses_an_origin_its_sender_does_not_list_and_says_why() -> None:
    stray = CLARKE.model_copy(update={"unit": "Cyber"})
    outcome = _received_by_rs(_sealed_by_gb(stray))
    assert isinstance(outcome, Rejected)
    assert outcome.reason_code is ReasonCode.UNLISTED_UNIT
    assert "'Cyber'" in outcome.reason
    # the authenticated sender hears why in a rejected receipt
    assert outcome.sender == GB
    assert outcome.receipt is not None
    accepted = _received_by_rs(_sealed_by_gb(CLARKE))
    assert isinstance(accepted, Accepted)
    assert accepted.header.origin == CLARKE


def test_a_sender_without_a_list_is_not_checked_on_receipt() -> None:
    silent = build_registry(now=NOW, partners=("GB", "RS", "MK"))
    assert unlisted_origin(silent.registry, GB, CLARKE.model_copy(update={"unit": "Cyber"})) is None
    assert unlisted_origin(REGISTRY, GB, None) is None


def test_a_sender_refuses_to_seal_an_origin_of_a_unit_it_does_not_list() -> None:
    """The sending adapter refuses before sealing, for every recipient, rather than let the
    gateway quarantine what it would seal."""
    outcomes = _prepared_by_gb([RS, MK], origin=CLARKE.model_copy(update={"agency": "NCA"}))
    assert [(o.recipient, o.reason_code) for o in outcomes if isinstance(o, Refused)] == [
        (RS, ReasonCode.UNLISTED_UNIT),
        (MK, ReasonCode.UNLISTED_UNIT),
    ]
    (sealed,) = _prepared_by_gb([RS], origin=CLARKE)
    assert isinstance(sealed, Outgoing)
    assert sealed.origin == CLARKE


# each restrict-to-units condition's units -> whether an officer of RS's UKP could read it
READABLE_AT_RS = {
    (("UKP",),): True,
    # one condition names RS's UKP and MK's cyber unit: UKP reads it at RS, as the read rule does
    (("UKP", "Cyber"),): True,
    (("SBPOK",),): False,
    (("ukp",),): False,
    # every condition binds: no unit is in both, so nobody reads it
    (("UKP",), ("SBPOK",)): False,
    (("UKP", "SBPOK"), ("UKP",)): True,
}


@pytest.mark.parametrize("conditions", list(READABLE_AT_RS))
def test_restrict_to_units_that_no_unit_of_the_recipient_meets_is_refused(
    conditions: tuple[tuple[str, ...], ...],
) -> None:
    """An officer reads a view only if their unit is named by every restrict-to-units
    condition (docs/OFFICERS.md). When no unit RS lists is, a misspelt or foreign unit would
    keep the view from every officer there: refused before sealing, naming what RS does not
    list. MK lists no units, so nothing is checked for it."""
    restricted = _restricted(*conditions)
    (rs,) = _clear(restricted, [RS])
    assert unreadable_at(REGISTRY, MK, restricted) is None
    if READABLE_AT_RS[conditions]:
        assert isinstance(rs, Cleared), rs
        return
    assert isinstance(rs, Refused)
    assert rs.reason_code is ReasonCode.UNLISTED_UNIT
    (why,) = rs.reasons
    assert "no officer there could read it" in why
    assert "'UKP' of 'MUP'" in why
    unknown = {unit for units in conditions for unit in units} - {"UKP"}
    assert all(repr(unit) in why for unit in unknown)


@pytest.mark.parametrize("unit", ["UKP\u200b", "UKP ", "Mari  time", "Granic\u030cna"])
def test_restrict_to_units_naming_what_no_unit_can_be_called_is_refused_for_everyone(
    unit: str,
) -> None:
    """No officer anywhere is in a unit of that name, so the view could be read by nobody,
    whether or not the recipient lists its units (MK lists none)."""
    restricted = _restricted((unit, "UKP"), (unit,))
    for recipient in (RS, MK):
        (outcome,) = _clear(restricted, [recipient])
        assert isinstance(outcome, Refused), outcome
        assert outcome.reason_code is ReasonCode.UNLISTED_UNIT
        (why,) = outcome.reasons
        assert f"restrict-to-units names {unit!a}, which is not a unit name" in why


def test_a_restricted_views_withdrawal_passes_whatever_changed_since() -> None:
    """A view sent under gb-rs amended to admit H3 and restricted to RS's UKP is still
    withdrawn once the accord is back to H0-H2 and RS calls the unit something else: the
    withdrawal binds nothing of its own, so nothing since can keep it from shredding."""
    renamed = build_registry(
        now=NOW, partners=("GB", "RS", "MK"), units={"RS": [("MUP", "UKP Beograd")]}
    )
    view = _restricted(("UKP",))
    (sent,) = _clear(view, [RS])
    assert isinstance(sent, Cleared)
    withdrawal = withdrawal_for(
        labels_of(view),
        case_id=view.case_id,
        withdraws=MessageId("0190f0f0-0000-7000-8000-000000000001"),
        reason="source burned",
        conditions=view.handling_conditions,
    )
    (out,) = clear(
        withdrawal,
        sender=GB,
        recipients=[RS],
        accords={RS: GB_RS},
        registry=renamed.registry,
        now=NOW,
        counters={},
    )
    assert isinstance(out, Cleared), out
