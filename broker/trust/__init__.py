"""What a daemon trusts: the accords it holds, which version of each decides, rate windows.

- :mod:`.accords`: :class:`AccordSet` holds every verified version of every accord and gives
  the :class:`AccordBook` of deciding versions at any instant (renewals take over on their
  date; a version below one that has been in force never decides again);
- :mod:`.files`: :class:`AccordFiles` reads and verifies accord files, one refusal per bad
  file, each keeping the version it last gave;
- :mod:`.acts`: a party's signed suspension, resumption or termination of an accord;
- :mod:`.state`: :class:`TrustStateFile`, the signed memory that outlives a restart;
- :mod:`.held`: :class:`HeldTrust`, what a running daemon trusts, from its files;
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
from broker.trust.files import AccordFiles, BookSource, Reading
from broker.trust.held import AccordSource, HeldTrust, RegistryUpdate
from broker.trust.rates import WINDOW_SECONDS, RateCounters
from broker.trust.state import TrustMemory, TrustStateFile

__all__ = [
    "WINDOW_SECONDS",
    "AccordBook",
    "AccordFiles",
    "AccordInForce",
    "AccordSet",
    "AccordSource",
    "AccordState",
    "AccordStatus",
    "BookSource",
    "HeldTrust",
    "RateCounters",
    "Reading",
    "Refusal",
    "RegistryUpdate",
    "TrustMemory",
    "TrustStateFile",
]
