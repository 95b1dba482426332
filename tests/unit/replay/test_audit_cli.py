"""``broker audit``'s connection options and ``report``'s exit status.

``export`` and ``--topic`` take the Kafka servers and TLS/SASL settings from a daemon
configuration (``--config``); ``report`` writes its report and then exits with the AuditError
code when the log does not verify.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import pty
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from broker import errors
from broker.cli import cli
from tests.unit.replay.audit_log import NOW, AuditLog, checkpointed_topic, decide, labels


@pytest.fixture(scope="module")
def log() -> AuditLog:
    """One registry and gateway key for the module."""
    return AuditLog.create()


def _config(tmp_path: pathlib.Path, security: dict[str, str]) -> pathlib.Path:
    """The gateway's configuration; only its ``kafka`` section is read by these commands."""
    path = tmp_path / "auditor.yaml"
    document = {
        "kafka": {"bootstrap": "kafka-1.example:9093", "security": security},
        "registry": {"path": "registry.json", "trusted_roots": "roots.json"},
        "keys": {"signing_key": "gateway.key", "passphrase": {"env": "UNUSED_PASSPHRASE"}},
        "store": {"path": "dedup.sqlite"},
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _commands(config: pathlib.Path, tmp_path: pathlib.Path) -> dict[str, list[str]]:
    """The commands that connect to Kafka (``witness --topic`` shares ``verify``'s path)."""
    registry = tmp_path / "registry.json"
    registry.write_bytes(b"{}")  # never read: the connection is settled first
    common = ["--config", str(config), "--registry", str(registry)]
    return {
        "export": ["audit", "export", *common, "-o", str(tmp_path / "out.bundle")],
        "verify --topic": ["audit", "verify", "--topic", "xb.audit", *common],
    }


COMMANDS = ["export", "verify --topic"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_config_with_tls_and_a_missing_ca_fails_naming_the_path(
    tmp_path: pathlib.Path, command: str
) -> None:
    """``--config`` applies the configuration's ``kafka.security``: with SSL, the CA bundle is
    loaded before any connection, and a missing one is a one-line UsageError naming it."""
    missing = tmp_path / "no-such-ca.pem"
    config = _config(tmp_path, {"protocol": "SSL", "ca_file": str(missing)})
    result = CliRunner().invoke(cli, _commands(config, tmp_path)[command])
    assert isinstance(result.exception, errors.UsageError), result.output
    line = result.exception.diagnostics()
    assert "cannot read the CA bundle" in line
    assert str(missing) in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["audit", "export", "--registry", "{registry}", "-o", "{out}"], "--bootstrap or --config"),
        (["audit", "verify", "--topic", "xb.audit", "--registry", "{registry}"], "--config"),
    ],
    ids=["export", "verify --topic"],
)
def test_without_bootstrap_or_config_there_is_nowhere_to_connect(
    tmp_path: pathlib.Path, args: list[str], needle: str
) -> None:
    registry = tmp_path / "registry.json"
    registry.write_bytes(b"{}")
    argv = [a.format(registry=registry, out=tmp_path / "out.bundle") for a in args]
    result = CliRunner().invoke(cli, argv)
    assert isinstance(result.exception, errors.UsageError), result.output
    assert needle in str(result.exception)


@pytest.mark.parametrize("tampered", [False, True], ids=["intact", "tampered"])
async def test_report_writes_the_report_then_fails_if_the_log_does_not_verify(
    log: AuditLog, tmp_path: pathlib.Path, tampered: bool
) -> None:
    """A log that does not verify still gets its report (text and HTML), then exit 11."""
    topic = await checkpointed_topic(
        [decide(log.accords[0], labels(), key=log.gateway_key, at=NOW) for _ in range(8)],
        key=log.gateway_key,
        registry=log.fixture.registry,
    )
    values = list(topic.contents())
    if tampered:  # a record a signed checkpoint covers, replaced by another validly signed one
        values[1] = decide(log.accords[0], labels(), key=log.gateway_key, at=NOW)
    bundle = tmp_path / "audit.bundle"
    bundle.write_bytes(log.bundle_bytes(values))
    html = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["audit", "report", str(bundle), "--html", str(html)])
    assert html.is_file()
    if tampered:
        # the CLI's runner turns the AuditError into its one line and exit code 11
        assert isinstance(result.exception, errors.AuditError), result.output
        assert result.exception.exit_code == 11
        assert "modified at index 1" in str(result.exception)
        assert "DOES NOT VERIFY" in result.output
        assert "DOES NOT VERIFY" in html.read_text(encoding="utf-8")
    else:
        assert result.exit_code == 0, result.output
        assert result.output.startswith("verified:")


def test_a_long_verification_shows_its_progress_on_a_terminal_only(
    log: AuditLog, tmp_path: pathlib.Path
) -> None:
    """6,000 records: on a terminal, stderr counts the records verified so far; stdout, and
    stderr when it is not a terminal, carry the result alone."""
    record = decide(log.accords[0], labels(), key=log.gateway_key, at=NOW)
    bundle = tmp_path / "audit.bundle"
    bundle.write_bytes(log.bundle_bytes([record] * 6000))
    command = [sys.executable, "-m", "broker", "audit", "verify", str(bundle), "--thorough"]

    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=terminal, check=False, timeout=300
        )
        os.close(terminal)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once everything written has been read
            while chunk := os.read(controller, 65536):
                shown += chunk
    finally:
        os.close(controller)
    assert b"verifying (thorough)" in shown
    assert re.search(rb"[1-6],000 records", shown), shown[-300:]
    assert b"verifying" not in done.stdout

    piped = subprocess.run(command, capture_output=True, check=False, timeout=300)
    assert piped.stdout == done.stdout
    assert b"verifying" not in piped.stderr
