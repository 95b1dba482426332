"""The sending adapter's decision on full messages, and its agreement with the gateway."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.ids import PartnerCode
from broker.policy import (
    Outcome,
    Request,
    decide_for_recipient,
    evaluate,
    evaluate_content,
    load_accord,
)
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

from .conftest import POLICIES

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "schemas" / "examples"
MESSAGES = [parse_message(path.read_bytes()) for path in sorted(EXAMPLES.glob("*.json"))]
ACCORDS = {p.stem: load_accord(p) for p in sorted(POLICIES.glob("*.yaml"))}
AT = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
REMOVABLE = sorted(set(DataCategory) - {DataCategory.OPERATIONAL})


def _relabel(message: Message, **update: object) -> Message:
    # H3 needs conditions the examples may not carry; the labels are varied below H3.
    return message.model_copy(update={"handling_conditions": (), **update})


def test_biometrics_are_removed_for_serbia() -> None:
    """A person alert with a photo or fingerprints reaches Serbia without them."""
    alert = next(m for m in MESSAGES if DataCategory.BIOMETRIC in categories_present(m))
    message = _relabel(
        alert,
        tlp=TLP.AMBER,
        handling=HandlingCode.H1,
        purposes=frozenset({Purpose.PEOPLE_SMUGGLING}),
    )
    if DataCategory.SOURCE_IDENTIFYING in categories_present(message):
        message = redact(message, [DataCategory.SOURCE_IDENTIFYING])
    if DataCategory.FINANCIAL in categories_present(message):
        message = redact(message, [DataCategory.FINANCIAL])
    result = decide_for_recipient(
        ACCORDS["gb-rs"], message, PartnerCode("GB"), PartnerCode("RS"), now=AT, counters={}
    )
    assert result.decision.outcome is Outcome.REDACT
    assert result.view is not None
    assert DataCategory.BIOMETRIC not in categories_present(result.view)
    assert result.view.redacted


def test_a_denied_message_has_no_view() -> None:
    """Kosovo receives nothing above OFFICIAL in the strategic phase."""
    message = _relabel(MESSAGES[0], classification=Classification.SECRET)
    result = decide_for_recipient(
        ACCORDS["gb-xk"], message, PartnerCode("GB"), PartnerCode("XK"), now=AT, counters={}
    )
    assert result.decision.outcome is Outcome.DENY
    assert result.view is None
    with pytest.raises(TypeError):
        bool(result)


@settings(max_examples=150, deadline=None)
@given(
    base=st.sampled_from(MESSAGES),
    stripped=st.frozensets(st.sampled_from(REMOVABLE)),
    classification=st.sampled_from(Classification),
    tlp=st.sampled_from(TLP),
    handling=st.sampled_from([HandlingCode.H0, HandlingCode.H1, HandlingCode.H2]),
    purposes=st.frozensets(st.sampled_from(Purpose), min_size=1, max_size=3),
    accord_id=st.sampled_from(sorted(ACCORDS)),
    outbound=st.booleans(),
)
def test_gateway_allows_the_redacted_view_exactly_when_the_sender_allows(
    base: Message,
    stripped: frozenset[DataCategory],
    classification: Classification,
    tlp: TLP,
    handling: HandlingCode,
    purposes: frozenset[Purpose],
    accord_id: str,
    outbound: bool,
) -> None:
    """Property, on real messages: sender-side permits == gateway permits on labels_of(view).

    The view is built independently here (evaluate_content, then broker.schema.redact), so the
    property checks that redaction removes exactly what the decision asks for.
    """
    accord = ACCORDS[accord_id]
    partner = PartnerCode(next(p for p in accord.parties if p != "GB"))
    sender, recipient = (PartnerCode("GB"), partner) if outbound else (partner, PartnerCode("GB"))
    message = redact(
        _relabel(
            base, classification=classification, tlp=tlp, handling=handling, purposes=purposes
        ),
        stripped,
    )
    on_content = evaluate_content(
        accord, Request(labels_of(message), sender, recipient), now=AT, counters={}
    )
    view = redact(message, on_content.redact)
    at_gateway = evaluate(accord, Request(labels_of(view), sender, recipient), now=AT, counters={})
    assert at_gateway.permits == on_content.permits
    result = decide_for_recipient(accord, message, sender, recipient, now=AT, counters={})
    assert result.decision.permits == on_content.permits
    assert (result.view is not None) == on_content.permits
    if result.view is not None:
        assert labels_of(result.view) == labels_of(view)
