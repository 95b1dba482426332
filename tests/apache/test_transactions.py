"""What aiokafka 0.14 can ask of Apache Kafka 4.3 beyond plain produce and consume.

aiokafka speaks ``InitProducerId`` v0 only (the embedded broker refuses it: no idempotence, no
transactions there). Against Kafka 4.3 it works: these tests show idempotent producers,
committed and aborted transactions seen through ``read_committed``, consumer offsets
committed inside a transaction, and a newer producer with the same transactional id fencing
the older one and aborting what it left open (a killed gateway's half-written batch). The
gateway relies on each of these (``broker.gateway._output``).
"""

from __future__ import annotations

import asyncio

import pytest

from broker.errors import TransportError
from broker.transport.kafka import (
    ConsumerSettings,
    ProducerSettings,
    Record,
    TopicSpec,
    create_topics,
    open_consumer,
    open_producer,
)
from broker.transport.testing import KafkaUnderTest
from broker.transport.transactions import open_transactional_producer

pytestmark = pytest.mark.kafka


def _producer(kafka: KafkaUnderTest) -> ProducerSettings:
    assert kafka.kafka_access.capabilities.transactions
    return kafka.producer_settings(client_id="txn-test")


def _topic(kafka: KafkaUnderTest, stem: str) -> str:
    topic = kafka.topic(stem)
    asyncio.run(create_topics(kafka.bootstrap, [TopicSpec(topic)], security=kafka.security))
    return topic


async def _read_all(
    kafka: KafkaUnderTest, topic: str, *, group: str, read_committed: bool, expect: int
) -> list[Record]:
    settings = ConsumerSettings(
        bootstrap=kafka.bootstrap,
        group_id=group,
        client_id="txn-reader",
        session_timeout_ms=kafka.session_timeout_ms,
        read_committed=read_committed,
        security=kafka.security,
    )
    async with open_consumer(settings, [topic]) as consumer:
        records = await consumer.read(expect, timeout_s=30.0)
        # and nothing more arrives
        records += await consumer.fetch(timeout_ms=1_500)
    return records


def test_an_idempotent_producer_starts_and_writes(kafka: KafkaUnderTest) -> None:
    """InitProducerId v0 is accepted: the producer gets an id and its record is stored."""
    topic = _topic(kafka, "idempotent")
    settings = _producer(kafka)
    assert settings.enable_idempotence

    async def run() -> int:
        async with open_producer(settings) as producer:
            return (await producer.send(topic, b"once")).offset

    assert asyncio.run(run()) == 0


def test_read_committed_sees_committed_transactions_and_never_aborted_ones(
    kafka: KafkaUnderTest,
) -> None:
    """Two transactions, one committed and one aborted: a read_committed reader gets the
    committed records only; a read_uncommitted one gets the aborted record as well."""
    topic = _topic(kafka, "txn")

    async def write() -> None:
        async with open_transactional_producer(
            _producer(kafka), transactional_id=kafka.group("txn")
        ) as producer:
            await producer.begin()
            await asyncio.gather(producer.send(topic, b"kept-1"), producer.send(topic, b"kept-2"))
            await producer.commit()
            await producer.begin()
            await producer.send(topic, b"aborted")
            await producer.abort()

    asyncio.run(write())
    committed = asyncio.run(
        _read_all(kafka, topic, group=kafka.group("rc"), read_committed=True, expect=2)
    )
    assert [r.value for r in committed] == [b"kept-1", b"kept-2"]
    everything = asyncio.run(
        _read_all(kafka, topic, group=kafka.group("ru"), read_committed=False, expect=3)
    )
    assert [r.value for r in everything] == [b"kept-1", b"kept-2", b"aborted"]


def test_offsets_committed_in_a_transaction_move_the_group_with_its_records(
    kafka: KafkaUnderTest,
) -> None:
    """Read, write the result and commit the read offsets in one transaction: the group
    resumes after what was committed, and the output is there."""
    source, sink = _topic(kafka, "source"), _topic(kafka, "sink")
    group = kafka.group("ctp")

    async def run() -> list[Record]:
        async with open_producer(_producer(kafka)) as plain:
            for value in (b"a", b"b", b"c"):
                await plain.send(source, value)
        settings = kafka.consumer_settings(group)
        async with (
            open_consumer(settings, [source]) as consumer,
            open_transactional_producer(
                _producer(kafka), transactional_id=kafka.group("ctp-tx")
            ) as producer,
        ):
            records = await consumer.read(2, timeout_s=30.0)
            await producer.begin()
            for record in records:
                await producer.send(sink, (record.value or b"") + b"!")
            await producer.commit_offsets(records, group_id=group)
            await producer.commit()
        async with open_consumer(settings, [source]) as again:
            return await again.read(1, timeout_s=30.0)

    rest = asyncio.run(run())
    assert [r.value for r in rest] == [b"c"]
    out = asyncio.run(
        _read_all(kafka, sink, group=kafka.group("out"), read_committed=True, expect=2)
    )
    assert [r.value for r in out] == [b"a!", b"b!"]


def test_a_new_producer_with_the_same_id_fences_the_old_and_aborts_its_transaction(
    kafka: KafkaUnderTest,
) -> None:
    """The old producer's open transaction (as a killed gateway leaves one) is aborted when
    its successor starts; the old one can no longer commit."""
    topic = _topic(kafka, "fence")
    transactional_id = kafka.group("fence")

    async def run() -> None:
        async with open_transactional_producer(
            _producer(kafka), transactional_id=transactional_id
        ) as old:
            await old.begin()
            await old.send(topic, b"left open")
            async with open_transactional_producer(
                _producer(kafka), transactional_id=transactional_id
            ) as new:
                await new.begin()
                await new.send(topic, b"from the successor")
                await new.commit()
                with pytest.raises(TransportError, match=r"ProducerFenced|InvalidProducerEpoch"):
                    await old.commit()

    asyncio.run(run())
    seen = asyncio.run(
        _read_all(kafka, topic, group=kafka.group("fenced"), read_committed=True, expect=1)
    )
    assert [r.value for r in seen] == [b"from the successor"]
