"""The embedded broker's storage: with ``S3Storage`` on a loopback S3 server, a topic's records
and a group's committed offsets survive a bounce (SIGTERM or SIGKILL, restarted on the same
port); with the default memory engine they do not. Bad storage settings are refused with one
clear error before any process starts."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import aiokafka
import pytest

from broker.errors import EmbeddedBrokerError
from broker.transport.embedded import EmbeddedBroker, free_port
from broker.transport.kafka import Record, TopicSpec, create_topics, open_consumer, open_producer
from broker.transport.objectstore import LoopbackS3, S3Storage
from broker.transport.testing import KafkaUnderTest

pytestmark = [pytest.mark.kafka]

RECORDS = 40
COMMITTED = 15


@pytest.fixture(scope="module")
def s3() -> Iterator[LoopbackS3]:
    """One loopback S3 server for the module; each test uses a bucket of its own."""
    with LoopbackS3() as server:
        yield server


def _kafka(broker: EmbeddedBroker) -> KafkaUnderTest:
    return KafkaUnderTest(bootstrap=broker.bootstrap, backend="embedded")


async def _produce(kafka: KafkaUnderTest, topic: str, values: range) -> None:
    async with open_producer(kafka.producer_settings()) as producer:
        for value in values:
            await producer.send(topic, f"v{value:04d}".encode(), key=b"k")


async def _read(kafka: KafkaUnderTest, topic: str, group: str, count: int) -> list[Record]:
    async with open_consumer(kafka.consumer_settings(group), [topic]) as consumer:
        return await consumer.read(count, timeout_s=30)


async def _read_and_commit(
    kafka: KafkaUnderTest, topic: str, group: str, count: int, *, commit: int
) -> list[Record]:
    async with open_consumer(kafka.consumer_settings(group), [topic]) as consumer:
        records = await consumer.read(count, timeout_s=30)
        await consumer.commit(records[:commit])
        return records


async def _topics(kafka: KafkaUnderTest) -> set[str]:
    # a group-less consumer's metadata lists every topic the broker knows
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None)
    await consumer.start()
    try:
        return set(await consumer.topics())
    finally:
        await consumer.stop()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_records_and_committed_offsets_survive_a_bounce_on_s3(s3: LoopbackS3, how: str) -> None:
    """40 records and a group committed at 15 are all there after the broker is stopped
    (``how``) and restarted on the same port and bucket: a fresh group reads the same 40
    values at the same offsets followed by 10 produced after the bounce at offsets 40-49
    (nothing overwritten), and the committed group resumes at offset 15."""
    bucket = f"bounce-{how.lower()}"
    broker = EmbeddedBroker(port=free_port(outside_ephemeral=True), storage=s3.add_bucket(bucket))
    with broker:
        kafka = _kafka(broker)
        topic, group = kafka.topic("bounce"), kafka.group("bounce")
        asyncio.run(create_topics(kafka.bootstrap, [TopicSpec(name=topic, partitions=1)]))
        asyncio.run(_produce(kafka, topic, range(RECORDS)))
        before = asyncio.run(_read_and_commit(kafka, topic, group, RECORDS, commit=COMMITTED))
        port, pid = broker.port, broker.pid

        if how == "SIGTERM":
            broker.stop()
        else:
            broker.kill()
        assert not broker.is_running()
        broker.start()
        assert (broker.port, broker.storage_url) == (port, f"s3://{bucket}/")
        assert broker.pid != pid

        # records produced after the bounce follow on: nothing before them was overwritten
        asyncio.run(_produce(kafka, topic, range(RECORDS, RECORDS + 10)))
        everything = asyncio.run(_read(kafka, topic, kafka.group("fresh"), RECORDS + 10))
        assert [(r.offset, r.value) for r in before] == [
            (i, f"v{i:04d}".encode()) for i in range(RECORDS)
        ]
        assert [(r.offset, r.value) for r in everything] == [
            (i, f"v{i:04d}".encode()) for i in range(RECORDS + 10)
        ]
        resumed = asyncio.run(_read(kafka, topic, group, RECORDS + 10 - COMMITTED))
        assert [r.offset for r in resumed] == list(range(COMMITTED, RECORDS + 10))


def test_memory_storage_loses_topics_on_a_bounce() -> None:
    """The default engine keeps nothing: after a bounce on the same port the topic is gone
    (the contrast that makes the S3 test meaningful)."""
    broker = EmbeddedBroker(port=free_port(outside_ephemeral=True))
    assert broker.storage_url == "memory://tansu/"
    with broker:
        kafka = _kafka(broker)
        topic = kafka.topic("memory")
        asyncio.run(create_topics(kafka.bootstrap, [TopicSpec(name=topic, partitions=1)]))
        assert topic in asyncio.run(_topics(kafka))
        port = broker.port
        broker.stop()
        broker.start()
        assert broker.port == port
        assert topic not in asyncio.run(_topics(kafka))


def test_aws_variables_in_the_environment_do_not_redirect_the_broker(
    s3: LoopbackS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's AWS_* and proxy variables (here pointing at a dead endpoint and proxy)
    are not inherited: the broker stores in the bucket it was given."""
    dead = f"http://127.0.0.1:{free_port()}"
    for name, value in {
        "AWS_ENDPOINT": dead,
        "AWS_ENDPOINT_URL": dead,
        "AWS_ACCESS_KEY_ID": "operator",
        "AWS_PROFILE": "production",
        "HTTP_PROXY": dead,
        "http_proxy": dead,
    }.items():
        monkeypatch.setenv(name, value)
    with EmbeddedBroker(port=0, storage=s3.storage()) as broker:
        kafka = _kafka(broker)
        topic = kafka.topic("env")
        asyncio.run(create_topics(kafka.bootstrap, [TopicSpec(name=topic, partitions=1)]))
        asyncio.run(_produce(kafka, topic, range(3)))
        records = asyncio.run(_read(kafka, topic, kafka.group("env"), 3))
        assert [r.value for r in records] == [b"v0000", b"v0001", b"v0002"]


