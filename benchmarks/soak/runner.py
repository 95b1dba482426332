"""The soak: a fixed rate of reports for a fixed time through a whole federation (its own
embedded broker behind the TCP fault proxy), a seeded fault schedule, and at the end the
throughput, the end-to-end latency percentiles, each daemon's memory over time and the
history checker's verdict.

Every report goes from GB to one of RS, MK and XK in turn, so the rate is in views per
second (each view also produces a receipt back to GB); every 50th is TLP:AMBER to XK, which
GB's adapter must refuse. Latency is from the driver's ``invoke`` to the recipient's store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.soak.driver import SpoolDriver, copy_records, unlimited_accords, wait_until
from benchmarks.soak.driver import verdict_of as _verdict_of
from broker import errors
from broker.checker import FaultProxy, Mode, Verdict, percentile, read_inboxes
from broker.config import inbox_topic, outbox_topic
from broker.demo.federation import Federation, provision
from broker.transport.embedded import EmbeddedBroker

__all__ = ["PROFILES", "Fault", "Profile", "SoakResult", "run_soak"]

RECIPIENTS = ("RS", "MK", "XK")
DAEMONS = ("gateway", "GB", *RECIPIENTS)


@dataclasses.dataclass(frozen=True)
class Fault:
    """One scheduled fault: ``at_s`` seconds into the run."""

    at_s: float
    kind: str  # kill:<daemon> | blackhole:<seconds> | latency:<seconds> | duplicates
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Profile:
    """A soak's load and fault schedule."""

    name: str
    rate: float
    duration_s: float
    faults: tuple[Fault, ...]
    drain_s: float
    sample_s: float = 5.0


PROFILES = {
    "ci": Profile(
        "ci",
        rate=50,
        duration_s=90,
        faults=(
            Fault(20, "kill:gateway"),
            Fault(40, "kill:RS"),
            Fault(55, "blackhole:5"),
            Fault(70, "duplicates"),
        ),
        drain_s=150,
    ),
    "long": Profile(
        "long",
        rate=250,
        duration_s=600,
        faults=tuple(
            [Fault(45 + 90 * i, f"kill:{('gateway', 'RS', 'GB', 'MK')[i % 4]}") for i in range(6)]
            + [Fault(100 + 120 * i, "blackhole:20") for i in range(4)]
            + [Fault(300, "latency:20"), Fault(420, "duplicates")]
        ),
        drain_s=600,
        sample_s=15.0,
    ),
}


@dataclasses.dataclass
class SoakResult:
    """What a soak measured; ``verdict.passed`` is its gate."""

    profile: Profile
    submitted: int
    elapsed_s: float
    verdict: Verdict
    rss_mb: list[tuple[float, dict[str, float]]]
    fault_log: list[str]
    injected_copies: int

    def figures(self) -> dict[str, Any]:
        """The report as JSON-ready figures."""
        lags = self.verdict.lags_s
        stored = len(lags)
        span = self.elapsed_s or 1.0
        return {
            "profile": self.profile.name,
            "target_rate": self.profile.rate,
            "duration_s": self.profile.duration_s,
            "submitted": self.submitted,
            "submit_rate": round(self.submitted / span, 1),
            "views_stored": stored,
            "throughput_views_per_s": round(stored / span, 1),
            "latency_s": {
                name: None if (p := percentile(lags, q)) is None else round(p, 3)
                for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))
            },
            "injected_copies": self.injected_copies,
            "faults": self.fault_log,
            "rss_mb": [{"t_s": round(t, 1), **sample} for t, sample in self.rss_mb],
            "verdict": self.verdict.to_json(),
        }


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class _Sampler(threading.Thread):
    """Samples each running daemon's resident memory every ``interval_s``."""

    def __init__(self, federation: Federation, interval_s: float, t0: float) -> None:
        super().__init__(name="soak-rss", daemon=True)
        self.federation, self.interval_s, self.t0 = federation, interval_s, t0
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval_s):
            sample: dict[str, float] = {}
            for name in DAEMONS:
                try:
                    rss = _rss_mb(self.federation.pid(name))
                except errors.UsageError:
                    continue  # not running at this instant (a fault is restarting it)
                if rss is not None:
                    sample[name] = round(rss, 1)
            self.samples.append((time.monotonic() - self.t0, sample))


