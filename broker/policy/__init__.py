"""Accords as code: the accord model, the strict YAML loader and the pure decision engine.

``load_accord`` reads ``policies/<id>.yaml`` (errors name file:line:column, the field and a
fix); ``evaluate`` is the gateway's decision on signed labels; ``decide_for_recipient`` is the
sending adapter's decision on full content, with the recipient's redacted view.
"""

from __future__ import annotations

from broker.policy._yaml import DEFAULT_MAX_BYTES as MAX_ACCORD_BYTES
from broker.policy.cases import CaseResult, FileReport, discover, run_case_file
from broker.policy.diff import Change, ChangeKind, diff_accords
from broker.policy.engine import (
    Decision,
    Outcome,
    Request,
    evaluate,
    evaluate_content,
    out_of_force,
    rule_ids,
)
from broker.policy.loader import Problem, lint_accord, lint_accord_file, load_accord, parse_accord
from broker.policy.model import (
    PERSONAL_CATEGORIES,
    Accord,
    AccordTime,
    CategoryRules,
    Flow,
    FlowHandling,
    OnwardSharing,
    RateLimit,
    RateWindow,
    Suite,
    Tier,
    accord_json_schema,
    accord_time_text,
    instant_of,
)
from broker.policy.sender import RecipientView, decide_for_recipient
from broker.policy.simulate import Difference, SimulationReport, TrafficRecord, simulate

__all__ = [
    "MAX_ACCORD_BYTES",
    "PERSONAL_CATEGORIES",
    "Accord",
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
]
