"""Kafka transactions: records and consumer offsets committed together, or not at all.

Only Apache Kafka serves them (``KafkaAccess.capabilities.transactions``); the embedded broker
refuses ``InitProducerId``. aiokafka 0.14 speaks ``InitProducerId`` v0, ``AddPartitionsToTxn``
v0, ``TxnOffsetCommit`` v0 and ``EndTxn`` v0; Kafka 4.3 serves all of them (KIP-896 removed
none of these versions), with the server-side checks of KIP-890 in place of the client's.

A :class:`TransactionalProducer` is fenced when a newer one with the same
``transactional_id`` starts: the newer ``InitProducerId`` aborts whatever the old one left
open, so a killed process's half-written batch is never seen by a ``read_committed`` reader.
``TxnOffsetCommit`` v0 carries no consumer-group generation (KIP-447 came with v3), so a
paused instance that lost its partitions in a rebalance could still commit them once: the
receivers' de-duplication stays in place for that.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from typing import Any, Final

import aiokafka

from broker.errors import TransportError, UsageError
from broker.transport.kafka import (
    Delivery,
    OutboundRecord,
    ProducerSettings,
    Record,
    _send_batch,
    _transport_errors,
)

__all__ = ["TransactionalProducer", "open_transactional_producer"]

#: how long the coordinator lets a transaction stay open before aborting it itself: it
#: bounds how long read_committed readers wait behind a producer that died and never came back
TRANSACTION_TIMEOUT_MS: Final = 30_000


class TransactionalProducer:
    """A started transactional producer. Obtain one from :func:`open_transactional_producer`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def begin(self) -> None:
        """Open a transaction: what is sent until :meth:`commit` becomes visible at once."""
        with _transport_errors("beginning a transaction"):
            await self._client.begin_transaction()

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Awaitable[Delivery]:
        """Send one record inside the open transaction; awaiting it waits for its acks."""
        return self._send(topic, value, key=key, headers=headers)

    async def _send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> Delivery:
        with _transport_errors(f"sending to {topic} in a transaction"):
            metadata = await self._client.send_and_wait(
                topic, value=value, key=key, headers=list(headers) or None
            )
        return Delivery(topic=metadata.topic, partition=metadata.partition, offset=metadata.offset)

    async def send_many(self, records: Sequence[OutboundRecord]) -> list[Delivery | TransportError]:
        """Send a batch inside the open transaction; one Delivery or TransportError each."""
        return await _send_batch(self._client, records, what="sending in a transaction")

    async def commit_offsets(self, records: Iterable[Record], *, group_id: str) -> None:
        """Make the group's position past ``records`` part of the open transaction."""
        positions: dict[aiokafka.TopicPartition, int] = {}
        for record in records:
            partition = aiokafka.TopicPartition(record.topic, record.partition)
            positions[partition] = max(positions.get(partition, 0), record.offset + 1)
        if positions:
            with _transport_errors("adding offsets to a transaction"):
                await self._client.send_offsets_to_transaction(positions, group_id)

    async def commit(self) -> None:
        """Commit the open transaction: its records and offsets become visible together."""
        with _transport_errors("committing a transaction"):
            await self._client.commit_transaction()

    async def abort(self) -> None:
        """Abort the open transaction: read_committed readers never see its records.

        A producer whose transaction failed fatally (aiokafka's sender gave up, as when every
        node of the cluster stops at once) cannot abort, and aiokafka says so with an
        AssertionError; that is a TransportError like any other, so the caller goes on to a
        new producer instead of stopping (the coordinator aborts the old transaction)."""
        with _transport_errors("aborting a transaction"):
            try:
                await self._client.abort_transaction()
            except AssertionError as exc:
                raise TransportError(
                    f"aborting a transaction: this producer can no longer abort ({exc})"
                ) from exc


@contextlib.asynccontextmanager
async def open_transactional_producer(
    settings: ProducerSettings, *, transactional_id: str
) -> AsyncIterator[TransactionalProducer]:
    """A started producer with ``transactional_id`` (idempotent, acks=all); stopped on the way
    out. Starting it aborts any transaction a previous holder of the id left open."""
    if not settings.enable_idempotence:
        raise UsageError("a transactional producer is idempotent: set enable_idempotence")
    if not transactional_id:
        raise UsageError("a transactional producer needs a transactional id")
    client = aiokafka.AIOKafkaProducer(
        **settings.client_options(),
        transactional_id=transactional_id,
        transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
    )
    try:
        with _transport_errors(f"starting transactional producer {transactional_id}"):
            await client.start()
        yield TransactionalProducer(client)
    finally:
        with _transport_errors("stopping a transactional producer"):
            await client.stop()
