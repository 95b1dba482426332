"""Where a gateway batch's records go: a plain idempotent producer, or one Kafka transaction
per batch where the engine has transactions (``KafkaSettings.capabilities``)."""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from broker.config import GatewayConfig
from broker.errors import TransportError
from broker.transport.kafka import (
    Delivery,
    OutboundRecord,
    Producer,
    ProducerSettings,
    open_producer,
)
from broker.transport.transactions import TransactionalProducer, open_transactional_producer

__all__ = ["Sender", "all_acknowledged", "open_output", "transactional_id"]


class Sender(Protocol):
    """What a batch's output needs of a producer, plain or transactional."""

    async def send_many(
        self, records: Sequence[OutboundRecord]
    ) -> list[Delivery | TransportError]: ...


def transactional_id(config: GatewayConfig) -> str:
    """This instance's transactional id: the configured one, or ``<group>.tx.<host>-<digest
    of the dedup store's path>``, the same after a restart and different for every instance
    (each keeps its own store)."""
    if config.gateway.transactional_id is not None:
        return config.gateway.transactional_id
    store = str(config.store.path.resolve())
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:63] or "host"
    digest = hashlib.sha256(store.encode()).hexdigest()[:12]
    return f"{config.gateway_group_id}.tx.{host}-{digest}"


@contextlib.asynccontextmanager
async def open_output(
    settings: ProducerSettings, config: GatewayConfig
) -> AsyncIterator[Producer | TransactionalProducer]:
    """The batch's producer: transactional where the engine has transactions."""
    if config.kafka.capabilities.transactions:
        async with open_transactional_producer(
            settings, transactional_id=transactional_id(config)
        ) as producer:
            yield producer
    else:
        async with open_producer(settings) as plain:
            yield plain


async def all_acknowledged(producer: Sender, records: Sequence[OutboundRecord]) -> None:
    """Send the batch's records and wait for every ack, even after one failed, so no produce
    is still in flight when the batch is rolled back and read again; then raise the first
    failure."""
    if not records:
        return
    failures = [r for r in await producer.send_many(records) if isinstance(r, TransportError)]
    if failures:
        raise failures[0]
