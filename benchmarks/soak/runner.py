"""The soak: a fixed rate of reports for a fixed time through a whole federation (its own
embedded broker behind the TCP fault proxy; when the schedule bounces the broker, it keeps
its data on a loopback S3 server so the data survives), a seeded fault schedule, and at the
end the throughput, the end-to-end latency percentiles, each daemon's memory over time and
the history checker's verdict.

Every report goes from GB to one of RS, MK and XK in turn, so the rate is in views per
second (each view also produces a receipt back to GB); every 50th is TLP:AMBER to XK, which
GB's adapter must refuse. Latency is from the driver's ``invoke`` to the recipient's store.

CPU per view is every process's CPU from the first submission until the last view and its
receipt are stored, divided by the views stored; it is also expressed in Ed25519
verifications timed in this process during the same run, so that runs under different
machine load compare.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.soak.audit_check import AuditCheck, check_audit
from benchmarks.soak.driver import (
    SpoolDriver,
    copy_records,
    receipted_views,
    unlimited_accords,
    wait_until,
)
from benchmarks.soak.driver import verdict_of as _verdict_of
from broker import errors
from broker.checker import FaultProxy, Mode, Verdict, percentile, read_inboxes
from broker.config import inbox_topic, outbox_topic
from broker.demo.federation import Federation, provision
from broker.transport.embedded import EmbeddedBroker, free_port
from broker.transport.objectstore import LoopbackS3

__all__ = ["PROFILES", "Fault", "Profile", "SoakResult", "run_soak"]

RECIPIENTS = ("RS", "MK", "XK")
DAEMONS = ("gateway", "GB", *RECIPIENTS)
#: how often the load loop notes which submissions the adapter has handled
_POLL_EVERY_S = 0.1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_TICK_S = 0.02
#: the processes of the exchange itself: the driver (the agencies' side) is not counted
EXCHANGE = (*DAEMONS, "broker")


@dataclasses.dataclass(frozen=True)
class Fault:
    """One scheduled fault: ``at_s`` seconds into the run."""

    at_s: float
    # kill:<daemon> | blackhole:<seconds> | latency:<seconds> | duplicates
    # | bounce (the broker SIGTERMed and restarted on its storage) | bounce:kill (SIGKILLed)
    kind: str
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
    # The bulk feed's rate with no fault: what the federation sustains, and at what latency.
    "steady": Profile("steady", rate=250, duration_s=60, faults=(), drain_s=120),
    # Broker bounces need storage that survives them; the loopback S3 server (moto) stores
    # about 10-25 views/s here, so bounces get their own low-rate profile instead of capping
    # the others (tests/faults/test_broker_bounce.py bounces the broker in CI).
    "bounce": Profile(
        "bounce",
        rate=8,
        duration_s=120,
        faults=(
            Fault(30, "bounce"),
            Fault(60, "kill:gateway"),
            Fault(80, "bounce:kill"),
        ),
        drain_s=300,
    ),
}


@dataclasses.dataclass
class SoakResult:
    """What a soak measured; ``passed`` (the verdict and the audit check) is its gate."""

    profile: Profile
    submitted: int
    elapsed_s: float
    verdict: Verdict
    rss_mb: list[tuple[float, dict[str, float]]]
    fault_log: list[str]
    injected_copies: int
    #: (kind, wall time it began, wall time it ended) of each fault
    fault_windows: list[tuple[str, float, float]]
    #: the audit log verified (thorough) and replayed at the end (§A9.6)
    audit: AuditCheck
    #: CPU seconds each process used while the load ran (daemons, broker, driver)
    load_cpu_s: dict[str, float] = dataclasses.field(default_factory=dict)
    #: CPU seconds each process used from the first submission until every view was stored
    work_cpu_s: dict[str, float] = dataclasses.field(default_factory=dict)
    #: seconds from the first submission to the last view stored
    stored_span_s: float | None = None
    #: CPU microseconds of one Ed25519 verification, timed in this process in this run
    ed25519_verify_us: float | None = None

    @property
    def passed(self) -> bool:
        """The history checker's verdict and the audit check both passed."""
        return self.verdict.passed and self.audit.passed

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
            "backlog_drained_s_after_fault": self.drained_after_faults(),
            "rss_mb": [{"t_s": round(t, 1), **sample} for t, sample in self.rss_mb],
            "rss_growth_after_warmup_pct": self.rss_growth(),
            "cpu_percent_of_a_core_during_load": {
                name: round(100 * used / span) for name, used in sorted(self.load_cpu_s.items())
            },
            **self.cpu_figures(stored),
            "verdict": self.verdict.to_json(),
            "audit": self.audit.to_json(),
        }

    def drained_after_faults(self) -> list[dict[str, Any]]:
        """Per fault: seconds from its end until the last view invoked during it was stored
        (the backlog it caused, drained), and how many views were invoked during it."""
        drained = []
        for kind, began, ended in self.fault_windows:
            during = [
                stored for invoked, stored in self.verdict.stored_s if began <= invoked <= ended
            ]
            drained.append(
                {
                    "fault": kind,
                    "lasted_s": round(ended - began, 1),
                    "views_invoked_during": len(during),
                    "drained_s": round(max(during) - ended, 2) if during else None,
                }
            )
        return drained

    def rss_growth(self) -> dict[str, float]:
        """Each daemon's resident memory at the end of the load against its first sample
        after warm-up (a fifth of the load, at most a minute: caches, pools and the
        allocator's arenas fill first), in per cent."""
        warm_s = min(60.0, self.profile.duration_s / 5)
        during = [(t, sample) for t, sample in self.rss_mb if t <= self.profile.duration_s]
        if not during:
            return {}
        last = during[-1][1]
        growth = {}
        for name in sorted(last):
            # its own first sample after warm-up: a daemon killed just then (a fault) has no
            # reading in the samples taken while it was down
            warm = next((s[name] for t, s in during if t >= warm_s and s.get(name)), None)
            if warm:
                growth[name] = round(100 * (last[name] - warm) / warm, 1)
        return growth

    def cpu_figures(self, stored: int) -> dict[str, Any]:
        """Sustained throughput and CPU per stored view (each view's receipt included)."""
        per_view = {
            name: round(1e6 * used / stored, 1) if stored else None
            for name, used in sorted(self.work_cpu_s.items())
        }
        exchange = sum(self.work_cpu_s.get(name, 0.0) for name in EXCHANGE)
        total = round(1e6 * exchange / stored, 1) if stored else None
        verify = self.ed25519_verify_us
        return {
            "stored_views_per_s": (
                round(stored / self.stored_span_s, 1) if self.stored_span_s else None
            ),
            "latency_p99_s": (
                None if (p := percentile(self.verdict.lags_s, 0.99)) is None else round(p, 3)
            ),
            # "total": the daemons and the broker; the driver is shown but not counted
            "cpu_per_view_us": {**per_view, "total": total},
            "ed25519_verify_us": None if verify is None else round(verify, 2),
            "cpu_per_view_ed25519": (
                round(total / verify, 1) if total is not None and verify else None
            ),
        }


