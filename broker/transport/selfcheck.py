"""A produce-then-consume round trip that proves a broker really works end to end.

It exercises what the project relies on: topic creation, producing with ``acks=all``, a
consumer group joining, reading from the earliest offset, and a manual commit.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence

from broker.errors import TransportError
from broker.transport.kafka import (
    ConsumerSettings,
    Delivery,
    ProducerSettings,
    TopicSpec,
    create_topics,
    open_consumer,
    open_producer,
)
from broker.transport.security import PLAINTEXT, ClientSecurity

__all__ = ["RoundTrip", "round_trip"]


@dataclasses.dataclass(frozen=True, slots=True)
class RoundTrip:
    """What a successful round trip did, and how long each stage took."""

    topic: str
    group_id: str
    deliveries: tuple[Delivery, ...]
    consumed: tuple[bytes | None, ...]
    produce_s: float
    consume_s: float


async def round_trip(
    bootstrap: str,
    values: Sequence[bytes],
    *,
    topic_prefix: str = "broker.selfcheck",
    partitions: int = 1,
    session_timeout_ms: int = 3_000,
    timeout_s: float = 30.0,
    security: ClientSecurity = PLAINTEXT,
    idempotence: bool = False,
) -> RoundTrip:
    """Create a fresh topic, produce ``values``, read them back in a fresh group, commit.

    Raises :class:`TransportError` if the broker cannot be reached, or if the records read
    back are not exactly those acknowledged, at the same partitions and offsets.
    """
    suffix = uuid.uuid4().hex[:12]
    topic = f"{topic_prefix}.{suffix}"
    group_id = f"broker-selfcheck-{suffix}"
    await create_topics(bootstrap, [TopicSpec(topic, partitions=partitions)], security=security)

    started = time.monotonic()
    async with open_producer(
        ProducerSettings(
            bootstrap=bootstrap,
            client_id="broker-selfcheck",
            enable_idempotence=idempotence,
            security=security,
        )
    ) as producer:
        deliveries = tuple([await producer.send(topic, value) for value in values])
    produced = time.monotonic()

    settings = ConsumerSettings(
        bootstrap=bootstrap,
        group_id=group_id,
        client_id="broker-selfcheck",
        session_timeout_ms=session_timeout_ms,
        security=security,
    )
    async with open_consumer(settings, [topic]) as consumer:
        records = await consumer.read(len(values), timeout_s=timeout_s)
        await consumer.commit(records)
    consumed = tuple(record.value for record in records)
    finished = time.monotonic()

    sent = {(d.partition, d.offset): value for d, value in zip(deliveries, values, strict=True)}
    received = {(record.partition, record.offset): record.value for record in records}
    if received != sent:
        raise TransportError(f"records read back from {topic} differ from those sent")
    return RoundTrip(
        topic=topic,
        group_id=group_id,
        deliveries=deliveries,
        consumed=consumed,
        produce_s=produced - started,
        consume_s=finished - produced,
    )
