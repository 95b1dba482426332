"""Each H3 handling condition reads as the duty it puts on its recipient (`inbox show`)."""

from __future__ import annotations

import json

import pydantic
import pytest

from broker.schema.handling import ConditionKind, HandlingCondition, duty

_CONDITION = pydantic.TypeAdapter(HandlingCondition)
EXAMPLES: dict[ConditionKind, tuple[dict[str, object], str]] = {
    ConditionKind.NO_DISSEMINATION_TO: (
        {"partners": ["TR", "AL"]},
        "never pass it on to TR, AL, even with permission",
    ),
    ConditionKind.PRIOR_CONSULTATION: (
        {"contact_point": "NCA OIC duty desk", "response_hours": 24},
        "no executive action before consulting NCA OIC duty desk (answer within 24 h)",
    ),
    ConditionKind.RESTRICT_TO_UNITS: (
        {"units": ["NCA OIC"]},
        "only NCA OIC may see it; it is never passed on to another partner",
    ),
    ConditionKind.NO_JUDICIAL_USE_BEFORE: (
        {"not_before": "2027-03-01T00:00:00Z"},
        "no judicial use before 2027-03-01 00:00Z",
    ),
    ConditionKind.DESTROY_BY: (
        {"deadline": "2027-01-31T12:00:00Z"},
        "destroyed by 2027-01-31 12:00Z, whatever the retention",
    ),
}


@pytest.mark.parametrize("kind", list(ConditionKind))
def test_every_kind_of_condition_reads_as_its_duty(kind: ConditionKind) -> None:
    fields, expected = EXAMPLES[kind]
    condition = _CONDITION.validate_json(json.dumps({"kind": kind.value, **fields}))
    assert duty(condition) == expected


def test_a_time_with_an_offset_reads_in_utc() -> None:
    """10:00 at -05:00 is 15:00Z: shown as 10:00Z it would allow judicial use five hours early."""
    condition = _CONDITION.validate_json(
        json.dumps({"kind": "no-judicial-use-before", "not_before": "2026-12-01T10:00:00-05:00"})
    )
    assert duty(condition) == "no judicial use before 2026-12-01 15:00Z"
