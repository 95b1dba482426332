"""Accord test fixtures: YAML cases (labels in, expected decision out) and their runner.

A fixture file ``policies/tests/<accord>.cases.yaml`` names the accord it tests and lists
cases; ``broker policy test`` and pytest both run them through :func:`run_case_file`. A case
gives either ``labels`` (the gateway path: the labels of an already-redacted view) or
``content`` (the sender path: the labels of the full content, before redaction).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from broker.errors import PolicyError
from broker.ids import PartnerCode
from broker.policy.engine import Decision, Outcome, Request, evaluate, evaluate_content, rule_ids
from broker.policy.loader import load_accord, read_yaml_model
from broker.policy.model import Accord, OnwardSharing
from broker.schema.labels import DataCategory, Labels

__all__ = ["CaseFile", "CaseResult", "FileReport", "discover", "run_case_file"]

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=False)


class Expectation(BaseModel):
    """What the decision must be; fields left out are not checked."""

    model_config = _STRICT

    outcome: Outcome
    rules: tuple[str, ...] | None = None
    redact: frozenset[DataCategory] | None = None
    reasons: tuple[str, ...] = ()  # each must appear in some reason (case-insensitive)
    retention_days: int | None = None
    onward_sharing: OnwardSharing | None = None


class Case(BaseModel):
    """One named case."""

    model_config = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=200)]
    sender: Annotated[str, Field(alias="from", pattern=r"^[A-Z]{2}$")]
    recipient: Annotated[str, Field(alias="to", pattern=r"^[A-Z]{2}$")]
    at: dt.datetime | None = None
    counters: dict[str, int] = Field(default_factory=dict)
    labels: Labels | None = None
    content: Labels | None = None
    expect: Expectation

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        if (self.labels is None) == (self.content is None):
            raise ValueError("give exactly one of labels (gateway path) or content (sender path)")
        return self


class CaseFile(BaseModel):
    """A fixture file: the accord under test, the default decision time, the cases."""

    model_config = _STRICT

    accord: Annotated[str, Field(min_length=1, max_length=400)]
    at: dt.datetime
    cases: Annotated[tuple[Case, ...], Field(min_length=1, max_length=1000)]


@dataclasses.dataclass(frozen=True)
class CaseResult:
    """One case's verdict: ``failures`` is empty when it passed."""

    name: str
    decision: Decision
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """True when the decision met every expectation."""
        return not self.failures


@dataclasses.dataclass(frozen=True)
class FileReport:
    """The results of one fixture file and the accord rules no case exercised."""

    path: pathlib.Path
    accord: Accord
    results: tuple[CaseResult, ...]
    unexercised: tuple[str, ...]


def discover(directory: pathlib.Path) -> list[pathlib.Path]:
    """The fixture files in ``directory`` (``*.cases.yaml``), in name order."""
    if not directory.is_dir():
        raise PolicyError(f"{directory}: not a directory of accord test cases")
    return sorted(directory.glob("*.cases.yaml"))


def run_case_file(path: pathlib.Path) -> FileReport:
    """Run every case in ``path`` against the accord it names (relative to the file)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read test cases: {exc.strerror or exc}") from exc
    fixture = read_yaml_model(data, CaseFile, source=str(path))
    accord = load_accord(path.parent / fixture.accord)
    if fixture.at.tzinfo is None:
        raise PolicyError(f"{path}: 'at' needs a timezone, e.g. 2026-03-01T12:00:00Z")
    results = tuple(_run(accord, case, fixture.at) for case in fixture.cases)
    exercised = {rule for result in results for rule in result.decision.rule_ids}
    unexercised = tuple(rule for rule in rule_ids(accord) if rule not in exercised)
    return FileReport(path=path, accord=accord, results=results, unexercised=unexercised)


def _run(accord: Accord, case: Case, default_at: dt.datetime) -> CaseResult:
    at = case.at or default_at
    if at.tzinfo is None:
        raise PolicyError(f"case {case.name!r}: 'at' needs a timezone")
    labels = case.labels or case.content
    if labels is None:  # the model validator makes this unreachable
        raise PolicyError(f"case {case.name!r}: no labels")
    request = Request(
        labels=labels, sender=PartnerCode(case.sender), recipient=PartnerCode(case.recipient)
    )
    decide = evaluate if case.labels is not None else evaluate_content
    decision = decide(accord, request, now=at, counters=case.counters)
    return CaseResult(name=case.name, decision=decision, failures=_compare(case.expect, decision))


def _compare(expect: Expectation, decision: Decision) -> tuple[str, ...]:
    failures: list[str] = []
    if decision.outcome is not expect.outcome:
        failures.append(f"outcome is {decision.outcome}, expected {expect.outcome}")
    if expect.rules is not None and tuple(sorted(decision.rule_ids)) != tuple(sorted(expect.rules)):
        failures.append(f"rules are {list(decision.rule_ids)}, expected {list(expect.rules)}")
    if expect.redact is not None and decision.redact != expect.redact:
        failures.append(
            f"redactions are {sorted(decision.redact)}, expected {sorted(expect.redact)}"
        )
    for wanted in expect.reasons:
        if not any(wanted.lower() in reason.lower() for reason in decision.reasons):
            failures.append(f"no reason mentions {wanted!r}; reasons: {list(decision.reasons)}")
    if expect.retention_days is not None and decision.retention_days != expect.retention_days:
        failures.append(
            f"retention is {decision.retention_days} days, expected {expect.retention_days}"
        )
    if expect.onward_sharing is not None and decision.onward_sharing is not expect.onward_sharing:
        failures.append(
            f"onward sharing is {decision.onward_sharing}, expected {expect.onward_sharing}"
        )
    return tuple(failures)
