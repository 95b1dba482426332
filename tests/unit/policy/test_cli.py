"""`broker policy ...` as an operator runs it: output and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from broker import cosign
from broker.cli import cli
from broker.errors import PolicyError
from broker.ids import PartnerCode
from broker.keys import save_private_key
from broker.keys.testing import make_registry
from broker.policy import load_accord

from .conftest import POLICIES, SMALL_ACCORD

AT_TEXT = "2026-03-01T12:00:00+00:00"
AT = dt.datetime.fromisoformat(AT_TEXT)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_lint_ok_exits_zero(runner: CliRunner) -> None:
    """Every shipped accord lints clean."""
    files = sorted(POLICIES.glob("*.yaml"))
    result = runner.invoke(cli, ["policy", "lint", *map(str, files)])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok") == len(files)


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
    registry_file = tmp_path / "registry.json"
    _, data, private = make_registry(now=AT, partners=["GB", "RS"])
    registry_file.write_bytes(data)
    accord = tmp_path / "gb-rs.yaml"
    accord.write_bytes((POLICIES / "gb-rs.yaml").read_bytes())
    passphrase = tmp_path / "pass"
    passphrase.write_text("a long enough passphrase\n", encoding="utf-8")
    verify = ["policy", "verify", str(accord), "--registry", str(registry_file), "--at", AT_TEXT]
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
                "--registry",
                str(registry_file),
                "--at",
                AT_TEXT,
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


def _co_signed_copies(
    tmp_path: pathlib.Path, *names: str, now: dt.datetime
) -> tuple[pathlib.Path, list[str]]:
    """The shipped accords ``names`` copied and co-signed by both parties, and the file of a
    registry valid at ``now``."""
    _, data, private = make_registry(now=now, partners=["GB", "AL", "XK"])
    registry_file = tmp_path / "registry.json"
    registry_file.write_bytes(data)
    paths = []
    for name in names:
        path = tmp_path / name
        path.write_bytes((POLICIES / name).read_bytes())
        accord = load_accord(path)
        signatures = None
        for party in sorted(accord.party_codes):
            signatures = cosign.sign_accord(
                accord, signatures, key=private[party].policy, partner=party
            )
        assert signatures is not None
        cosign.write_signature_file(cosign.signature_path(path), signatures)
        paths.append(str(path))
    return registry_file, paths


def test_verify_warns_a_month_ahead_and_names_the_renewal_on_file(
    runner: CliRunner, tmp_path: pathlib.Path
) -> None:
    """Three weeks before gb-al v2 expires: alone it warns; with v3 beside it, it says v3
    takes over and when the accord lapses. Neither fails."""
    at = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    registry, (v2, v3) = _co_signed_copies(tmp_path, "gb-al.yaml", "gb-al.v3.yaml", now=at)
    when = ["--registry", str(registry), "--at", at.isoformat()]
    alone = runner.invoke(cli, ["policy", "verify", v2, *when])
    assert alone.exception is None, alone.output
    assert "warning: gb-al v2: in force until 2026-12-14; lapses in 20 days: renew it" in (
        alone.output
    )
    both = runner.invoke(cli, ["policy", "verify", v2, v3, *when])
    assert both.exception is None, both.output
    renewal = (
        "gb-al v2: in force until 2026-12-14; v3 on file takes over, the accord lapses on "
        "2029-12-14"
    )
    assert renewal in both.output
    assert "warning" not in both.output


def test_verify_fails_on_a_lapsed_accord_naming_it(
    runner: CliRunner, tmp_path: pathlib.Path
) -> None:
    """After gb-xk v2's end (2028-01-01) with no later version: exit 10, named."""
    at = dt.datetime(2028, 2, 1, tzinfo=dt.UTC)
    names = ("gb-xk.yaml", "gb-xk.v2.yaml", "gb-al.v3.yaml")
    registry, paths = _co_signed_copies(tmp_path, *names, now=at)
    when = ["--registry", str(registry), "--at", at.isoformat()]
    result = runner.invoke(cli, ["policy", "verify", *paths, *when])
    assert isinstance(result.exception, PolicyError)
    assert "error: gb-xk v2 expired on 2028-01-01: its flows are refused" in result.output
    assert str(result.exception) == "not in force: gb-xk (expired on 2028-01-01; renew it)"


