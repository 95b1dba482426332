"""`broker policy ...` as an operator runs it: output and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import pytest
from click.testing import CliRunner

from broker.cli import cli
from broker.errors import PolicyError
from broker.ids import PartnerCode
from broker.keys import save_private_key
from broker.keys.testing import make_registry

from .conftest import POLICIES, SMALL_ACCORD


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_lint_ok_exits_zero(runner: CliRunner) -> None:
    """Every shipped accord lints clean."""
    result = runner.invoke(cli, ["policy", "lint", *map(str, sorted(POLICIES.glob("*.yaml")))])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok") == 5


def test_lint_errors_exit_10_with_positions(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    """Problems are printed with file:line:column and the PolicyError exit code."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL_ACCORD.replace("max_tlp: AMBER", "max_tlp: AMBR"), encoding="utf-8")
    result = runner.invoke(cli, ["policy", "lint", str(bad)])
    assert f"{bad}:16:14: flows[0].max_tlp: 'AMBR' is not a TLP level" in result.output
    assert isinstance(result.exception, PolicyError)  # _app.run turns it into exit status 10
    assert result.exception.exit_code == 10


def test_test_runs_the_fixture_cases(runner: CliRunner) -> None:
    """`broker policy test` passes on the shipped fixtures and reports coverage gaps."""
    result = runner.invoke(cli, ["policy", "test", str(POLICIES / "tests")])
    assert result.exception is None, result.output
    assert "PASS a UK network report with identities" in result.output
    assert "0 failures" in result.output
    assert "rules no case exercised: gb-al.parties" in result.output


def test_diff_speaks_operator_words(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    """A raised TLP ceiling is reported as such."""
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(SMALL_ACCORD, encoding="utf-8")
    new.write_text(
        SMALL_ACCORD.replace("version: 2", "version: 3").replace(
            "max_tlp: AMBER", "max_tlp: AMBER+STRICT"
        ),
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["policy", "diff", str(old), str(new)])
    assert "TLP ceiling raised from AMBER to AMBER+STRICT" in result.output


def test_explain_on_labels(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    """Explain prints the outcome, rule ids and readable reasons; --json gives the record."""
    labels = tmp_path / "labels.json"
    labels.write_text(
        json.dumps(
            {
                "message_type": "network.report",
                "schema_version": 1,
                "classification": "SECRET",
                "tlp": "AMBER",
                "handling": "H2",
                "purposes": ["people-smuggling"],
                "data_categories": ["identity"],
            }
        ),
        encoding="utf-8",
    )
    args = [
        "policy",
        "explain",
        "--accord",
        str(POLICIES / "gb-rs.yaml"),
        "--message",
        str(labels),
        "--from",
        "GB",
        "--to",
        "RS",
        "--at",
        "2026-03-01T12:00:00+00:00",
    ]
    result = runner.invoke(cli, args)
    assert "decision: DENY under gb-rs v1" in result.output
    assert "classification SECRET is above the ceiling OFFICIAL-SENSITIVE" in result.output
    record = json.loads(runner.invoke(cli, [*args, "--json"]).output)
    assert record["rule_ids"] == ["GB-RS-OPS.classification"]


def test_simulate_reports_changes(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    """Simulate counts recorded decisions and those that would change."""
    accord = tmp_path / "gb-zz.yaml"
    accord.write_text(SMALL_ACCORD, encoding="utf-8")
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text(
        json.dumps(
            {
                "at": "2026-06-01T12:00:00Z",
                "from": "GB",
                "to": "ZZ",
                "decision": "allow",
                "labels": {
                    "message_type": "network.report",
                    "schema_version": 1,
                    "classification": "OFFICIAL",
                    "tlp": "RED",
                    "handling": "H0",
                    "purposes": ["people-smuggling"],
                    "data_categories": ["identity"],
                },
            }
        )
        + "\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        cli, ["policy", "simulate", "--accord", str(accord), "--traffic", str(traffic)]
    )
    assert "line 1: GB -> ZZ network.report" in result.output
    assert "was allow, now deny" in result.output
    assert "1 recorded decisions, 1 would change" in result.output


def test_sign_then_verify(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    """Each party signs with its policy key; verify then names both signers."""
    now = dt.datetime.now(dt.UTC)
    registry_file = tmp_path / "registry.json"
    _, data, private = make_registry(now=now, partners=["GB", "RS"])
    registry_file.write_bytes(data)
    accord = tmp_path / "gb-rs.yaml"
    accord.write_bytes((POLICIES / "gb-rs.yaml").read_bytes())
    passphrase = tmp_path / "pass"
    passphrase.write_text("a long enough passphrase\n", encoding="utf-8")
    verify = ["policy", "verify", str(accord), "--registry", str(registry_file)]
    for party in ("GB", "RS"):
        key = tmp_path / f"{party}.policy.pem"
        save_private_key(
            key, private[PartnerCode(party)].policy, passphrase=b"a long enough passphrase"
        )
        result = runner.invoke(
            cli,
            [
                "policy",
                "sign",
                str(accord),
                "--key",
                str(key),
                "--partner",
                party,
                "--passphrase-file",
                str(passphrase),
            ],
        )
        assert result.exception is None, result.output
        if party == "GB":
            assert isinstance(runner.invoke(cli, verify).exception, PolicyError)
    result = runner.invoke(cli, verify)
    assert result.exception is None, result.output
    assert "co-signed by GB, RS" in result.output
