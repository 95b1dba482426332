"""The history checker: did the exchange lose, double or leak anything? (docs/RELIABILITY.md)

- :mod:`.history`: each client's JSON-lines history of sends (``invoke`` / ``ok`` / ``fail`` /
  ``info``), written by test and soak drivers around every send;
- :func:`observe`: reads every inbox store (and the deliveries its adapter refused), the
  quarantine topic and the audit topic;
- :func:`check`: the pure check of the histories against those observations, giving a
  :class:`Verdict` (lost, duplicated, unauthorised, unaccounted rejections, unseen, lag, and
  the views their recipients refused with a reason);
- :class:`FaultProxy`: a TCP proxy between clients and the broker that partitions, delays or
  resets the traffic on demand.
"""

from __future__ import annotations

from broker.checker.history import Event, EventType, HistoryWriter, read_history
from broker.checker.observe import (
    observe,
    read_audit,
    read_inboxes,
    read_quarantine,
    read_rejections,
)
from broker.checker.proxy import FaultProxy, Mode
from broker.checker.verdict import (
    Audited,
    Observations,
    Quarantined,
    Refused,
    Stored,
    Verdict,
    check,
    percentile,
)

__all__ = [
    "Audited",
    "Event",
    "EventType",
    "FaultProxy",
    "HistoryWriter",
    "Mode",
    "Observations",
    "Quarantined",
    "Refused",
    "Stored",
    "Verdict",
    "check",
    "observe",
    "percentile",
    "read_audit",
    "read_history",
    "read_inboxes",
    "read_quarantine",
    "read_rejections",
]
