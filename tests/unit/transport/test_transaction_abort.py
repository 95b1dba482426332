"""Aborting a transaction on a producer whose transaction failed fatally.

When every node of a cluster stops at once, aiokafka's sender may give up and put the
producer's transaction in its fatal state. The gateway then aborts, best effort, before it
opens a new producer; aiokafka refuses that abort with an AssertionError, which once escaped
the gateway's retry loop and stopped it. Here a real aiokafka producer (never started: no
broker is needed to reach that state) is put where its sender leaves it.
"""

from __future__ import annotations

import aiokafka
import pytest

from broker.errors import TransportError
from broker.transport.transactions import TransactionalProducer


async def test_a_fatally_failed_transaction_cannot_abort_and_says_so_as_a_transport_error() -> None:
    client = aiokafka.AIOKafkaProducer(
        bootstrap_servers="127.0.0.1:9", transactional_id="abort-test", enable_idempotence=True
    )
    try:
        # what the sender does: a producer id, a transaction, then the fatal error
        manager = client._txn_manager
        manager.set_pid_and_epoch(1, 0)
        manager.begin_transaction()
        manager.fatal_error(aiokafka.errors.KafkaError("the sender gave up"))
        manager._transaction_waiter.exception()  # retrieved, as the sender's waiters would be
        with pytest.raises(TransportError, match="this producer can no longer abort"):
            await TransactionalProducer(client).abort()
    finally:
        await client.stop()
