"""`broker demo`, the README's first command, run as a user runs it: a subprocess that starts
its own embedded broker, plays the scenario through real daemons and checks the audit log."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from broker.policy import load_accord

from .harness import ROOT

NOW = dt.datetime.now(dt.UTC)


def in_force(a: str, b: str) -> bool:
    """Whether some shipped version of the accord between ``a`` and ``b`` is in force now
    (read from policies/ here, apart from the demo's own reckoning)."""
    for path in (ROOT / "policies").glob("*.yaml"):
        accord = load_accord(path)
        if {a, b} <= set(accord.parties) and accord.effective_from() <= NOW < accord.expires_at():
            return True
    return False


def sent(a: str, b: str, outcome: str, *, stopped_by: str = "refused") -> str:
    """``a -> b <outcome>`` while their accord is in force, else the accord's refusal."""
    return outcome if in_force(a, b) else f"{stopped_by}: accord_expired"


# what the final summary must say about each step, given the accords in force today
EXPECTED = [
    pytest.param(
        "GB -> RS network.report: " + sent("GB", "RS", "receipt back (lost biometric)"),
        id="report-to-RS",
    ),
    pytest.param(
        "GB -> MK network.report: "
        + sent("GB", "MK", "receipt back (lost biometric, location, vehicle)"),
        id="report-to-MK",
    ),
    pytest.param(
        "GB -> XK network.report: "
        + sent(
            "GB",
            "XK",
            "receipt back (lost biometric, communications, identity, location, "
            "travel-document, vehicle)",
        ),
        id="report-to-XK",
    ),
    pytest.param(
        "RS -> GB route.assessment: " + sent("RS", "GB", "receipt back"), id="route-assessment"
    ),
    pytest.param(
        "MK -> GB vessel.sighting: " + sent("MK", "GB", "receipt back"), id="vessel-sighting"
    ),
    pytest.param("RS -> MK route.assessment: refused: no_accord", id="no-accord"),
    pytest.param("GB -> RS network.report: quarantined: bad_signature", id="tampered"),
    pytest.param(
        "GB -> XK network.report: "
        + sent("GB", "XK", "quarantined: policy_denied", stopped_by="quarantined"),
        id="forbidden",
    ),
    pytest.param("gb-rs v2 pq-hybrid", id="suite-hybrid"),
    pytest.param("gb-mk v1 classic", id="suite-classic"),
    pytest.param("onward sharing: GB asked RS", id="onward"),
    pytest.param("disclosure: GB proved body.route_name of ", id="disclosure"),
    pytest.param("RS's pq-hybrid signature and the gateway's attestation verify", id="proof"),
    pytest.param("withdrawal: GB withdrew its report", id="withdrawal"),
    pytest.param("GB's own record (broker sent list): ", id="sender-view"),
    pytest.param(" receipted (accepted)", id="sender-receipts"),
    pytest.param(
        "daemons stopped (SIGTERM): gateway exit 0, witness exit 0, "
        "GB exit 0, RS exit 0, MK exit 0, XK exit 0",
        id="clean-stop",
    ),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One run of `python -m broker demo --state-dir DIR` (stdout is a pipe: plain lines)."""
    state = tmp_path_factory.mktemp("demo") / "state"
    result = subprocess.run(
        [sys.executable, "-m", "broker", "demo", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )
    return result, state


def summary(result: subprocess.CompletedProcess[str]) -> str:
    """The block after the `summary` heading (a demo that printed none fails the test with
    what it printed instead)."""
    before, heading, block = result.stdout.partition("\nsummary\n")
    if not heading:
        pytest.fail(f"the demo printed no summary:\n{before[-3000:]}\n{result.stderr[-3000:]}")
    return block


def test_the_demo_exits_0_and_says_ok(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Every view met its expected fate and the audit log verified: exit 0, `demo: OK` last."""
    result, _ = demo
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().splitlines()[-1] == "demo: OK"


@pytest.mark.parametrize("line", EXPECTED)
def test_the_summary_names_each_steps_fate(
    demo: tuple[subprocess.CompletedProcess[str], Path], line: str
) -> None:
    """Each step's fate, with what each redacted view lost, is in the final summary."""
    assert line in summary(demo[0])


def test_the_audit_log_verifies_with_no_unsigned_tail(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """The gateway's last checkpoint (written on SIGTERM) covers every audit record, and the
    demo's witness daemon cosigned it."""
    lines = summary(demo[0]).splitlines()
    [audit] = [ln for ln in lines if ln.strip().startswith("audit:")]
    assert audit.endswith(" 0 unsigned: verified")
    [witness] = [ln for ln in lines if ln.strip().startswith("witness:")]
    assert witness.strip() == "witness: the newest checkpoint is cosigned by witness-1"


def test_the_html_report_holds_the_sharing_matrix(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """The report is written into the state directory, its path printed, with the matrix."""
    result, state = demo
    report = state / "report.html"
    assert f"report: {report}" in summary(result)
    assert f"bundle: {state / 'audit.bundle'}" in summary(result)
    html = report.read_text(encoding="utf-8")
    assert 'id="sharing-matrix"' in html
    # one disclosure GB -> XK carried operational data (XK's view kept nothing else), while
    # their accord is in force; none once it has lapsed
    shared = 1 if in_force("GB", "XK") else 0
    assert f"data-sender='GB' data-recipient='XK' data-category='operational'>{shared}<" in html
    assert "data-sender='GB' data-recipient='XK' data-category='identity'>0<" in html


def test_nothing_is_left_running(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Without --keep the embedded broker's state record is gone and no pid file is left."""
    _, state = demo
    assert not (state / "pids.json").exists()
    assert not list((state / "kafka").glob("*.pid"))


def test_every_decision_replays(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Replay re-evaluates the policy decisions against the accord versions they name."""
    [replay] = [ln for ln in summary(demo[0]).splitlines() if ln.strip().startswith("replay:")]
    assert replay.strip().endswith("decisions re-evaluated, no disagreements")
    assert not replay.strip().startswith("replay: 0 ")
