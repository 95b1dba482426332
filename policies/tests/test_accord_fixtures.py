"""Every case in policies/tests/*.cases.yaml as a pytest test, as `broker policy test` runs them."""

from __future__ import annotations

import pathlib

import pytest

from broker.policy import CaseResult, discover, run_case_file

HERE = pathlib.Path(__file__).parent
RESULTS: list[tuple[str, CaseResult]] = [
    (f"{path.name}::{result.name}", result)
    for path in discover(HERE)
    for result in run_case_file(path).results
]


def test_every_accord_has_fixture_cases() -> None:
    """Each accord in policies/ has a cases file beside this module."""
    accords = {p.stem for p in HERE.parent.glob("*.yaml")}
    covered = {p.name.removesuffix(".cases.yaml") for p in discover(HERE)}
    assert accords <= covered, f"accords without cases: {sorted(accords - covered)}"


@pytest.mark.parametrize("result", [r for _, r in RESULTS], ids=[name for name, _ in RESULTS])
def test_accord_case(result: CaseResult) -> None:
    """The accord decides this case as the fixture expects (outcome, rules, obligations)."""
    assert result.passed, "; ".join(result.failures)
