"""Per-flow send counters for the accords' rate limits."""

from __future__ import annotations

import datetime as dt

from broker.pipeline.send import AccordInForce
from broker.policy import Decision
from broker.policy.model import RateWindow

__all__ = ["RateCounters"]

_WINDOW_SECONDS = {RateWindow.HOUR: 3_600, RateWindow.DAY: 86_400}


class RateCounters:
    """Messages sent per flow in the current fixed window (hour or day), for the accord's limits.

    One integer per flow: memory stays bounded by the number of flows, not by traffic.
    """

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # flow id -> (window index, count)
        self._windows: dict[str, int] = {}

    def snapshot(self, now: dt.datetime) -> dict[str, int]:
        """The counts of the windows that contain ``now``."""
        result = {}
        for flow, (index, count) in self._counts.items():
            if int(now.timestamp()) // self._windows[flow] == index:
                result[flow] = count
        return result

    def count(self, decision: Decision | None, accord: AccordInForce, now: dt.datetime) -> None:
        """Count one sent view against its flow's limit, if the flow has one."""
        if decision is None or decision.rate_counter is None:
            return
        flow = next((f for f in accord.accord.flows if f.id == decision.rate_counter), None)
        if flow is None or flow.rate is None:
            return
        seconds = _WINDOW_SECONDS[flow.rate.window]
        index = int(now.timestamp()) // seconds
        current, count = self._counts.get(flow.id, (index, 0))
        self._windows[flow.id] = seconds
        self._counts[flow.id] = (index, count + 1 if current == index else 1)
