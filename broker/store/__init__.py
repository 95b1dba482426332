"""Durable local stores of the daemons, on SQLite (WAL, ``synchronous=FULL``, files mode 0600).

- :class:`DedupStore`: the bounded, atomic de-duplication record (new / duplicate / conflict).
- :class:`InboxStore`: a receiving adapter's messages, encrypted at rest under per-message
  keys, with its de-duplication record in the same transaction, crypto-shredded on retention.
- :class:`RejectedLog`: the deliveries the adapter refused (:attr:`InboxStore.rejected`),
  recorded in the same transaction as the accepted messages of their batch.

:func:`open_database` opens (creating or upgrading) any of them, and the adapter's send
journal. Each store owns one connection and opens every transaction explicitly. Times are
timezone-aware datetimes passed in by the caller; the stores never read the clock.
"""

from __future__ import annotations

from broker.store._sqlite import open_database
from broker.store.dedup import DIGEST_BYTES, DedupCounters, DedupStore, DedupVerdict
from broker.store.inbox import KEY_BYTES, InboxItem, InboxStore, Sealer, StoredMessage, Withdrawn
from broker.store.rejected import IdentifiedBy, RejectedDelivery, RejectedLog, Rejection

__all__ = [
    "DIGEST_BYTES",
    "KEY_BYTES",
    "DedupCounters",
    "DedupStore",
    "DedupVerdict",
    "IdentifiedBy",
    "InboxItem",
    "InboxStore",
    "RejectedDelivery",
    "RejectedLog",
    "Rejection",
    "Sealer",
    "StoredMessage",
    "Withdrawn",
    "open_database",
]