def _fault_actions(
    federation: Federation, proxy: FaultProxy, rng: random.Random, log: list[str]
) -> tuple[Callable[[Fault], None], list[int]]:
    copies = [0]

    def act(fault: Fault) -> None:
        kind, _, arg = fault.kind.partition(":")
        started = time.monotonic()
        if kind == "kill":
            federation.kill(arg)
            federation.start(arg)
        elif kind in ("blackhole", "latency"):
            mode = Mode.BLACKHOLE if kind == "blackhole" else Mode.LATENCY
            proxy.set_mode(mode, latency_s=0.2 if mode is Mode.LATENCY else 0.0)
            time.sleep(float(arg))  # the fault window
            proxy.set_mode(Mode.PASS)
        elif kind == "duplicates":
            b, p = federation.bootstrap, federation.prefix
            topics = [outbox_topic(p, "GB"), *(inbox_topic(p, r) for r in RECIPIENTS)]
            for topic in topics:
                copies[0] += asyncio.run(copy_records(b, topic, fraction=0.01, rng=rng))
        log.append(f"{fault.at_s:.0f}s {fault.kind} ({time.monotonic() - started:.1f} s)")

    return act, copies


def run_soak(profile: Profile, workdir: Path, *, seed: int = 20261128) -> SoakResult:
    """Run ``profile`` in ``workdir`` (which must be empty or absent) and check the result."""
    rng = random.Random(seed)
    with FaultProxy() as proxy:
        broker = EmbeddedBroker(port=0, advertised_port=proxy.port)
        broker.start()
        try:
            proxy.upstream_port = broker.port
            federation = provision(
                workdir / "federation",
                bootstrap=f"127.0.0.1:{proxy.port}",
                prefix="soak.",
                accords=unlimited_accords(workdir / "accords"),
            )
            asyncio.run(federation.create_topics())
            with federation:
                return _run(profile, federation, proxy, workdir, rng)
        finally:
            broker.stop()


def _run(
    profile: Profile,
    federation: Federation,
    proxy: FaultProxy,
    workdir: Path,
    rng: random.Random,
) -> SoakResult:
    for name in DAEMONS:
        federation.start(name)
    driver = SpoolDriver(federation, workdir / "history-gb.jsonl")
    fault_log: list[str] = []
    act, copies = _fault_actions(federation, proxy, rng, fault_log)
    t0 = time.monotonic()
    sampler = _Sampler(federation, profile.sample_s, t0)
    sampler.start()
    faults = sorted(profile.faults, key=lambda f: f.at_s)
    pending: list[threading.Thread] = []
    number = 0
    while (elapsed := time.monotonic() - t0) < profile.duration_s:
        while faults and faults[0].at_s <= elapsed:
            # faults run beside the load, so a restart does not pause the fixed rate
            thread = threading.Thread(target=act, args=(faults.pop(0),), daemon=True)
            thread.start()
            pending.append(thread)
        due = int(elapsed * profile.rate) + 1
        while number < due:
            key = f"GB-SOAK-{number:07d}"
            if number % 50 == 49:
                driver.submit(key, ["XK"], allowed=[])
            else:
                driver.submit(key, [RECIPIENTS[number % len(RECIPIENTS)]])
            number += 1
        driver.poll()
        time.sleep(max(0.0, (number / profile.rate) - (time.monotonic() - t0)))
    elapsed = time.monotonic() - t0
    for thread in pending:
        thread.join()
    driver.settle(timeout_s=profile.drain_s)
    driver.close()
    expected = driver.expected_views
    paths = {code: federation.inbox_path(code) for code in ("GB", *RECIPIENTS)}

    def drained() -> bool:
        rows = read_inboxes(paths)
        views = sum(1 for r in rows if not r.receipt)
        return views >= expected and len(rows) - views >= expected

    wait_until(drained, timeout_s=profile.drain_s, interval_s=2.0)
    sampler.done.set()
    sampler.join()
    verdict = _verdict_of(federation, [driver.history])
    return SoakResult(profile, number, elapsed, verdict, sampler.samples, fault_log, copies[0])
