"""Every benchmark in one command: one table of our figures against same-run baselines, and plots.

    python -m benchmarks [--full] [--only envelope,policy,audit,exchange,...] [--out DIR]
    python benchmarks/run_all.py ...

The quick profile (default) is for CI: each benchmark on small sizes, a few minutes in all.
``--full`` gives the figures docs/PERFORMANCE.md quotes. Each benchmark runs in its own process
(``benchmarks/<name>_bench.py``) so that one's caches and memory do not colour another's, and
every ratio it reports is against a baseline measured in that same process: the crypto-only
ceiling and JOSE (envelope), one Ed25519 verification (policy), bare SHA-256 (audit), plain
aiokafka on the same broker (exchange on the embedded broker; exchange-apache on a local
Apache Kafka cluster with SASL_SSL, which needs java and mvn).

A benchmark that takes ``--json FILE`` writes its results there, in this form::

    {"benchmark": "audit", "unit": "records/s",
     "rows": [{"metric", "ours", "baseline", "baseline_name", "ratio",
               "goal", "goal_ratio", "met"}, ...],
     "series": {"<name>": {"t": [seconds...], "values": [...], "unit": "..."}}}

(``series`` is optional: a time series such as throughput or latency over a run). For one that
does not (yet), the rows of its printed table are read. Written to ``--out``
(artifacts/benchmarks/ by default): results.json, ratios.png (a bar chart of every ratio
against its goal) and one PNG per time series. Plots need matplotlib (the ``bench`` extra);
without it the table and results.json are still written.

Exit status 1 if a benchmark failed to run; a missed goal is reported, not an error (the
machines are shared and noisy: a ratio is a measurement, not a test).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "artifacts" / "benchmarks"


@dataclasses.dataclass(frozen=True)
class Bench:
    """One benchmark script and its arguments for each profile."""

    name: str
    quick: tuple[str, ...]
    full: tuple[str, ...]
    #: the script's name stem, when it is not the benchmark's name
    stem: str | None = None

    @property
    def script(self) -> pathlib.Path:
        return HERE / f"{self.stem or self.name}_bench.py"


BENCHES = (
    Bench("envelope", ("--quick",), ()),
    Bench("policy", ("--quick",), ()),
    Bench("audit", ("--quick",), ()),
    # Paced runs are added below when the script offers --rate.
    Bench("exchange", ("--messages", "60"), ("--messages", "300")),
    # the same on Apache Kafka, SASL_SSL with ACLs, plain aiokafka on that same cluster
    Bench(
        "exchange-apache",
        ("--messages", "60", "--engine", "apache"),
        ("--messages", "300", "--engine", "apache"),
        stem="exchange",
    ),
)

# The exchange benchmark's printed rows: label, exchange, plain kafka, ratio.
_TABLE_ROW = re.compile(
    r"^(?P<label>views/s|p50 latency s|p99 latency s)\s+"
    r"(?P<ours>[\d.]+)\s+(?P<plain>[\d.]+)\s+(?P<ratio>[\d.]+)\s*$",
    re.MULTILINE,
)
EXCHANGE_RATE_GOAL = 1000.0  # messages/s end to end, 3 recipients
EXCHANGE_P99_GOAL = 0.250  # seconds, at 200 messages/s


@dataclasses.dataclass
class Outcome:
    """What one run of one benchmark gave."""

    bench: str
    label: str
    seconds: float
    ok: bool
    result: dict[str, Any]
    output: str


def _options(script: pathlib.Path) -> str:
    """The script's --help text: which of our conventions (--json, --rate) it supports."""
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=False
    )
    return done.stdout


