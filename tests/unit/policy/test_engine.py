"""The pure decision engine: default deny, deny beats allow, every failed check explained."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import UsageError
from broker.ids import PartnerCode
from broker.policy import (
    Accord,
    Decision,
    OnwardSharing,
    Outcome,
    Request,
    evaluate,
    evaluate_content,
    load_accord,
    rule_ids,
)
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)

from .conftest import POLICIES

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def _labels(**overrides: Any) -> Labels:
    fields: dict[str, Any] = {
        "message_type": MessageType.NETWORK_REPORT,
        "schema_version": 1,
        "classification": Classification.OFFICIAL,
        "tlp": TLP.AMBER,
        "handling": HandlingCode.H0,
        "purposes": frozenset({Purpose.PEOPLE_SMUGGLING}),
        "data_categories": frozenset({DataCategory.IDENTITY}),
    }
    fields.update(overrides)
    return Labels(**fields)


def _request(sender: str = "GB", recipient: str = "ZZ", **overrides: Any) -> Request:
    return Request(
        labels=_labels(**overrides), sender=PartnerCode(sender), recipient=PartnerCode(recipient)
    )


def _decide(accord: Accord, request: Request, **counters: int) -> Decision:
    return evaluate(accord, request, now=NOW, counters=dict(counters))


CASES: dict[str, tuple[dict[str, Any], Outcome, tuple[str, ...]]] = {
    "allowed": ({}, Outcome.ALLOW, ("GB-ZZ",)),
    "unknown-direction": ({"sender": "ZZ", "recipient": "GB"}, Outcome.DENY, ("gb-zz.no-flow",)),
    "stranger": ({"recipient": "RS"}, Outcome.DENY, ("gb-zz.parties",)),
    "type-not-in-flow": (
        {"message_type": MessageType.FINANCIAL_FLOW},
        Outcome.DENY,
        ("gb-zz.no-flow",),
    ),
    "purpose-outside": (
        {"purposes": frozenset({Purpose.PEOPLE_SMUGGLING, Purpose.SAFEGUARDING})},
        Outcome.DENY,
        ("GB-ZZ.purposes",),
    ),
    "above-classification": (
        {"classification": Classification.SECRET},
        Outcome.DENY,
        ("GB-ZZ.classification",),
    ),
    "above-tlp": ({"tlp": TLP.RED}, Outcome.DENY, ("GB-ZZ.tlp",)),
    "handling-not-accepted": ({"handling": HandlingCode.H1}, Outcome.DENY, ("GB-ZZ.handling",)),
    "denied-category": (
        {"data_categories": frozenset({DataCategory.SOURCE_IDENTIFYING})},
        Outcome.DENY,
        ("GB-ZZ.categories.deny",),
    ),
    "unlisted-category": (
        {"data_categories": frozenset({DataCategory.HEALTH})},
        Outcome.DENY,
        ("GB-ZZ.categories.unlisted",),
    ),
    "unredacted-category": (
        {"data_categories": frozenset({DataCategory.BIOMETRIC})},
        Outcome.DENY,
        ("GB-ZZ.categories.redact",),
    ),
}


@pytest.mark.parametrize(("overrides", "outcome", "rules"), CASES.values(), ids=CASES.keys())
def test_gateway_decisions(
    small_accord: Accord, overrides: dict[str, Any], outcome: Outcome, rules: tuple[str, ...]
) -> None:
    """Each check of the flow decides on its own, and cites its rule id."""
    parties = {k: overrides.pop(k) for k in ("sender", "recipient") if k in overrides}
    decision = _decide(small_accord, _request(**parties, **overrides))
    assert decision.outcome is outcome
    assert decision.rule_ids == rules
    assert decision.reasons


def test_deny_beats_allow_and_every_failure_is_reported(small_accord: Accord) -> None:
    """An allowed category does not rescue a denied one; all failed checks are listed."""
    request = _request(
        tlp=TLP.RED,
        data_categories=frozenset({DataCategory.IDENTITY, DataCategory.SOURCE_IDENTIFYING}),
    )
    decision = _decide(small_accord, request)
    assert decision.outcome is Outcome.DENY
    assert decision.rule_ids == ("GB-ZZ.tlp", "GB-ZZ.categories.deny")
    assert len(decision.reasons) == 2


def test_classification_reason_names_the_recipient_marking() -> None:
    """A ceiling reason gives the recipient's own marking from the equivalence tables."""
    accord = load_accord(POLICIES / "gb-rs.yaml")
    request = _request("GB", "RS", classification=Classification.SECRET)
    decision = evaluate(accord, request, now=NOW, counters={})
    assert "above the ceiling OFFICIAL-SENSITIVE (RS: ИНТЕРНО / INTERNO)" in decision.reasons[0]


