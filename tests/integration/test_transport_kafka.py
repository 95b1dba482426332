"""The Kafka seam against a real broker (the one BROKER_TEST_KAFKA chooses)."""

from __future__ import annotations

import pytest

from broker.errors import TransportError
from broker.transport.kafka import (
    Delivery,
    OutboundRecord,
    TopicSpec,
    create_topics,
    open_consumer,
    open_producer,
)
from broker.transport.probe import answers_api_versions
from broker.transport.selfcheck import round_trip
from broker.transport.testing import KafkaUnderTest

pytestmark = pytest.mark.kafka


def test_the_broker_answers_the_kafka_protocol(kafka: KafkaUnderTest) -> None:
    """The fixture's bootstrap address answers ApiVersions."""
    host, _, port = kafka.bootstrap.rpartition(":")
    assert answers_api_versions(host, int(port), timeout_s=5.0) is True


async def test_records_come_back_with_keys_headers_and_offsets(kafka: KafkaUnderTest) -> None:
    """Produced with acks=all, read by a fresh group from the earliest offset, byte for byte."""
    topic = kafka.topic("roundtrip")
    await create_topics(kafka.bootstrap, [TopicSpec(topic, partitions=1)])
    sent = [
        (b"k1", b"first", (("trace", b"\x00\x01"),)),
        (None, b"", ()),
        (b"k2", b"\xff" * 300, (("a", b""), ("b", b"2"))),
    ]
    async with open_producer(kafka.producer_settings()) as producer:
        deliveries = [
            await producer.send(topic, value, key=key, headers=headers)
            for key, value, headers in sent
        ]
    assert [d.offset for d in deliveries] == [0, 1, 2]

    async with open_consumer(kafka.consumer_settings(kafka.group("roundtrip")), [topic]) as reader:
        records = await reader.read(len(sent), timeout_s=30)
        await reader.commit(records)
    assert [(r.key, r.value, r.headers) for r in records] == sent
    assert [(r.partition, r.offset) for r in records] == [(0, 0), (0, 1), (0, 2)]


async def test_a_batch_is_acknowledged_record_by_record_in_order(kafka: KafkaUnderTest) -> None:
    """send_many hands a whole batch over at once and answers each record with where it was
    stored (acks=all); a record for a topic that cannot take it is that record's
    TransportError, and the records around it are still acknowledged."""
    topic = kafka.topic("batch")
    await create_topics(kafka.bootstrap, [TopicSpec(topic, partitions=1)])
    batch = [OutboundRecord(topic, b"v%d" % i, key=b"k%d" % i) for i in range(200)]
    oversized = OutboundRecord(topic, b"x" * (kafka.producer_settings().max_request_size + 1))
    async with open_producer(kafka.producer_settings()) as producer:
        results = await producer.send_many([*batch[:100], oversized, *batch[100:]])
    assert isinstance(results[100], TransportError)
    acknowledged = [r for r in results if isinstance(r, Delivery)]
    assert [d.offset for d in acknowledged] == list(range(200))
    async with open_consumer(kafka.consumer_settings(kafka.group("batch")), [topic]) as reader:
        records = await reader.read(200, timeout_s=30)
    assert [(r.key, r.value) for r in records] == [(b.key, b.value) for b in batch]


async def test_lag_is_what_the_consumer_has_not_fetched_yet(kafka: KafkaUnderTest) -> None:
    """Of 50 records, 20 read: 30 behind, as the broker reports the partition's end; all
    read: none behind."""
    topic = kafka.topic("lag")
    await create_topics(kafka.bootstrap, [TopicSpec(topic, partitions=1)])
    async with open_producer(kafka.producer_settings()) as producer:
        await producer.send_many([OutboundRecord(topic, b"%d" % i) for i in range(50)])
    async with open_consumer(kafka.consumer_settings(kafka.group("lag")), [topic]) as reader:
        assert reader.lag() == {}  # nothing fetched yet: the position is not known here
        assert len(await reader.read(20, timeout_s=30)) == 20
        assert reader.lag() == {topic: 30}
        await reader.read(30, timeout_s=30)
        assert reader.lag() == {topic: 0}


async def test_creating_an_existing_topic_is_not_an_error(kafka: KafkaUnderTest) -> None:
    """create_topics is idempotent: provisioning can run on every start."""
    spec = TopicSpec(kafka.topic("twice"), partitions=2)
    await create_topics(kafka.bootstrap, [spec])
    await create_topics(kafka.bootstrap, [spec])


async def test_records_that_never_come_are_a_transport_error(kafka: KafkaUnderTest) -> None:
    """Waiting for records that are not there ends with our error, naming what arrived."""
    topic = kafka.topic("empty")
    await create_topics(kafka.bootstrap, [TopicSpec(topic)])
    async with open_consumer(kafka.consumer_settings(kafka.group("empty")), [topic]) as reader:
        with pytest.raises(TransportError, match="received 0 of 1 records"):
            await reader.read(1, timeout_s=0.2)


async def test_the_self_check_round_trip(kafka: KafkaUnderTest) -> None:
    """The round trip behind `broker demo` succeeds on this broker, over several partitions."""
    values = [f"value {n}".encode() for n in range(12)]
    result = await round_trip(
        kafka.bootstrap,
        values,
        partitions=3,
        topic_prefix=kafka.topic("selfcheck"),
        session_timeout_ms=kafka.session_timeout_ms,
    )
    assert sorted(v or b"" for v in result.consumed) == sorted(values)
    assert len({(d.partition, d.offset) for d in result.deliveries}) == len(values)
