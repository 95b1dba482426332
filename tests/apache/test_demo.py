"""`broker demo --engine apache`, run as a user runs it: its own local Apache Kafka cluster
with SASL_SSL and the ACL plan enforced, every daemon logging in as its own principal, the
tampered record written with GB's own credentials; the same fates as on the embedded broker,
and `demo: OK`. One node here, to keep CI within its time; `--nodes` defaults to three."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import ROOT
from tests.e2e.test_demo import EXPECTED

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One run of `python -m broker demo --engine apache --nodes 1 --state-dir DIR`."""
    state = tmp_path_factory.mktemp("apache-demo") / "state"
    result = subprocess.run(
        [
            sys.executable, "-m", "broker", "demo", "--engine", "apache", "--nodes", "1",
            "--state-dir", str(state),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        timeout=600,
    )  # fmt: skip
    return result, state


def test_the_apache_demo_exits_0_says_ok_and_ran_secured(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """Exit 0, `demo: OK`, on SASL_SSL with ACLs, and its cluster is stopped afterwards."""
    result, state = demo
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.stdout.rstrip().endswith("demo: OK")
    assert "SASL_SSL (SCRAM-SHA-512), mutual TLS between nodes, ACLs enforced" in result.stdout
    for config in (state / "federation" / "config").glob("*.yaml"):
        assert "SASL_SSL" in config.read_text(encoding="utf-8"), config
    assert not any(
        b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
        and str(state).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        for pid in os.listdir("/proc")
        if pid.isdigit() and Path(f"/proc/{pid}/cmdline").exists()
    ), "the demo stopped its cluster"


@pytest.mark.parametrize("expected", EXPECTED)
def test_each_step_meets_the_same_fate_as_on_the_embedded_broker(
    demo: tuple[subprocess.CompletedProcess[str], Path], expected: str
) -> None:
    """The summary names each step's fate, as on the embedded broker."""
    result, _ = demo
    assert expected in result.stdout
