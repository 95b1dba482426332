"""Background tasks a daemon cannot do without: when one dies, the daemon says so.

A daemon runs its main loop and a few tasks beside it (the gateway's audit checkpointer, the
file watchers that reload the registry and accords, the adapter's spool and housekeeping).
A task that ends with an exception would otherwise die silently while the main loop keeps
``/healthz`` at 200: half a daemon reporting itself whole. :func:`supervise` watches a task;
if it raises, the daemon's :class:`~broker.runtime.http.Health` turns failed (``/healthz``
and ``/readyz`` answer 503 from then on, naming the task, so a supervisor restarts it), the
``xb_background_task_failures_total{task}`` counter goes up, ``xb_background_task_up{task}``
goes to 0, and one error line is logged.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from broker.runtime.http import Health
from broker.runtime.metrics import Metrics

__all__ = ["supervise"]

_log = structlog.get_logger("broker.runtime")


def supervise(task: asyncio.Task[Any], *, name: str, health: Health, metrics: Metrics) -> None:
    """Report ``task`` (called ``name``) dead in ``health`` and ``metrics`` if it raises."""
    up = metrics.gauge(
        "xb_background_task_up", "1 while a background task runs, 0 once it failed", ("task",)
    )
    failures = metrics.counter(
        "xb_background_task_failures_total", "Background tasks that ended by failing", ("task",)
    )
    up.set(1, task=name)

    def finished(done: asyncio.Task[Any]) -> None:
        if done.cancelled() or done.exception() is None:
            return
        error = done.exception()
        failures.inc(task=name)
        up.set(0, task=name)
        health.set_failed(name, f"{type(error).__name__}: {error}")
        _log.error("background_task_failed", task=name, error=f"{type(error).__name__}: {error}")

    task.add_done_callback(finished)
