"""`broker demo` ages well: run under a clock set past the shipped accords' dates, it still ends
with `demo: OK`, shows the flows of a lapsed accord refused as accord_expired, and names the
accords that need renewal.

The clock is moved with Debian's ``faketime`` (libfaketime), which every process the demo
starts inherits; the embedded broker is a static binary and keeps the real time, which nothing
in the exchange compares against.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import ROOT

FAKETIME = shutil.which("faketime")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(FAKETIME is None, reason="needs faketime (Debian package faketime)"),
]


def demo_at(instant: str, state: Path) -> subprocess.CompletedProcess[str]:
    """`faketime INSTANT python -m broker demo --state-dir STATE`, stdout a pipe."""
    return subprocess.run(
        [str(FAKETIME), instant, sys.executable, "-m", "broker", "demo", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )


def summary(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().splitlines()[-1] == "demo: OK"
    return result.stdout.partition("\nsummary\n")[2]


def test_after_the_first_accord_lapses_the_renewal_carries_on(tmp_path: Path) -> None:
    """2026-12-20: gb-al v2 expired on the 14th; its renewal v3 is in force, the gateway starts
    and the core flows are delivered as ever."""
    text = summary(demo_at("2026-12-20 12:00:00", tmp_path / "state"))
    assert "GB -> RS network.report: receipt back (lost biometric)" in text
    assert "GB -> XK network.report: quarantined: policy_denied" in text
    assert "accords: every accord is in force" in text


def test_two_years_on_the_lapsed_accords_are_refused_by_name(tmp_path: Path) -> None:
    """2028-12-01: gb-rs, gb-mk and gb-xk have lapsed. Every view under them is refused as
    accord_expired (by the sender, or by the gateway for the record written around it), the
    summary names each accord to renew and what could not be shown, and the run is OK."""
    text = summary(demo_at("2028-12-01 12:00:00", tmp_path / "state"))
    for pair in ("GB -> RS", "GB -> MK", "GB -> XK"):
        assert f"{pair} network.report: refused: accord_expired" in text
    assert "RS -> GB route.assessment: refused: accord_expired" in text
    assert "GB -> XK network.report: quarantined: accord_expired" in text
    assert "GB -> RS network.report: quarantined: bad_signature" in text
    for accord in ("gb-mk v1 expired on 2027-09-15", "gb-rs v2 expired on 2028-06-01",
                   "gb-xk v2 expired on 2028-01-01"):  # fmt: skip
        assert f"accord {accord}: needs renewal" in text
    assert "not demonstrated, their accords are not in force: UK network report (GB -> RS)" in (
        text
    )
