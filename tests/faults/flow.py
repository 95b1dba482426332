"""The shape every fault test shares: a stream of reports from GB to RS, MK and XK through
GB's spool, a fault applied between steps, a drain, the history checker's verdict and the
audit check (the audit log verifies and every decision replays, §A9.6)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.soak.audit_check import check_audit
from benchmarks.soak.driver import SpoolDriver, receipted_views, verdict_of, wait_until
from broker.checker import Verdict, read_inboxes, read_rejections
from broker.demo.federation import Federation

__all__ = ["RECIPIENTS", "SEED", "drain", "run_stream", "wait_delivered"]

RECIPIENTS = ("RS", "MK", "XK")
#: the seed of every random choice in the fault tests (kill points, copies)
SEED = int(os.environ.get("BROKER_FAULT_SEED", "20261128"))
#: reports per fault test (each to three recipients: three views and three receipts)
MESSAGES = int(os.environ.get("BROKER_FAULT_MESSAGES", "150"))
DRAIN_S = 180.0


def run_stream(
    federation: Federation,
    history: Path,
    *,
    stem: str,
    steps: int = 6,
    between: Callable[[int], None] = lambda _step: None,
    messages: int = MESSAGES,
) -> SpoolDriver:
    """Submit ``messages`` reports in ``steps`` bursts, calling ``between(step)`` after each
    burst (where the fault goes); every tenth report is TLP:AMBER to XK, which GB's own
    adapter must refuse (a ``fail`` in the history, never a delivery)."""
    driver = SpoolDriver(federation, history)
    per_step = -(-messages // steps)
    number = 0
    for step in range(steps):
        for _ in range(per_step):
            if number >= messages:
                break
            key = f"GB-{stem}-{number:05d}"
            if number % 10 == 9:
                driver.submit(key, ["XK"], allowed=[])
            else:
                driver.submit(key, RECIPIENTS)
            number += 1
        driver.poll()
        between(step)
    return driver


def wait_delivered(federation: Federation, driver: SpoolDriver, *, timeout_s: float) -> bool:
    """Wait until the recipients hold (or have refused, with a reason) as many views as the
    driver's model expects, and GB as many receipts; returns whether that happened within
    ``timeout_s``. A view its recipient refused may never have a receipt."""
    paths = {code: federation.inbox_path(code) for code in ("GB", *RECIPIENTS)}

    def complete() -> bool:
        rows = read_inboxes(paths)
        refused = len(read_rejections(paths))
        views = sum(1 for r in rows if not r.receipt) + refused
        receipted = receipted_views(federation) + refused
        return views >= driver.expected_views and receipted >= driver.expected_views

    return wait_until(complete, timeout_s=timeout_s, interval_s=1.0)


def drain(
    federation: Federation,
    driver: SpoolDriver,
    *,
    timeout_s: float = DRAIN_S,
    extra: Sequence[Path] = (),
) -> Verdict:
    """Settle the sender, wait until every acked view and its receipt are stored (bounded by
    the drain timeout), then read everything and check the history (and ``extra`` ones).

    The audit log is then verified (every signature, every checkpoint) and every decision in
    it replayed; that must pass here, so the verdict returned comes from a run whose audit
    is complete and consistent."""
    driver.settle(timeout_s=timeout_s)
    driver.close()
    wait_delivered(federation, driver, timeout_s=timeout_s)
    verdict = verdict_of(federation, [driver.history, *extra])
    audit = check_audit(federation, quiet_s=2.0)
    print(f"\n{verdict.summary()}\n{audit.summary()}")
    assert audit.passed, "\n".join(audit.problems)
    return verdict