@pytest.mark.parametrize(
    ("at", "words"),
    [
        (dt.datetime(2025, 12, 31, 23, 59, tzinfo=dt.UTC), "not in force until 2026-01-01"),
        (dt.datetime(2027, 1, 1, tzinfo=dt.UTC), "expired on 2027-01-01"),
    ],
    ids=["before-effective", "at-expiry"],
)
def test_outside_the_accord_dates_nothing_flows(
    small_accord: Accord, at: dt.datetime, words: str
) -> None:
    """The accord applies from midnight UTC of `effective` until midnight UTC of `expires`."""
    decision = evaluate(small_accord, _request(), now=at, counters={})
    assert decision.rule_ids == ("gb-zz.in-force",)
    assert words in decision.reasons[0]


def test_rate_limit_uses_the_counters_passed_in(small_accord: Accord) -> None:
    """Below the limit allows; at the limit denies; the engine keeps no count of its own."""
    assert _decide(small_accord, _request(), **{"GB-ZZ": 9}).outcome is Outcome.ALLOW
    denied = _decide(small_accord, _request(), **{"GB-ZZ": 10})
    assert denied.rule_ids == ("GB-ZZ.rate-limit",)
    assert _decide(small_accord, _request(), **{"GB-ZZ": 9}).rate_counter == "GB-ZZ"


def test_sender_side_turns_redact_categories_into_obligations(small_accord: Accord) -> None:
    """On full content, biometrics are an obligation to redact, not a refusal."""
    decision = evaluate_content(
        small_accord,
        _request(data_categories=frozenset({DataCategory.IDENTITY, DataCategory.BIOMETRIC})),
        now=NOW,
        counters={},
    )
    assert decision.outcome is Outcome.REDACT
    assert decision.redact == {DataCategory.BIOMETRIC}
    assert decision.rule_ids == ("GB-ZZ", "GB-ZZ.categories.redact")
    assert decision.permits


@pytest.mark.parametrize(
    ("tlp", "handling", "expected"),
    [
        (TLP.AMBER, HandlingCode.H0, OnwardSharing.WITHIN_RECIPIENT_AUTHORITIES),
        (TLP.CLEAR, HandlingCode.H2, OnwardSharing.WITH_ORIGINATOR_CONSENT),
        (TLP.AMBER_STRICT, HandlingCode.H0, OnwardSharing.WITH_ORIGINATOR_CONSENT),
    ],
    ids=["accord-rule", "h2-needs-consent", "amber-strict-needs-consent"],
)
def test_onward_sharing_is_the_strictest_demand(
    tlp: TLP, handling: HandlingCode, expected: OnwardSharing
) -> None:
    """The obligation is the strictest of the accord, the handling code and the TLP level."""
    accord = load_accord(POLICIES / "gb-al.yaml")  # AL -> GB allows sharing within UK agencies
    request = _request("AL", "GB", tlp=tlp, handling=handling)
    decision = evaluate(accord, request, now=dt.datetime(2026, 3, 1, tzinfo=dt.UTC), counters={})
    assert decision.retention_days == 1095
    assert decision.onward_sharing is expected


