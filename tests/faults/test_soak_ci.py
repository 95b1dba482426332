"""The CI soak profile (50 views/s for 90 s with a gateway kill, a receiving adapter kill, a
network partition and injected duplicates) passes the history check. Its figures are
printed, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.soak.runner import PROFILES, run_soak

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_ci_soak_profile_passes_the_history_check(tmp_path: Path) -> None:
    """Every acked view stored exactly once, nothing unauthorised, every refusal accounted."""
    result = run_soak(PROFILES["ci"], tmp_path)
    figures = result.figures()
    print("\n" + json.dumps({k: v for k, v in figures.items() if k != "rss_mb"}, indent=1))
    assert result.passed, result.figures()
    assert result.injected_copies > 0
    assert figures["views_stored"] > 0
    assert set(figures["rss_growth_after_warmup_pct"]) == {"GB", "MK", "RS", "XK", "gateway"}
    drained = figures["backlog_drained_s_after_fault"]
    assert len(drained) == len(result.profile.faults)
    # every view was stored (the verdict passed), so each fault's backlog has a drain time
    assert all(d["drained_s"] is not None for d in drained if d["views_invoked_during"])
