"""What a daemon trusts: the accords it holds, which version of each decides, rate windows.

- :mod:`.accords`: :class:`AccordSet` holds every verified version of every accord and gives
  the :class:`AccordBook` of deciding versions at any instant (renewals take over on their
  date; a version below one that has been in force never decides again);
- :mod:`.files`: :class:`AccordFiles` reads and verifies accord files, one refusal per bad
  file, each keeping the version it last gave;
- :mod:`.rates`: :class:`RateCounters`, the accords' rate-limit windows, for sender and gateway.
"""

from __future__ import annotations

from broker.trust.accords import (
    AccordBook,
    AccordInForce,
    AccordSet,
    AccordState,
    AccordStatus,
    Refusal,
)
from broker.trust.files import AccordFiles, Reading
from broker.trust.rates import WINDOW_SECONDS, RateCounters

__all__ = [
    "WINDOW_SECONDS",
    "AccordBook",
    "AccordFiles",
    "AccordInForce",
    "AccordSet",
    "AccordState",
    "AccordStatus",
    "RateCounters",
    "Reading",
    "Refusal",
]
