"""The public surface of broker.policy is pinned: changing it is a deliberate act."""

from __future__ import annotations

import broker.policy

EXPECTED = {
    "PERSONAL_CATEGORIES",
    "Accord",
    "MAX_ACCORD_BYTES",
    "AccordTime",
    "CaseResult",
    "CategoryRules",
    "Change",
    "ChangeKind",
    "Decision",
    "Difference",
    "FileReport",
    "Flow",
    "FlowHandling",
    "OnwardSharing",
    "Outcome",
    "Problem",
    "RateLimit",
    "RateWindow",
    "RecipientView",
    "Request",
    "SimulationReport",
    "Suite",
    "Tier",
    "TrafficRecord",
    "accord_json_schema",
    "accord_time_text",
    "decide_for_recipient",
    "diff_accords",
    "discover",
    "evaluate",
    "evaluate_content",
    "instant_of",
    "lint_accord",
    "lint_accord_file",
    "load_accord",
    "out_of_force",
    "parse_accord",
    "rule_ids",
    "run_case_file",
    "simulate",
}


def test_all_is_exactly_the_documented_surface() -> None:
    """`__all__` lists the public names, and every one of them exists."""
    assert set(broker.policy.__all__) == EXPECTED
    assert all(hasattr(broker.policy, name) for name in broker.policy.__all__)