def test_suspend_is_shown_by_verify_and_explain_and_resume_needs_both(
    runner: CliRunner, tmp_path: pathlib.Path
) -> None:
    """RS suspends gb-rs: verify exits 10 naming the suspension, explain says every flow is
    refused; GB's resumption alone leaves it suspended; RS's co-signature lifts it."""
    at = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
    _, data, private = make_registry(now=at, partners=["GB", "RS"])
    registry = tmp_path / "registry.json"
    registry.write_bytes(data)
    accord_file = tmp_path / "gb-rs.yaml"
    accord_file.write_bytes((POLICIES / "gb-rs.yaml").read_bytes())
    accord = load_accord(accord_file)
    signatures = None
    for party in (PartnerCode("GB"), PartnerCode("RS")):
        signatures = cosign.sign_accord(
            accord, signatures, key=private[party].policy, partner=party
        )
    assert signatures is not None
    cosign.write_signature_file(cosign.signature_path(accord_file), signatures)
    passphrase = tmp_path / "pass"
    passphrase.write_text("a long enough passphrase\n", encoding="utf-8")
    for code in ("GB", "RS"):
        save_private_key(
            tmp_path / f"{code}.pem",
            private[PartnerCode(code)].policy,
            passphrase=b"a long enough passphrase",
        )

    def act(kind: str, party: str) -> str:
        result = runner.invoke(
            cli,
            ["policy", kind, str(accord_file), "--partner", party, "--key",
             str(tmp_path / f"{party}.pem"), "--passphrase-file", str(passphrase),
             "--registry", str(registry), "--reason", "a review"],
        )  # fmt: skip
        assert result.exception is None, result.output
        return result.output

    verify = ["policy", "verify", str(accord_file), "--registry", str(registry)]
    act("suspend", "RS")
    suspended = runner.invoke(cli, verify)
    assert isinstance(suspended.exception, PolicyError)
    assert "accord_suspended: RS suspended accord gb-rs at " in suspended.output
    labels = tmp_path / "labels.json"
    labels.write_text(
        json.dumps(
            {"message_type": "network.report", "schema_version": 1, "classification": "OFFICIAL",
             "tlp": "GREEN", "handling": "H0", "purposes": ["people-smuggling"],
             "data_categories": ["operational"]}
        ),
        encoding="utf-8",
    )  # fmt: skip
    explained = runner.invoke(
        cli,
        ["policy", "explain", "--accord", str(accord_file), "--message", str(labels),
         "--from", "GB", "--to", "RS"],
    )  # fmt: skip
    assert "gb-rs.acts.json says: accord_suspended" in explained.output
    assert "awaiting RS" in act("resume", "GB")
    assert isinstance(runner.invoke(cli, verify).exception, PolicyError)
    act("resume", "RS")
    resumed = runner.invoke(cli, verify)
    assert resumed.exception is None, resumed.output


def test_policy_test_writes_junit_and_json_for_ci_systems(tmp_path: pathlib.Path) -> None:
    """A wrong expectation is a JUnit <failure> naming it, and the JSON says the same; the
    exit status is the policy error's either way."""
    cases = (POLICIES / "tests" / "gb-al.cases.yaml").read_text(encoding="utf-8")
    cases = cases.replace("accord: ../gb-al.yaml", f"accord: {POLICIES / 'gb-al.yaml'}")
    wrong = cases.replace("retention_days: 1095", "retention_days: 7", 1)
    assert wrong != cases
    (tmp_path / "gb-al.cases.yaml").write_text(wrong, encoding="utf-8")

    junit = CliRunner().invoke(cli, ["policy", "test", str(tmp_path), "--format", "junit"])
    assert isinstance(junit.exception, PolicyError), junit.output
    root = ElementTree.fromstring(junit.output.encode())  # noqa: S314 - our own output
    assert root.get("failures") == "1"
    (suite,) = root.findall("testsuite")
    assert suite.get("failures") == "1"
    (failed,) = [case for case in suite.findall("testcase") if case.find("failure") is not None]
    assert (
        failed.get("name")
        == "an Albanian small-boat sighting may be shared across UK law enforcement"
    )
    failure = failed.find("failure")
    assert failure is not None
    assert "retention" in (failure.text or "")

    as_json = CliRunner().invoke(cli, ["policy", "test", str(tmp_path), "--format", "json"])
    (report,) = json.loads(as_json.output)
    assert report["accord"] == "gb-al"
    assert [c["name"] for c in report["cases"] if not c["passed"]] == [failed.get("name")]