def _cpu_s(pid: int) -> float | None:
    """User plus system CPU seconds of ``pid`` (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class _Sampler(threading.Thread):
    """Samples each running daemon's resident memory every ``interval_s``, and adds up the
    CPU time every process of the run uses (daemons, the broker, this driver)."""

    def __init__(
        self, federation: Federation, broker: EmbeddedBroker, interval_s: float, t0: float
    ) -> None:
        super().__init__(name="soak-rss", daemon=True)
        self.federation, self.broker = federation, broker
        self.interval_s, self.t0 = interval_s, t0
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.cpu_s: dict[str, float] = {}
        self._last: dict[str, tuple[int, float]] = {}  # name -> (pid, its CPU seconds)
        self._lock = threading.Lock()
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
            self.add_cpu()

    def add_cpu(self) -> dict[str, float]:
        """Add the CPU used since the last call; returns the totals so far (seconds). A
        process restarted in between loses what it used before dying (a small undercount)."""
        pids: dict[str, int] = {"driver": os.getpid()}
        if self.broker.is_running():
            pids["broker"] = self.broker.pid
        for name in DAEMONS:
            with contextlib.suppress(errors.UsageError):
                pids[name] = self.federation.pid(name)
        with self._lock:
            for name, pid in pids.items():
                used = _cpu_s(pid)
                if used is None:
                    continue
                last_pid, last_used = self._last.get(name, (pid, 0.0))
                self.cpu_s[name] = (
                    self.cpu_s.get(name, 0.0) + used - (last_used if last_pid == pid else 0.0)
                )
                self._last[name] = (pid, used)
            return dict(self.cpu_s)


def ed25519_verify_us(*, rounds: int = 5, count: int = 2000) -> float:
    """CPU microseconds of one Ed25519 verification of a header-sized message: the median
    of ``rounds`` timings (process CPU time, as the per-view figures are)."""
    key = Ed25519PrivateKey.generate()
    public, message = key.public_key(), b"x" * 600
    signature = key.sign(message)
    timings = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(count):
            public.verify(signature, message)
        timings.append((time.process_time() - started) / count)
    return 1e6 * statistics.median(timings)


def _fault_actions(
    federation: Federation,
    proxy: FaultProxy,
    broker: EmbeddedBroker,
    rng: random.Random,
    log: list[str],
    windows: list[tuple[str, float, float]],
) -> tuple[Callable[[Fault], None], list[int]]:
    copies = [0]

    def act(fault: Fault) -> None:
        kind, _, arg = fault.kind.partition(":")
        started, began = time.monotonic(), time.time()
        if kind == "kill":
            federation.kill(arg)
            federation.start(arg)
        elif kind == "bounce":
            # same port, same bucket: the proxy and every client keep their address
            if arg == "kill":
                broker.kill()
            else:
                broker.stop()
            broker.start()
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
        windows.append((fault.kind, began, time.time()))

    return act, copies


def run_soak(profile: Profile, workdir: Path, *, seed: int = 20261128) -> SoakResult:
    """Run ``profile`` in ``workdir`` (which must be empty or absent) and check the result."""
    rng = random.Random(seed)
    # a broker bounce needs storage that survives it: a loopback S3 server (moto), which is
    # also much slower than the memory engine, so only profiles with a bounce pay for it
    bounces = any(fault.kind.partition(":")[0] == "bounce" for fault in profile.faults)
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(FaultProxy())
        s3 = stack.enter_context(LoopbackS3()) if bounces else None
        # a port below the ephemeral range, so no connection made while it is down can take it
        broker = EmbeddedBroker(
            port=free_port(outside_ephemeral=True),
            advertised_port=proxy.port,
            storage=None if s3 is None else s3.storage(),
        )
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
                return _run(profile, federation, proxy, broker, workdir, rng)
        finally:
            broker.stop()


def _run(
    profile: Profile,
    federation: Federation,
    proxy: FaultProxy,
    broker: EmbeddedBroker,
    workdir: Path,
    rng: random.Random,
) -> SoakResult:
    for name in DAEMONS:
        federation.start(name)
    verify_before = ed25519_verify_us()
    driver = SpoolDriver(federation, workdir / "history-gb.jsonl")
    fault_log: list[str] = []
    windows: list[tuple[str, float, float]] = []
    act, copies = _fault_actions(federation, proxy, broker, rng, fault_log, windows)
    t0, t0_wall = time.monotonic(), time.time()
    sampler = _Sampler(federation, broker, profile.sample_s, t0)
    sampler.add_cpu()
    sampler.cpu_s.clear()  # count from here: not the daemons' start-up
    sampler.start()
    faults = sorted(profile.faults, key=lambda f: f.at_s)
    pending: list[threading.Thread] = []
    number, polled = 0, 0.0
    while (elapsed := time.monotonic() - t0) < profile.duration_s:
        while faults and faults[0].at_s <= elapsed:
            # faults run beside the load, so a restart does not pause the fixed rate
            thread = threading.Thread(target=act, args=(faults.pop(0),), daemon=True)
            thread.start()
            pending.append(thread)
        due = int(elapsed * profile.rate) + 1
        batch: list[tuple[str, list[str], list[str] | None]] = []
        while number < due:
            key = f"GB-SOAK-{number:07d}"
            if number % 50 == 49:
                batch.append((key, ["XK"], []))
            else:
                batch.append((key, [RECIPIENTS[number % len(RECIPIENTS)]], None))
            number += 1
        driver.submit_many(batch)
        if time.monotonic() - polled >= _POLL_EVERY_S:
            driver.poll()
            polled = time.monotonic()
        # reports due within a tick go out as one batch (one flush of the spool directory)
        time.sleep(max(_TICK_S, (number / profile.rate) - (time.monotonic() - t0)))
    elapsed = time.monotonic() - t0
    load_cpu_s = sampler.add_cpu()
    for thread in pending:
        thread.join()
    driver.settle(timeout_s=profile.drain_s)
    driver.close()
    expected = driver.expected_views
    paths = {code: federation.inbox_path(code) for code in ("GB", *RECIPIENTS)}

    last_stored: list[float] = []

    def drained() -> bool:
        rows = read_inboxes(paths)
        views = sum(1 for r in rows if not r.receipt)
        last_stored[:] = [max((r.received_at for r in rows if not r.receipt), default=t0_wall)]
        return views >= expected and receipted_views(federation) >= expected

    wait_until(drained, timeout_s=profile.drain_s, interval_s=2.0)
    # up to one poll interval of idle daemons past the last store: a small overcount
    work_cpu_s = sampler.add_cpu()
    verify_after = ed25519_verify_us()
    sampler.done.set()
    sampler.join()
    verdict = _verdict_of(federation, [driver.history])
    # the bundle stays in the workdir, for `broker audit verify|replay` after a failed run
    audit = check_audit(federation, bundle=workdir / "audit.bundle")
    return SoakResult(
        profile,
        number,
        elapsed,
        verdict,
        sampler.samples,
        fault_log,
        copies[0],
        windows,
        audit,
        load_cpu_s=load_cpu_s,
        work_cpu_s=work_cpu_s,
        stored_span_s=(last_stored[0] - t0_wall) if last_stored else None,
        # before the load and after it: the machine's other work moves it
        ed25519_verify_us=(verify_before + verify_after) / 2,
    )
