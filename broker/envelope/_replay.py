"""Replay detection: a message id seen twice is a benign duplicate or a security alert.

Same id and the same envelope bytes: a redelivery (Kafka is at-least-once), counted and
dropped. Same id and different bytes: someone re-used an id, raised as ReplayError. Entries are
kept until the envelope expires; afterwards the time window in :func:`verify` refuses it anyway.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Protocol

from broker import crypto, errors
from broker.envelope._open import VerifiedHeader
from broker.ids import MessageId

__all__ = ["DedupStore", "InMemoryDedupStore", "ReplayGuard", "ReplayVerdict"]


class DedupStore(Protocol):
    """Remembers (message id -> envelope digest) until an expiry time."""

    def remember(
        self, message_id: MessageId, digest: bytes, *, expires: dt.datetime
    ) -> bytes | None:
        """Store the digest if the id is new and return None; else return the stored digest."""
        ...

    def purge(self, *, now: dt.datetime) -> int:
        """Forget entries that expired before ``now``; return how many."""
        ...


class InMemoryDedupStore:
    """A dictionary-backed store: for tests and single-process tools."""

    def __init__(self) -> None:
        self._entries: dict[MessageId, tuple[bytes, dt.datetime]] = {}

    def remember(
        self, message_id: MessageId, digest: bytes, *, expires: dt.datetime
    ) -> bytes | None:
        """Store the digest if the id is new and return None; else return the stored digest."""
        existing = self._entries.get(message_id)
        if existing is not None:
            return existing[0]
        self._entries[message_id] = (digest, expires)
        return None

    def purge(self, *, now: dt.datetime) -> int:
        """Forget entries that expired before ``now``; return how many."""
        stale = [mid for mid, (_, expires) in self._entries.items() if expires < now]
        for mid in stale:
            del self._entries[mid]
        return len(stale)

    def __len__(self) -> int:
        return len(self._entries)


class ReplayVerdict(enum.Enum):
    """What :meth:`ReplayGuard.check` found; a reused id with other bytes raises instead."""

    FRESH = "fresh"
    DUPLICATE = "duplicate"


@dataclasses.dataclass
class ReplayGuard:
    """Classify verified envelopes as fresh or duplicate, raising on a reused id."""

    store: DedupStore = dataclasses.field(default_factory=InMemoryDedupStore)
    duplicates: int = 0
    alerts: int = 0

    def check(self, header: VerifiedHeader) -> ReplayVerdict:
        """FRESH the first time an id is seen, DUPLICATE for the same bytes again.

        Raises ReplayError when the id was seen with different envelope bytes.
        """
        previous = self.store.remember(
            header.message_id, header.envelope_digest, expires=header.expires
        )
        if previous is None:
            return ReplayVerdict.FRESH
        if crypto.constant_time_equal(previous, header.envelope_digest):
            self.duplicates += 1
            return ReplayVerdict.DUPLICATE
        self.alerts += 1
        raise errors.ReplayError(f"message id {header.message_id} reused with different content")
