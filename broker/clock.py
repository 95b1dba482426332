"""Time, passed in rather than read: the pure core takes ``now`` as an argument.

Daemons call :meth:`SystemClock.now` once per message; replay passes the recorded time; tests
use :class:`FixedClock`.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

__all__ = ["Clock", "FixedClock", "SystemClock", "utc"]


def utc(text: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp that must carry a timezone, returned in UTC."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone")
    return value.astimezone(dt.UTC)


class Clock(Protocol):
    """Anything that can tell the current time in UTC."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware, in UTC."""
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that stands still until moved; for tests and replay."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware time")
        self._at = at

    def now(self) -> dt.datetime:
        """The time this clock was set to."""
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self._at += delta