@pytest.mark.parametrize(
    ("bucket", "endpoint"),
    [
        pytest.param("tansu", "https://127.0.0.1:9000", id="https-not-loopback-http"),
        pytest.param("tansu", "http://10.0.0.5:9000", id="remote-address"),
        pytest.param("tansu", "http://s3.example.org:9000", id="remote-name"),
        pytest.param("tansu", "http://127.0.0.1", id="no-port"),
        pytest.param("tansu", "http://127.0.0.1:9000/prefix", id="a-path"),
        pytest.param("tansu", "http://127.0.0.1:99999", id="port-out-of-range"),
        pytest.param("Tansu", "http://127.0.0.1:9000", id="uppercase-bucket"),
        pytest.param("ab", "http://127.0.0.1:9000", id="short-bucket"),
        pytest.param("tan/su", "http://127.0.0.1:9000", id="slash-in-bucket"),
    ],
)
def test_bad_storage_settings_are_refused(bucket: str, endpoint: str) -> None:
    """Only a valid bucket on a plain-HTTP loopback endpoint with a port is accepted."""
    with pytest.raises(EmbeddedBrokerError):
        S3Storage(bucket=bucket, endpoint=endpoint)


def test_storage_settings_name_the_bucket_and_hide_the_secret() -> None:
    """The engine URL and the explicit environment come from the settings; the secret is
    never in the repr."""
    storage = S3Storage(
        bucket="tansu", endpoint="http://localhost:9000/", secret_access_key="hush-hush"
    )
    assert storage.url == "s3://tansu/"
    env = storage.environment()
    assert env["AWS_ENDPOINT"] == "http://localhost:9000"
    assert env["AWS_ALLOW_HTTP"] == "true"
    assert env["AWS_SECRET_ACCESS_KEY"] == "hush-hush"
    assert "hush-hush" not in repr(storage)


def test_a_bounce_keeps_a_port_outside_the_ephemeral_range() -> None:
    """``free_port(outside_ephemeral=True)`` lies below the kernel's ephemeral range, so a
    reconnecting client can never be handed the broker's port as its own."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(free_port(outside_ephemeral=True) < low for _ in range(20))


def test_a_missing_moto_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without moto installed the loopback S3 server does not start and says how to get it."""
    monkeypatch.setitem(sys.modules, "moto", None)  # what the import system sees when absent
    server = LoopbackS3()
    with pytest.raises(EmbeddedBrokerError, match=r"moto\[server\]"):
        server.start()
    assert not server.is_running()
