"""Telling operators where each accord stands: refusals, expiry warnings and gauges.

Every daemon that holds accords (the gateway, each adapter) reports the same way:

- each accord file or version refused is one ``accord_refused`` error line with the reason;
- each signed act applied (a suspension, resumption or termination) is an ``accord_act_applied``
  warning;
- ``xb_accord_in_force{accord}`` is 1 while a version of the accord is in force and no party
  has suspended or terminated it, else 0;
- ``xb_accord_expiry_seconds{accord}`` counts down to the instant the accord lapses (a renewal
  already on file pushes it out), negative once it has;
- a registry file read again and refused (it does not verify, or goes back) is one
  ``registry_reload_refused`` warning and counts in ``xb_registry_reload_refusals_total``;
- within :data:`EXPIRY_WARNING` of lapsing, an ``accord_expiring`` warning; once lapsed or not
  yet in force, an ``accord_not_in_force`` error; while suspended or terminated, an
  ``accord_halted`` error. Each is logged when the state is first seen
  and then at most once a day, so a log shows the cliff coming without repeating every minute.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Final

import structlog

from broker.runtime.metrics import Metrics
from broker.trust import AccordStatus, Reading, RegistryUpdate

__all__ = ["EXPIRY_WARNING", "AccordReporter"]

#: how far ahead of an accord's lapse the daemons start to warn (and `policy verify` too)
EXPIRY_WARNING: Final = dt.timedelta(days=30)
_REPEAT: Final = dt.timedelta(days=1)
_log = structlog.get_logger("broker.accords")


class AccordReporter:
    """Logs and gauges of the accords a daemon holds."""

    def __init__(self, metrics: Metrics) -> None:
        self._in_force = metrics.gauge(
            "xb_accord_in_force", "1 while a version of the accord is in force.", ("accord",)
        )
        self._expiry = metrics.gauge(
            "xb_accord_expiry_seconds",
            "Seconds until the accord lapses (negative once it has).",
            ("accord",),
        )
        self._refused = metrics.counter(
            "xb_accord_refusals_total", "Accord files or versions refused on loading."
        )
        self._registry_refused = metrics.counter(
            "xb_registry_reload_refusals_total",
            "Registry files read again and refused (the registry held stays).",
        )
        self._told: dict[tuple[str, str], dt.datetime] = {}

    def registry_update(self, update: RegistryUpdate) -> None:
        """One line for what reading the registry file did; a refusal is counted."""
        if update.adopted:
            _log.info("registry_reloaded", version=update.version)
        elif update.refused is not None:
            self._registry_refused.inc()
            _log.warning("registry_reload_refused", reason=update.refused, kept=update.version)

    def loaded(
        self,
        reading: Reading,
        statuses: Sequence[AccordStatus],
        *,
        now: dt.datetime,
        reloaded: bool,
    ) -> None:
        """After the accord files were read (at start, or again after a change): log and count
        each refusal, log each signed act applied and what is held, and :meth:`observe` it."""
        for refusal in reading.refusals:
            self._refused.inc()
            _log.error("accord_refused", source=refusal.source, reason=refusal.reason)
        for act in reading.applied:
            _log.warning(
                "accord_act_applied",
                accord=act.accord,
                kind=act.kind,
                by=act.by,
                signed_at=act.at,
                reason=act.reason,
            )
        _log.info(
            "accords_reloaded" if reloaded else "accords_loaded",
            accords=[
                f"{s.accord} v{s.version} {s.state}{'' if s.halt is None else ' ' + s.halt.code}"
                for s in statuses
            ],
        )
        self.observe(statuses, now=now)

    def observe(self, statuses: Iterable[AccordStatus], *, now: dt.datetime) -> None:
        """Set the gauges and log what an operator must act on."""
        for status in statuses:
            accord = str(status.accord)
            left = status.lapses_at - now
            sharing = status.state == "in_force" and status.halt is None
            self._in_force.set(1.0 if sharing else 0.0, accord=accord)
            self._expiry.set(left.total_seconds(), accord=accord)
            if status.halt is not None:
                self._tell(status, now, "accord_halted")
            elif status.state != "in_force":
                self._tell(status, now, "accord_not_in_force")
            elif left <= EXPIRY_WARNING:
                self._tell(status, now, "accord_expiring")

    def _tell(self, status: AccordStatus, now: dt.datetime, event: str) -> None:
        key = (str(status.accord), event)
        last = self._told.get(key)
        if last is not None and now - last < _REPEAT:
            return
        self._told[key] = now
        fields = {
            "accord": str(status.accord),
            "version": status.version,
            "state": status.state,
            "lapses": status.last.expires_text,
        }
        if event == "accord_expiring":
            days = (status.lapses_at - now).total_seconds() / 86_400
            _log.warning(event, days_left=round(days, 1), action="renew it", **fields)
        elif status.halt is not None:
            _log.error(event, code=str(status.halt.code), why=status.halt.reason, **fields)
        else:
            _log.error(event, action="its flows are refused until a version is in force", **fields)