def run(bench: Bench, argv: Sequence[str], label: str, scratch: pathlib.Path) -> Outcome:
    """Run one benchmark process; its results from --json if it offers it, else its table."""
    target = scratch / f"{label}.json"
    command = [sys.executable, str(bench.script), *argv]
    takes_json = "--json" in _options(bench.script)
    if takes_json:
        command += ["--json", str(target)]
    print(f"== {label}: {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=HERE.parent)
    seconds = time.perf_counter() - start
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        return Outcome(bench.name, label, seconds, False, {}, done.stdout)
    if takes_json and target.exists():
        result = json.loads(target.read_text())
    else:
        result = _from_table(bench.name, done.stdout, paced="--rate" in argv)
    return Outcome(bench.name, label, seconds, True, result, done.stdout)


def _from_table(name: str, output: str, *, paced: bool) -> dict[str, Any]:
    """Rows from the exchange benchmark's printed table (exchange vs plain kafka)."""
    rows: list[dict[str, Any]] = []
    for match in _TABLE_ROW.finditer(output):
        label, ours, plain = match["label"], float(match["ours"]), float(match["plain"])
        row: dict[str, Any] = {
            "metric": label,
            "ours": ours,
            "baseline": plain,
            "baseline_name": "plain aiokafka",
            "ratio": ours / plain if plain else None,
            "goal": "",
            "goal_ratio": None,
            "met": None,
        }
        if label == "views/s" and not paced:
            row.update(goal=f">= {EXCHANGE_RATE_GOAL:,.0f}/s", met=ours >= EXCHANGE_RATE_GOAL)
        if label == "p99 latency s" and paced:
            row.update(goal=f"< {EXCHANGE_P99_GOAL} s", met=ours < EXCHANGE_P99_GOAL)
        rows.append(row)
    return {"benchmark": name, "unit": "", "rows": rows}


def plan(benches: Sequence[Bench], *, full: bool) -> list[tuple[Bench, tuple[str, ...], str]]:
    """Every (benchmark, arguments, label) to run, in order; missing scripts are skipped."""
    runs: list[tuple[Bench, tuple[str, ...], str]] = []
    for bench in benches:
        if not bench.script.exists():
            print(f"== {bench.name}: {bench.script.name} not present, skipped")
            continue
        argv = bench.full if full else bench.quick
        runs.append((bench, argv, bench.name))
        if bench.name == "exchange" and "--rate" in _options(bench.script):
            # Latency is judged at a steady 200 messages/s, not in a burst.
            count = "1000" if full else "200"
            runs.append((bench, ("--messages", count, "--rate", "200"), "exchange-200"))
    return runs


def table(outcomes: Sequence[Outcome]) -> str:
    """One table: every row of every benchmark, its baseline, the ratio and the goal."""
    lines = [
        f"{'benchmark':<16}{'metric':<48}{'ours':>12}{'baseline':>12}  {'baseline is':<16}"
        f"{'ratio':>8}  {'goal':<28}{'met':>5}"
    ]
    for outcome in outcomes:
        if not outcome.ok:
            lines.append(f"{outcome.label:<16}FAILED to run ({outcome.seconds:.0f} s)")
            continue
        for row in outcome.result.get("rows", []):
            ratio = "" if row.get("ratio") is None else f"{row['ratio']:.3g}"
            met = {True: "yes", False: "NO", None: ""}[row.get("met")]
            lines.append(
                f"{outcome.label:<16}{row['metric']:<48}{_num(row['ours']):>12}"
                f"{_num(row['baseline']):>12}  {row['baseline_name']:<16}{ratio:>8}  "
                f"{row.get('goal', ''):<28}{met:>5}"
            )
    return "\n".join(lines)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def plot(outcomes: Sequence[Outcome], out: pathlib.Path) -> list[pathlib.Path]:
    """ratios.png, and one PNG per recorded time series; [] without matplotlib."""
    try:
        import matplotlib  # optional: the bench extra

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plots written")
        return []
    written: list[pathlib.Path] = []
    bars = [
        (f"{o.label}: {r['metric']} vs {r['baseline_name']}", r["ratio"], r.get("goal_ratio"))
        for o in outcomes
        if o.ok
        for r in o.result.get("rows", [])
        if r.get("ratio") is not None
    ]
    if bars:
        figure, axes = plt.subplots(figsize=(10, 0.35 * len(bars) + 1.5))
        names = [b[0] for b in bars]
        axes.barh(names, [b[1] for b in bars], color="tab:blue")
        for index, (_, _, goal) in enumerate(bars):
            if goal is not None:
                axes.plot([goal, goal], [index - 0.4, index + 0.4], color="tab:red", lw=2)
        axes.set_xscale("log")
        axes.invert_yaxis()
        axes.set_xlabel(
            "ours / same-run baseline (log scale; red: the goal; for latency lower is better)"
        )
        axes.set_title("Benchmarks against their same-run baselines")
        figure.tight_layout()
        path = out / "ratios.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    for outcome in outcomes:
        for name, series in (outcome.result.get("series") or {}).items():
            figure, axes = plt.subplots(figsize=(9, 4))
            axes.plot(series["t"], series["values"], lw=1)
            axes.set_xlabel("seconds since start")
            axes.set_ylabel(series.get("unit", ""))
            axes.set_title(f"{outcome.label}: {name}")
            axes.grid(alpha=0.3)
            figure.tight_layout()
            path = out / f"{outcome.label}-{re.sub(r'[^a-z0-9]+', '-', name.lower())}.png"
            figure.savefig(path, dpi=110)
            plt.close(figure)
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full sizes (minutes longer)")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else {b.name for b in BENCHES}
    unknown = wanted - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    benches = [b for b in BENCHES if b.name in wanted]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        outcomes = [
            run(bench, argv, label, pathlib.Path(scratch))
            for bench, argv, label in plan(benches, full=args.full)
        ]
    print()
    print(f"profile: {'full' if args.full else 'quick'}; every ratio is against a baseline "
          "measured in the same process run")  # fmt: skip
    print(table(outcomes))
    summary = {
        "profile": "full" if args.full else "quick",
        "results": [
            {"label": o.label, "ok": o.ok, "seconds": round(o.seconds, 1), **o.result}
            for o in outcomes
        ],
    }
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    written = [args.out / "results.json", *plot(outcomes, args.out)]
    print("wrote " + ", ".join(str(p) for p in written))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
