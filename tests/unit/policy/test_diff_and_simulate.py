"""`diff` speaks in operator words; `simulate` replays recorded decisions under a new accord."""

from __future__ import annotations

import json
import pathlib

import pytest

from broker.errors import PolicyError
from broker.policy import ChangeKind, Outcome, diff_accords, parse_accord, simulate

from .conftest import SMALL_ACCORD


def _changes(*edits: tuple[str, str]) -> list[str]:
    new = SMALL_ACCORD.replace("version: 2", "version: 3")
    for edit in edits:
        assert edit[0] in new
        new = new.replace(*edit)
    old_accord = parse_accord(SMALL_ACCORD.encode(), source="old.yaml")
    new_accord = parse_accord(new.encode(), source="new.yaml")
    return [str(c) for c in diff_accords(old_accord, new_accord)]


DIFFS: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "tlp-raised": (
        (("max_tlp: AMBER", "max_tlp: AMBER+STRICT"),),
        "[widens] GB -> ZZ (network.report, person.alert): TLP ceiling raised from AMBER to "
        "AMBER+STRICT",
    ),
    "category-no-longer-redacted": (
        (("redact: [biometric]", "redact: []"),),
        "[narrows] GB -> ZZ (network.report, person.alert): data category biometric now "
        "refused (not listed) (was redacted)",
    ),
    "category-now-allowed": (
        (
            ("allow: [operational, identity]", "allow: [operational, identity, biometric]"),
            ("redact: [biometric]", "redact: []"),
        ),
        "[widens] GB -> ZZ (network.report, person.alert): data category biometric now "
        "allowed (was redacted)",
    ),
    "type-opens": (
        (
            (
                "types: [network.report, person.alert]",
                "types: [network.report, person.alert, vessel.sighting]",
            ),
        ),
        "[opens] GB -> ZZ (vessel.sighting): flow opens (GB-ZZ, operational tier)",
    ),
    "rate-limit-raised": (
        (("rate_limit: 10/hour", "rate_limit: 500/day"),),
        "[widens] GB -> ZZ (network.report, person.alert): rate limit 500/day (was 10/hour)",
    ),
    "retention-shortened": (
        (("retention_days: 365", "retention_days: 180"),),
        "[narrows] GB -> ZZ (network.report, person.alert): retention shortened from 365 to "
        "180 days",
    ),
}


@pytest.mark.parametrize(("edits", "expected"), DIFFS.values(), ids=DIFFS.keys())
def test_diff_phrases(edits: tuple[tuple[str, str], ...], expected: str) -> None:
    """Each kind of change reads as one sentence an operator can review."""
    assert expected in _changes(*edits)


def test_identical_accords_have_no_flow_changes() -> None:
    """Only the version note appears when nothing else changed."""
    accord = parse_accord(SMALL_ACCORD.encode(), source="a.yaml")
    changes = diff_accords(accord, accord)
    assert [c.kind for c in changes] == [ChangeKind.CHANGES]
    assert "rollback" in changes[0].text


def _record(tlp: str, decision: str) -> str:
    return json.dumps(
        {
            "at": "2026-06-01T12:00:00Z",
            "from": "GB",
            "to": "ZZ",
            "decision": decision,
            "labels": {
                "message_type": "network.report",
                "schema_version": 1,
                "classification": "OFFICIAL",
                "tlp": tlp,
                "handling": "H0",
                "purposes": ["people-smuggling"],
                "data_categories": ["identity"],
            },
        }
    )


def test_simulate_reports_what_the_new_version_decides_differently(tmp_path: pathlib.Path) -> None:
    """Lowering the TLP ceiling turns recorded AMBER allows into denies; GREEN is unaffected."""
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text(
        "\n".join([_record("GREEN", "allow"), _record("AMBER", "allow"), ""]), encoding="utf-8"
    )
    new = parse_accord(
        SMALL_ACCORD.replace("max_tlp: AMBER", "max_tlp: GREEN").encode(), source="new.yaml"
    )
    report = simulate(new, traffic)
    assert report.total == 2
    assert [d.line for d in report.differences] == [2]
    assert report.count(Outcome.ALLOW, Outcome.DENY) == 1


def test_simulate_names_the_line_of_a_bad_record(tmp_path: pathlib.Path) -> None:
    """A malformed record is a PolicyError naming file:line and the field."""
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text(_record("AMBR", "allow") + "\n", encoding="utf-8")
    accord = parse_accord(SMALL_ACCORD.encode(), source="a.yaml")
    with pytest.raises(PolicyError, match=r"traffic.jsonl:1: labels.tlp"):
        simulate(accord, traffic)
