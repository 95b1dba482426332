"""``python -m benchmarks.soak --profile ci|long|steady|bounce [--rate R] [--seconds S]
[--seed N] [--workdir DIR] [--json FILE]``

Runs the profile, prints throughput, latency percentiles, memory over time, the history
checker's verdict and the audit check (the audit log verified and every decision replayed),
and exits 0 only if both passed. Figures are printed, never asserted: they depend on what
else the machine is doing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.soak.runner import PROFILES, run_soak


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the soak, print the report; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    parser.add_argument("--rate", type=float, help="views/s offered (default: the profile's)")
    parser.add_argument("--seconds", type=float, help="how long to offer them (the profile's)")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--workdir", type=Path, help="empty directory to keep (default: temp)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    if args.rate is not None:
        profile = dataclasses.replace(profile, rate=args.rate)
    if args.seconds is not None:
        profile = dataclasses.replace(profile, duration_s=args.seconds)
    if args.workdir is not None:
        result = run_soak(profile, args.workdir, seed=args.seed)
    else:
        with tempfile.TemporaryDirectory(prefix="soak-") as temporary:
            result = run_soak(profile, Path(temporary), seed=args.seed)
    figures = result.figures()
    latency = figures["latency_s"]
    print(f"profile {profile.name}: {profile.rate:g} views/s for {profile.duration_s:g} s")
    print(
        f"submitted {figures['submitted']} ({figures['submit_rate']}/s); stored "
        f"{figures['views_stored']} views ({figures['throughput_views_per_s']}/s over the run)"
    )
    print(
        f"latency invoke->stored: p50 {latency['p50']} s, p99 {latency['p99']} s, "
        f"p999 {latency['p999']} s"
    )
    print("faults: " + "; ".join(figures["faults"]))
    for fault in figures["backlog_drained_s_after_fault"]:
        print(
            f"  {fault['fault']}: {fault['views_invoked_during']} views invoked during it, the "
            f"last stored {fault['drained_s']} s after it ended"
        )
    print(f"injected copies: {figures['injected_copies']}")
    cpu = figures["cpu_percent_of_a_core_during_load"]
    print("CPU during the load, % of one core: " + ", ".join(f"{k} {v}" for k, v in cpu.items()))
    per_view = figures["cpu_per_view_us"]
    print(
        f"sustained {figures['stored_views_per_s']} views/s stored; CPU per view, us: "
        + ", ".join(f"{k} {v}" for k, v in per_view.items())
    )
    print(
        f"one Ed25519 verification {figures['ed25519_verify_us']} us: the exchange costs "
        f"{figures['cpu_per_view_ed25519']} of them per view"
    )
    print("RSS MB over time:")
    for sample in figures["rss_mb"]:
        t = sample.pop("t_s")
        print(f"  {t:7.1f} s  " + "  ".join(f"{k} {v:.0f}" for k, v in sorted(sample.items())))
    growth = figures["rss_growth_after_warmup_pct"]
    print("RSS growth after warm-up, %: " + ", ".join(f"{k} {v:+.1f}" for k, v in growth.items()))
    print(result.verdict.summary())
    print(result.audit.summary())
    for problem in result.audit.problems:
        print(f"  {problem}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
