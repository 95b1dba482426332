"""Rate windows: one counter per flow, in the window of the flow's own limit."""

from __future__ import annotations

import datetime as dt

from broker.ids import AccordId
from broker.policy import Decision, Outcome, RateLimit, RateWindow
from broker.trust import RateCounters

NOW = dt.datetime(2026, 11, 28, 12, 30, tzinfo=dt.UTC)


def allowed(flow: str, window: RateWindow) -> Decision:
    return Decision(
        Outcome.ALLOW,
        AccordId("gb-rs"),
        1,
        flow,
        (flow,),
        (),
        rate_counter=flow,
        rate=RateLimit(count=10, window=window),
    )


def test_counts_belong_to_their_window_and_a_new_window_starts_at_zero() -> None:
    """Two in the 12:00 hour; none by 13:00 (the hour turned)."""
    counters = RateCounters()
    counters.count(allowed("GB-RS-OPS", RateWindow.HOUR), NOW)
    counters.count(allowed("GB-RS-OPS", RateWindow.HOUR), NOW + dt.timedelta(minutes=20))
    assert counters.snapshot(NOW + dt.timedelta(minutes=29)) == {"GB-RS-OPS": 2}
    assert counters.snapshot(NOW + dt.timedelta(minutes=30)) == {}


def test_a_daily_limit_counts_for_the_whole_day() -> None:
    """The window comes with the decision: a per-day flow is never counted per hour."""
    counters = RateCounters()
    counters.count(allowed("GB-XK", RateWindow.DAY), NOW)
    counters.count(allowed("GB-XK", RateWindow.DAY), NOW + dt.timedelta(hours=5))
    assert counters.snapshot(NOW + dt.timedelta(hours=11)) == {"GB-XK": 2}
    assert counters.snapshot(NOW + dt.timedelta(hours=12)) == {}


def test_a_decision_without_a_limit_counts_nothing() -> None:
    """Receipts and unlimited flows leave no counter behind."""
    counters = RateCounters()
    counters.count(None, NOW)
    unlimited = Decision(Outcome.ALLOW, AccordId("gb-rs"), 1, "F", ("F",), ())
    counters.count(unlimited, NOW)
    assert counters.snapshot(NOW) == {}
