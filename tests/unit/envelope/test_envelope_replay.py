"""Replay: the same envelope again is a counted duplicate; a reused id is an alert."""

from __future__ import annotations

import datetime as dt

import pytest

from broker import envelope, errors
from broker.ids import MessageId

from .conftest import NOW, Party, TinyRegistry, seal_from

MESSAGE_ID = MessageId("01900000-0000-7000-8000-0000000000aa")


@pytest.fixture
def store() -> envelope.DedupStore:
    # The durable store the daemons use is broker.store.DedupStore (tests/unit/store).
    return envelope.InMemoryDedupStore()


def _verified(data: bytes, registry: TinyRegistry) -> envelope.VerifiedHeader:
    return envelope.verify(data, registry=registry, now=NOW)


def test_the_first_sight_of_an_id_is_fresh(
    store: envelope.DedupStore, gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """A new message id passes and is remembered."""
    guard = envelope.ReplayGuard(store)
    sealed = seal_from(gb, rs, message_id=MESSAGE_ID)
    assert guard.check(_verified(sealed, registry)) is envelope.ReplayVerdict.FRESH
    assert (guard.duplicates, guard.alerts) == (0, 0)


def test_the_same_bytes_again_are_a_counted_duplicate(
    store: envelope.DedupStore, gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """Redelivery of identical bytes is benign: DUPLICATE, and the counter goes up each time."""
    guard = envelope.ReplayGuard(store)
    sealed = seal_from(gb, rs, message_id=MESSAGE_ID)
    guard.check(_verified(sealed, registry))
    assert guard.check(_verified(sealed, registry)) is envelope.ReplayVerdict.DUPLICATE
    assert guard.check(_verified(sealed, registry)) is envelope.ReplayVerdict.DUPLICATE
    assert (guard.duplicates, guard.alerts) == (2, 0)


def test_the_same_id_with_different_bytes_is_an_alert(
    store: envelope.DedupStore, gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """A second, different envelope under a seen id raises ReplayError and counts an alert."""
    guard = envelope.ReplayGuard(store)
    guard.check(_verified(seal_from(gb, rs, message_id=MESSAGE_ID), registry))
    with pytest.raises(errors.ReplayError, match="reused with different content"):
        guard.check(_verified(seal_from(gb, rs, message_id=MESSAGE_ID), registry))
    assert (guard.duplicates, guard.alerts) == (0, 1)


def test_purge_forgets_only_expired_entries(
    store: envelope.DedupStore, gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """Entries live until their envelope expires; after that verify() refuses it anyway."""
    guard = envelope.ReplayGuard(store)
    guard.check(_verified(seal_from(gb, rs, ttl=dt.timedelta(hours=1)), registry))
    guard.check(_verified(seal_from(gb, rs, ttl=dt.timedelta(days=2)), registry))
    assert store.purge(now=NOW + dt.timedelta(minutes=59)) == 0
    assert store.purge(now=NOW + dt.timedelta(hours=2)) == 1