def test_decision_is_not_a_boolean(small_accord: Accord) -> None:
    """`if decision:` is a bug waiting to happen, so it raises."""
    decision = _decide(small_accord, _request())
    with pytest.raises(TypeError, match="permits"):
        bool(decision)


def test_naive_time_is_refused(small_accord: Accord) -> None:
    """Decisions need a timezone-aware `now`."""
    with pytest.raises(UsageError):
        evaluate(small_accord, _request(), now=dt.datetime(2026, 6, 1), counters={})  # noqa: DTZ001


def test_rule_ids_list_every_rule_a_decision_can_cite(small_accord: Accord) -> None:
    """Coverage is computed against this list."""
    assert set(rule_ids(small_accord)) == {
        "gb-zz.parties",
        "gb-zz.in-force",
        "gb-zz.no-flow",
        "GB-ZZ",
        "GB-ZZ.purposes",
        "GB-ZZ.classification",
        "GB-ZZ.tlp",
        "GB-ZZ.handling",
        "GB-ZZ.categories.redact",
        "GB-ZZ.categories.deny",
        "GB-ZZ.categories.unlisted",
        "GB-ZZ.rate-limit",
    }


labels_strategy = st.builds(
    Labels,
    message_type=st.sampled_from(MessageType),
    schema_version=st.just(1),
    classification=st.sampled_from(Classification),
    tlp=st.sampled_from(TLP),
    handling=st.sampled_from(HandlingCode),
    purposes=st.frozensets(st.sampled_from(Purpose), min_size=1),
    data_categories=st.frozensets(st.sampled_from(DataCategory)),
)
ACCORDS = {p.stem: load_accord(p) for p in sorted(POLICIES.glob("*.yaml"))}
PAIRS = [
    (a, b) for accord in ACCORDS.values() for a in accord.parties for b in accord.parties if a != b
]


@given(
    accord_id=st.sampled_from(sorted(ACCORDS)),
    content=labels_strategy,
    pair=st.sampled_from(PAIRS),
    at=st.datetimes(
        min_value=dt.datetime(2023, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=dt.datetime(2029, 1, 1),  # noqa: DTZ001
        timezones=st.just(dt.UTC),
    ),
    sent=st.integers(min_value=0, max_value=6000),
)
def test_gateway_on_the_redacted_labels_agrees_with_the_sender(
    accord_id: str, content: Labels, pair: tuple[str, str], at: dt.datetime, sent: int
) -> None:
    """Property: the gateway allows the redacted view's labels exactly when the sender allows.

    The view's labels are the content's labels without the categories the sender must remove.
    """
    accord = ACCORDS[accord_id]
    counters = {flow.id: sent for flow in accord.flows}
    sender, recipient = PartnerCode(pair[0]), PartnerCode(pair[1])
    on_content = evaluate_content(
        accord,
        Request(labels=content, sender=sender, recipient=recipient),
        now=at,
        counters=counters,
    )
    view = content.model_copy(
        update={"data_categories": content.data_categories - on_content.redact}
    )
    at_gateway = evaluate(
        accord, Request(labels=view, sender=sender, recipient=recipient), now=at, counters=counters
    )
    assert at_gateway.permits == on_content.permits
    assert at_gateway.outcome is not Outcome.REDACT
    if on_content.permits:
        assert at_gateway.flow == on_content.flow
        assert at_gateway.retention_days == on_content.retention_days


@given(content=labels_strategy, pair=st.sampled_from(PAIRS))
def test_same_inputs_same_decision(content: Labels, pair: tuple[str, str]) -> None:
    """Purity: deciding twice on the same inputs gives equal decisions."""
    accord = ACCORDS["gb-rs"]
    request = Request(labels=content, sender=PartnerCode(pair[0]), recipient=PartnerCode(pair[1]))
    assert evaluate(accord, request, now=NOW, counters={}) == evaluate(
        accord, request, now=NOW, counters={}
    )
