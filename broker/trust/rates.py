"""Per-flow counters for the accords' rate limits, in fixed UTC windows (an hour or a day).

The sending adapter counts what it seals, the gateway what it delivers; both ask for the
counts in the window that holds ``now`` before deciding. The window comes with the decision
that counted (:attr:`broker.policy.Decision.rate`), so there is no lookup to fall back from.
Memory stays bounded by the number of flows, not by traffic.
"""

from __future__ import annotations

import datetime as dt

from broker.policy import Decision, RateWindow

__all__ = ["WINDOW_SECONDS", "RateCounters"]

#: the length of each rate window
WINDOW_SECONDS = {RateWindow.HOUR: 3_600, RateWindow.DAY: 86_400}


class RateCounters:
    """Messages counted per flow in the current window of that flow's limit."""

    def __init__(self) -> None:
        # flow id -> (window length in seconds, window index, count)
        self._counts: dict[str, tuple[int, int, int]] = {}

    def snapshot(self, now: dt.datetime) -> dict[str, int]:
        """The count of every flow whose current window holds ``now``."""
        second = int(now.timestamp())
        return {
            flow: count
            for flow, (seconds, index, count) in self._counts.items()
            if second // seconds == index
        }

    def count(self, decision: Decision | None, now: dt.datetime) -> None:
        """Count one message the decision let through, if its flow has a limit."""
        if decision is None or decision.rate_counter is None or decision.rate is None:
            return
        seconds = WINDOW_SECONDS[decision.rate.window]
        index = int(now.timestamp()) // seconds
        held = self._counts.get(decision.rate_counter)
        count = held[2] if held is not None and held[:2] == (seconds, index) else 0
        self._counts[decision.rate_counter] = (seconds, index, count + 1)
