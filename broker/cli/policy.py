"""`broker policy lint|test|diff|explain|simulate|sign|verify|schema`: tools for accords."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from typing import Any
from xml.etree import ElementTree

import click
import pydantic

from broker import cosign, errors, keys, policy
from broker.cli import policy_acts
from broker.cli._reader import policy_signer_option, signing_policy_as
from broker.cli.keys import key_passphrase
from broker.clock import SystemClock
from broker.ids import PartnerCode, partner_code
from broker.runtime import EXPIRY_WARNING
from broker.schema import Labels, parse_message
from broker.trust import AccordFiles, AccordStatus
from broker.trust.acts import declared_halt, parse_acts_file
from broker.trust.files import acts_path

__all__ = ["group"]

_FILE = click.Path(exists=True, dir_okay=False, path_type=pathlib.Path)
_MAX_MESSAGE = 1_048_576


@click.group(name="policy")
def group() -> None:
    """Write, check and explain accords (policies/*.yaml)."""


@group.command()
@click.argument("files", nargs=-1, required=True, type=_FILE)
def lint(files: tuple[pathlib.Path, ...]) -> None:
    """Check accord FILES; print every problem with file:line:column and how to fix it."""
    failed = 0
    for path in files:
        problems = policy.lint_accord_file(path)
        if problems:
            failed += 1
            for problem in problems:
                click.echo(str(problem))
        else:
            click.echo(f"{path}: ok")
    if failed:
        raise errors.PolicyError(f"{failed} of {len(files)} accord files have problems")


@group.command(name="test")
@click.argument(
    "directory",
    required=False,
    default=pathlib.Path("policies/tests"),
    type=click.Path(exists=True, file_okay=False, path_type=pathlib.Path),
)
@click.option("--require-coverage", is_flag=True, help="Fail when a rule id has no case.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "junit"]),
    default="text",
    show_default=True,
    help="json: one object per case file; junit: JUnit XML, for CI systems.",
)
def test_cases(directory: pathlib.Path, require_coverage: bool, output_format: str) -> None:
    """Run the accord fixture cases in DIRECTORY (default policies/tests) and report coverage."""
    reports = [(path, policy.run_case_file(path)) for path in policy.discover(directory)]
    failures = sum(len(r.failures) for _, report in reports for r in report.results)
    total = sum(len(report.results) for _, report in reports)
    gaps = sum(len(report.unexercised) for _, report in reports)
    if output_format == "json":
        click.echo(json.dumps([_case_file_json(path, report) for path, report in reports]))
    elif output_format == "junit":
        click.echo(_junit(reports, total=total, failures=failures))
    else:
        for path, report in reports:
            click.echo(f"{path} ({report.accord.accord} v{report.accord.version})")
            for result in report.results:
                click.echo(f"  {'PASS' if result.passed else 'FAIL'} {result.name}")
                for failure in result.failures:
                    click.echo(f"       {failure}")
            if report.unexercised:
                click.echo(f"  rules no case exercised: {', '.join(report.unexercised)}")
        click.echo(f"{total} cases, {failures} failures, {gaps} rules without a case")
    if failures:
        raise errors.PolicyError(f"{failures} accord test expectations failed")
    if require_coverage and gaps:
        raise errors.PolicyError(f"{gaps} rules have no test case")


def _case_file_json(path: pathlib.Path, report: policy.FileReport) -> dict[str, object]:
    return {
        "file": str(path),
        "accord": report.accord.accord,
        "version": report.accord.version,
        "cases": [
            {"name": r.name, "passed": r.passed, "failures": list(r.failures)}
            for r in report.results
        ],
        "rules_without_a_case": list(report.unexercised),
    }


def _junit(
    reports: list[tuple[pathlib.Path, policy.FileReport]], *, total: int, failures: int
) -> str:
    """JUnit XML: one testsuite per case file, one testcase per case (a failing one carries
    its failed expectations), a rule without a case as a skipped testcase."""
    suites = ElementTree.Element(
        "testsuites",
        name="broker policy test",
        tests=str(total + sum(len(r.unexercised) for _, r in reports)),
        failures=str(failures),
        skipped=str(sum(len(r.unexercised) for _, r in reports)),
    )
    for path, report in reports:
        failed = sum(1 for r in report.results if not r.passed)
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=f"{report.accord.accord} v{report.accord.version}",
            file=str(path),
            tests=str(len(report.results) + len(report.unexercised)),
            failures=str(failed),
            skipped=str(len(report.unexercised)),
        )
        for result in report.results:
            case = ElementTree.SubElement(
                suite, "testcase", classname=report.accord.accord, name=result.name
            )
            if not result.passed:
                failure = ElementTree.SubElement(
                    case, "failure", message=result.failures[0], type="expectation"
                )
                failure.text = "\n".join(result.failures)
        for rule in report.unexercised:
            case = ElementTree.SubElement(
                suite, "testcase", classname=report.accord.accord, name=f"rule {rule}"
            )
            ElementTree.SubElement(case, "skipped", message="no case exercises this rule")
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True)


@group.command()
@click.argument("old", type=_FILE)
@click.argument("new", type=_FILE)
def diff(old: pathlib.Path, new: pathlib.Path) -> None:
    """Say what NEW changes against OLD: flows that open, close, widen or narrow."""
    changes = policy.diff_accords(policy.load_accord(old), policy.load_accord(new))
    if not changes:
        click.echo("no changes to what flows or on what terms")
    for change in changes:
        click.echo(str(change))


@group.command()
@click.option("--accord", "accord_path", required=True, type=_FILE, help="The accord YAML.")
@click.option(
    "--message",
    "message_path",
    required=True,
    type=_FILE,
    help="A message JSON (full content) or a labels JSON (the gateway's view).",
)
@click.option("--from", "sender", required=True, help="The sending partner, e.g. GB.")
@click.option("--to", "recipient", required=True, help="The receiving partner, e.g. RS.")
@click.option("--at", "at_text", help="Decide as of this time (ISO 8601 with zone); default now.")
@click.option(
    "--content",
    is_flag=True,
    help="Treat a labels file as the full content (sender side, before redaction).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision record as JSON.")
def explain(
    accord_path: pathlib.Path,
    message_path: pathlib.Path,
    sender: str,
    recipient: str,
    at_text: str | None,
    content: bool,
    as_json: bool,
) -> None:
    """Explain the decision on a message from one partner to another, in plain words."""
    accord = policy.load_accord(accord_path)
    now = _time(at_text) if at_text else SystemClock().now()
    try:
        from_code, to_code = partner_code(sender), partner_code(recipient)
    except ValueError as exc:
        raise errors.UsageError(str(exc)) from exc
    document = _json_file(message_path)
    if "body" in document:
        message = parse_message(message_path.read_bytes())
        view = policy.decide_for_recipient(
            accord, message, from_code, to_code, now=now, counters={}
        )
        decision = view.decision
    else:
        try:
            labels = Labels.model_validate_json(json.dumps(document))
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise errors.SchemaError(f"{message_path}: {where}: {first['msg']}") from exc
        request = policy.Request(labels=labels, sender=from_code, recipient=to_code)
        decide = policy.evaluate_content if content else policy.evaluate
        decision = decide(accord, request, now=now, counters={})
    if as_json:
        click.echo(json.dumps(decision.to_json(), indent=2, sort_keys=True))
        return
    click.echo(
        f"decision: {decision.outcome.upper()} under {decision.accord} "
        f"v{decision.accord_version} at {now.isoformat()}"
    )
    acts = acts_path(accord_path, accord.accord_id)
    if acts.exists():
        halt = declared_halt(parse_acts_file(acts.read_bytes(), source=str(acts)))
        if halt is not None:
            click.echo(
                f"but {acts.name} says: {halt.code}: {halt.reason}; every flow is refused "
                "(signatures checked by the daemons and `broker policy verify`)"
            )
    click.echo(f"rules: {', '.join(decision.rule_ids)}")
    for reason in decision.reasons:
        click.echo(f"  - {reason}")
    if decision.redact:
        click.echo(f"redact before sending: {', '.join(sorted(decision.redact))}")


@group.command()
@click.option("--accord", "accord_path", required=True, type=_FILE, help="The new accord YAML.")
@click.option("--traffic", required=True, type=_FILE, help="Recorded decisions (JSON Lines).")
def simulate(accord_path: pathlib.Path, traffic: pathlib.Path) -> None:
    """Replay recorded traffic against a new accord; list what it decides differently."""
    accord = policy.load_accord(accord_path)
    report = policy.simulate(accord, traffic)
    for difference in report.differences:
        record = difference.record
        click.echo(
            f"line {difference.line}: {record.sender} -> {record.recipient} "
            f"{record.labels.message_type} at {record.at.isoformat()}: was "
            f"{record.decision}, now {difference.now.outcome}"
        )
        for reason in difference.now.reasons:
            click.echo(f"    - {reason}")
    click.echo(
        f"{report.total} recorded decisions, {len(report.differences)} would change "
        f"under {accord.accord} v{accord.version}"
    )


@group.command()
@click.argument("accord_path", metavar="ACCORD", type=_FILE)
@click.option("--key", "key_path", required=True, type=_FILE, help="The policy-signing key.")
@click.option("--partner", required=True, help="The party signing, e.g. GB.")
@click.option(
    "--registry",
    "registry_path",
    required=True,
    type=_FILE,
    help="The signed partner registry: the key must be one of PARTNER's policy keys in it.",
)
@click.option("--at", "at_text", help="Check the key as of this time (ISO 8601 with zone).")
@click.option("--passphrase-file", type=_FILE, help="File holding the key passphrase.")
@click.option(
    "--passphrase-env",
    default=keys.DEFAULT_PASSPHRASE_ENV,
    show_default=True,
    help="Environment variable holding the passphrase (without --passphrase-file).",
)
@policy_signer_option
def sign(
    accord_path: pathlib.Path,
    key_path: pathlib.Path,
    partner: str,
    registry_path: pathlib.Path,
    at_text: str | None,
    passphrase_file: pathlib.Path | None,
    passphrase_env: str,
    adapter_config: str | None,
    officer_id: str | None,
) -> None:
    """Add PARTNER's co-signature to ACCORD.sigs.json (over the parsed accord, not the text).

    The key must be one of PARTNER's policy keys valid now in the registry: a signature by any
    other key would never count, and signing as a party with another's key is refused (exit 8).
    With --adapter-config, on an adapter with officers, an officer with the sign-policy role
    signs (exit 12 otherwise).
    """
    signer = signing_policy_as(adapter_config, officer_id)
    accord = policy.load_accord(accord_path)
    key = keys.load_signing_key(
        key_path, passphrase=key_passphrase(passphrase_file, passphrase_env)
    )
    code = _partner(partner)
    now = _time(at_text) if at_text else SystemClock().now()
    registry = keys.verify_registry(registry_path.read_bytes(), trusted=None, now=now)
    key_id = key.public_key().key_id
    if key_id not in {k.key_id for k in registry.policy_keys(code, at=now)}:
        raise errors.KeyTrustError(
            f"key {key_id} is not a policy key of {code} valid then in {registry_path}: "
            f"it cannot sign for {code}"
        )
    sigs = cosign.signature_path(accord_path)
    existing = cosign.read_signature_file(sigs) if sigs.exists() else None
    updated = cosign.sign_accord(accord, existing, key=key, partner=code)
    cosign.write_signature_file(sigs, updated)
    signers = ", ".join(sorted({s.partner for s in updated.signatures}))
    by = "" if signer is None else f" ({code}'s signature by officer {signer})"
    click.echo(
        f"{sigs}: {accord.accord} v{accord.version} digest {updated.digest[:16]}... "
        f"signed by {signers}{by}"
    )


@group.command()
@click.argument("accord_paths", metavar="ACCORD...", nargs=-1, required=True, type=_FILE)
@click.option(
    "--registry",
    "registry_path",
    required=True,
    type=_FILE,
    help="The signed partner registry (checked out of band).",
)
@click.option("--at", "at_text", help="Verify as of this time (ISO 8601 with zone); default now.")
def verify(
    accord_paths: tuple[pathlib.Path, ...], registry_path: pathlib.Path, at_text: str | None
) -> None:
    """Check that every party co-signed each ACCORD with a current policy key, and say where
    each stands in time.

    Give every version on file (a renewal beside the version it follows) so that renewals are
    taken into account; the parties' signed acts beside them (<id>.acts.json) are checked too.
    Fails (exit 10) on a file that is not co-signed, and on an accord that has lapsed or that a
    party suspended or terminated, naming it; warns when one lapses within 30 days.
    """
    now = _time(at_text) if at_text else SystemClock().now()
    registry = keys.verify_registry(registry_path.read_bytes(), trusted=None, now=now)
    for path in accord_paths:
        accord = policy.load_accord(path)
        verified = cosign.verify_accord(
            accord,
            cosign.read_signature_file(cosign.signature_path(path)),
            registry=registry,
            now=now,
        )
        click.echo(
            f"{path}: {accord.accord} v{accord.version} co-signed by "
            f"{', '.join(sorted(verified.signers))} (digest {verified.digest})"
        )
    # as the daemons hold them: versions by id, renewals, and the parties' signed acts
    files = AccordFiles()
    reading = files.read(accord_paths, registry=registry, now=now)
    if reading.refusals:
        raise errors.PolicyError(f"{reading.refusals[0].source}: {reading.refusals[0].reason}")
    stopped = []
    for status in files.statuses(now):
        line, ok = _standing(status, now)
        click.echo(line, err=not ok)
        if not ok:
            stopped.append(f"{status.accord} ({_stopped_because(status)})")
    if stopped:
        raise errors.PolicyError(f"not in force: {', '.join(stopped)}")


def _stopped_because(status: AccordStatus) -> str:
    if status.halt is not None:
        return str(status.halt.code)
    return f"expired {status.deciding.expires_when}; renew it"


def _standing(status: AccordStatus, now: dt.datetime) -> tuple[str, bool]:
    """One line on where an accord stands, and False when it has lapsed."""
    held = status.deciding
    name = f"{held.accord} v{held.version}"
    if status.halt is not None:
        return f"error: {name}: {status.halt.code}: {status.halt.reason}", False
    if status.state == "expired":
        return f"error: {name} expired {held.expires_when}: its flows are refused", False
    if status.state == "not_yet_effective":
        return f"{name}: not in force until {held.effective_text}", True
    line = f"{name}: in force until {held.expires_text}"
    if status.successor is not None:
        line += (
            f"; v{status.successor.version} on file takes over, the accord lapses "
            f"{status.last.expires_when}"
        )
    left = status.lapses_at - now
    if left <= EXPIRY_WARNING:
        line = f"warning: {line}; lapses in {left.days} days: renew it"
    return line, True


def _partner(text: str) -> PartnerCode:
    try:
        return partner_code(text)
    except ValueError as exc:
        raise errors.UsageError(str(exc)) from exc


@group.command()
def schema() -> None:
    """Print the accord JSON Schema (the published copy is schemas/accord.schema.json)."""
    click.echo(
        json.dumps(policy.accord_json_schema(), indent=2, sort_keys=True, ensure_ascii=False)
    )


def _time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise errors.UsageError(f"--at {text!r} is not an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise errors.UsageError(f"--at {text!r} needs a timezone, e.g. 2026-03-01T12:00:00Z")
    return value.astimezone(dt.UTC)


def _json_file(path: pathlib.Path) -> dict[str, Any]:
    data = path.read_bytes()
    if len(data) > _MAX_MESSAGE:
        raise errors.SchemaError(f"{path}: over {_MAX_MESSAGE} bytes")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise errors.SchemaError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise errors.SchemaError(f"{path}: expected a JSON object")
    return document


group.add_command(policy_acts.suspend)
group.add_command(policy_acts.resume)
group.add_command(policy_acts.terminate)
