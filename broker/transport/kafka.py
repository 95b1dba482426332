"""The Kafka seam: the only module that imports aiokafka.

aiokafka's defaults do not suit us (``acks=1``, auto-commit, ``latest`` offset reset), so every
client here is built from a settings object that states each option explicitly. Every aiokafka
failure becomes :class:`~broker.errors.TransportError` in :func:`_transport_errors`, the one
place where exceptions are mapped.

A consumer never raises for what a record contains: a record aiokafka cannot decode (a header
key that is not UTF-8, a batch that fails its CRC, ...) arrives as a :class:`Record` whose
``defect`` says what is wrong (:mod:`broker.transport._records`), so a daemon can refuse it and
move its offset on instead of failing on it after every restart. Sizes come from the one table
of limits (:mod:`broker.limits`).

What the embedded broker cannot do shapes the defaults: idempotent producers are off unless
asked for (Tansu refuses them; callers ask by the engine's capabilities,
``broker.transport.access``); consumers read committed records only, which Tansu, having no
transactions, serves like any read; and nothing here calls ``end_offsets()`` (Tansu
answers it wrongly); a reader starts from ``earliest`` or its group's committed offsets.
Transactions are in :mod:`broker.transport.transactions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import aiokafka
import aiokafka.admin
import aiokafka.errors

from broker import limits
from broker.errors import TransportError, UsageError
from broker.transport import _records
from broker.transport.security import PLAINTEXT, ClientSecurity

__all__ = [
    "Consumer",
    "ConsumerSettings",
    "Delivery",
    "OutboundRecord",
    "Producer",
    "ProducerSettings",
    "Record",
    "TopicSpec",
    "create_topics",
    "open_consumer",
    "open_producer",
    "open_reader",
]

_TOPIC_ALREADY_EXISTS: Final = 36
#: how old cluster metadata may get before a client asks again. aiokafka's default is five
#: minutes, and it does not ask sooner when a ListOffsets request fails with
#: NotLeaderForPartition: a consumer given a partition while its leader moved kept asking the
#: old leader for minutes (a node cut off and healed, tests/apache/test_partitioned_node.py).
METADATA_MAX_AGE_MS: Final = 10_000

# aiokafka's fetcher reads batches through our tolerant reader from now on (process-wide:
# it changes nothing for the records aiokafka decodes itself).
_records.install()


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ProducerSettings:
    """A producer's options. Every record is acknowledged by all in-sync replicas.

    ``enable_idempotence`` stays off unless asked for: the embedded broker refuses it.
    """

    bootstrap: str
    client_id: str
    enable_idempotence: bool = False
    request_timeout_ms: int = 30_000
    linger_ms: int = 5
    max_batch_size: int = 262_144
    max_request_size: int = limits.KAFKA_MESSAGE_MAX_BYTES
    security: ClientSecurity = PLAINTEXT
    """TLS / SASL towards the brokers; its repr never shows the password."""

    def __post_init__(self) -> None:
        self.security.check_bootstrap(self.bootstrap)
        _require_positive(request_timeout_ms=self.request_timeout_ms)
        _require_positive(max_batch_size=self.max_batch_size)
        _require_positive(max_request_size=self.max_request_size)
        if self.linger_ms < 0:
            raise UsageError(f"linger_ms must be >= 0, not {self.linger_ms}")

    def client_options(self) -> dict[str, object]:
        """The keyword arguments for ``aiokafka.AIOKafkaProducer``, none left to its defaults."""
        return {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "acks": "all",
            "enable_idempotence": self.enable_idempotence,
            "request_timeout_ms": self.request_timeout_ms,
            "linger_ms": self.linger_ms,
            "max_batch_size": self.max_batch_size,
            "max_request_size": self.max_request_size,
            "compression_type": None,
            "metadata_max_age_ms": METADATA_MAX_AGE_MS,
        } | self.security.client_options()


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ConsumerSettings:
    """A group consumer's options. Offsets are committed only by an explicit :meth:`commit`.

    A new group starts from the earliest record: ``latest`` is unreliable on the embedded
    broker, and a reader that must not miss records cannot start at the end anyway.
    ``heartbeat_interval_ms`` defaults to a quarter of ``session_timeout_ms``.
    """

    bootstrap: str
    group_id: str
    client_id: str
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int | None = None
    request_timeout_ms: int = 40_000
    max_poll_interval_ms: int = 300_000
    fetch_max_wait_ms: int = 500
    #: at least the largest record batch the broker accepts, so no record is too big to fetch
    max_partition_fetch_bytes: int = limits.CONSUMER_PARTITION_FETCH_BYTES
    fetch_max_bytes: int = limits.CONSUMER_FETCH_MAX_BYTES
    read_committed: bool = True
    """Skip the records of aborted transactions and wait for open ones to end. Every reader
    of a topic the gateway writes must agree on this, or two auditors would see two
    different logs: so it is on for all (the embedded broker, without transactions, serves
    read_committed like read_uncommitted)."""
    security: ClientSecurity = PLAINTEXT
    """TLS / SASL towards the brokers; its repr never shows the password."""

    def __post_init__(self) -> None:
        self.security.check_bootstrap(self.bootstrap)
        _require_positive(session_timeout_ms=self.session_timeout_ms)
        _require_positive(request_timeout_ms=self.request_timeout_ms)
        _require_positive(max_poll_interval_ms=self.max_poll_interval_ms)
        _require_positive(max_partition_fetch_bytes=self.max_partition_fetch_bytes)
        if self.fetch_max_bytes < self.max_partition_fetch_bytes:
            raise UsageError("fetch_max_bytes must be at least max_partition_fetch_bytes")
        if not 0 < self.heartbeat_ms < self.session_timeout_ms:
            raise UsageError(
                f"heartbeat_interval_ms must be between 0 and session_timeout_ms "
                f"({self.session_timeout_ms}), not {self.heartbeat_ms}"
            )

    @property
    def heartbeat_ms(self) -> int:
        """The heartbeat interval in effect."""
        if self.heartbeat_interval_ms is not None:
            return self.heartbeat_interval_ms
        return max(1, self.session_timeout_ms // 4)

    def client_options(self) -> dict[str, object]:
        """The keyword arguments for ``aiokafka.AIOKafkaConsumer``, none left to its defaults."""
        return {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "group_id": self.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed" if self.read_committed else "read_uncommitted",
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_ms,
            "request_timeout_ms": self.request_timeout_ms,
            "max_poll_interval_ms": self.max_poll_interval_ms,
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
            "max_partition_fetch_bytes": self.max_partition_fetch_bytes,
            "fetch_max_bytes": self.fetch_max_bytes,
            "check_crcs": True,
            "exclude_internal_topics": True,
            "metadata_max_age_ms": METADATA_MAX_AGE_MS,
        } | self.security.client_options()


@dataclasses.dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create: its name, partition count, replication factor and configs."""

    name: str
    partitions: int = 1
    replication_factor: int = 1
    configs: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """Where an acknowledged record was stored."""

    topic: str
    partition: int
    offset: int


@dataclasses.dataclass(frozen=True, slots=True)
class OutboundRecord:
    """A record to produce: :meth:`Producer.send_many` takes a batch of them."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """A record read from Kafka, as raw bytes: parsing is the caller's job.

    ``defect`` is None for a record read whole. Otherwise it says why the record is not one
    any of ours could have written (a header key that is not UTF-8, a header with a null
    value, a batch that failed its CRC or could not be decoded): ``key``, ``value`` and
    ``headers`` then hold what could be read (header names with their undecodable bytes
    shown as ``\\xNN``, null header values as ``b""``), and the consumer must refuse it.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int
    defect: str | None = None


#: an idempotent producer whose sequence the broker no longer accepts is finished: aiokafka
#: stops its sender for good (it cannot bump its epoch: InitProducerId v0 only), so every
#: later send would fail the same way. Seen after a whole cluster restarts mid-stream.
_LOST_PRODUCER_STATE: Final = (
    aiokafka.errors.OutOfOrderSequenceNumber,
    aiokafka.errors.UnknownProducerId,
    aiokafka.errors.InvalidProducerEpoch,
)


class Producer:
    """A started producer. Obtain one from :func:`open_producer`.

    If the broker stops accepting its idempotent sequence, the send fails (ambiguously: the
    caller sends again, and de-duplication absorbs a repeat) and the producer replaces its
    client with a fresh one under a new producer id, so it never stays stuck.
    """

    def __init__(self, client: Any, settings: ProducerSettings | None = None) -> None:
        self._client = client
        self._settings = settings
        self._renewal = asyncio.Lock()
        #: how many times the client was replaced after losing its producer state
        self.renewals = 0

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Delivery:
        """Send one record and wait until every in-sync replica has acknowledged it."""
        client = self._client
        try:
            with _transport_errors(f"sending to {topic}"):
                metadata = await client.send_and_wait(
                    topic, value=value, key=key, headers=list(headers) or None
                )
        except TransportError as exc:
            if isinstance(exc.__cause__, _LOST_PRODUCER_STATE):
                await self._renew(client)
            raise
        return Delivery(topic=metadata.topic, partition=metadata.partition, offset=metadata.offset)

    async def send_many(self, records: Sequence[OutboundRecord]) -> list[Delivery | TransportError]:
        """Send a batch and wait until every in-sync replica has acknowledged each record;
        one result each, in order: its :class:`Delivery`, or the TransportError that leaves
        it unacknowledged (ambiguous: it may still have been written)."""
        client = self._client
        results = await _send_batch(client, records, what="sending")
        lost = any(
            isinstance(r, TransportError) and isinstance(r.__cause__, _LOST_PRODUCER_STATE)
            for r in results
        )
        if lost:
            await self._renew(client)
        return results

    async def _renew(self, failed: Any) -> None:
        """Replace ``failed`` by a started client (once, however many sends saw it fail)."""
        if self._settings is None:
            return
        async with self._renewal:
            if self._client is not failed:
                return  # another send renewed it already
            fresh = aiokafka.AIOKafkaProducer(**self._settings.client_options())
            try:
                with _transport_errors("restarting a producer"):
                    await fresh.start()
            except BaseException:
                with contextlib.suppress(aiokafka.errors.KafkaError, OSError):
                    await fresh.stop()
                raise
            self._client, self.renewals = fresh, self.renewals + 1
        # its sender task has died with the error: stopping it reports that error again
        with contextlib.suppress(aiokafka.errors.KafkaError, OSError):
            await failed.stop()

    async def close(self) -> None:
        """Flush and stop the current client."""
        with _transport_errors("stopping a producer"):
            await self._client.stop()


class Consumer:
    """A started group consumer. Obtain one from :func:`open_consumer`."""

    def __init__(self, client: Any) -> None:
        self._client = client
        #: per partition, the offset after the last record fetched from it
        self._next: dict[Any, int] = {}

    async def fetch(self, *, timeout_ms: int, max_records: int | None = None) -> list[Record]:
        """The records available within ``timeout_ms`` (possibly none), in offset order."""
        with _transport_errors("fetching records"):
            batches = await self._client.getmany(timeout_ms=timeout_ms, max_records=max_records)
        for partition, messages in batches.items():
            if messages:
                self._next[partition] = messages[-1].offset + 1
        return [_record(message) for messages in batches.values() for message in messages]

    def lag(self) -> dict[str, int]:
        """Records not yet fetched, per topic (summed over the partitions assigned here), as
        the broker last reported each partition's end (its last stable offset: records of a
        transaction still open are not readable yet). A partition nothing was fetched from
        since it was assigned is left out: its position is not known here yet."""
        assigned = self._client.assignment()
        for partition in [p for p in self._next if p not in assigned]:
            del self._next[partition]  # moved to another member by a rebalance
        behind: dict[str, int] = {}
        for partition, position in self._next.items():
            end = self._client.last_stable_offset(partition)
            if end is None or end < 0:  # a broker that reports no stable offset
                end = self._client.highwater(partition)
            if end is not None:
                behind[partition.topic] = behind.get(partition.topic, 0) + max(end - position, 0)
        return behind

    async def read(self, count: int, *, timeout_s: float) -> list[Record]:
        """Exactly ``count`` records, or :class:`TransportError` if they do not come in time.

        The first call includes the group join (``session_timeout_ms / 2`` on the embedded
        broker).
        """
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                raise TransportError(
                    f"received {len(records)} of {count} records within {timeout_s:g} s"
                )
            records += await self.fetch(
                timeout_ms=min(remaining_ms, 1000), max_records=count - len(records)
            )
        return records

    async def commit(self, records: Iterable[Record]) -> None:
        """Commit the group's position past ``records``: call it once their effect is durable."""
        positions: dict[aiokafka.TopicPartition, int] = {}
        for record in records:
            partition = aiokafka.TopicPartition(record.topic, record.partition)
            positions[partition] = max(positions.get(partition, 0), record.offset + 1)
        if not positions:
            return
        with _transport_errors("committing offsets"):
            await self._client.commit(positions)


async def _send_batch(
    client: Any, records: Sequence[OutboundRecord], *, what: str
) -> list[Delivery | TransportError]:
    """Hand every record of the batch to aiokafka's accumulator, then await their acks: the
    records share produce requests as ``send`` called concurrently would, without a task and
    a coroutine per record. (For this package's producers: plain and transactional.)"""
    pending: list[Any] = []
    for record in records:
        try:
            with _transport_errors(f"{what} to {record.topic}"):
                pending.append(
                    await client.send(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        headers=list(record.headers) or None,
                    )
                )
        except TransportError as exc:
            pending.append(exc)
    results: list[Delivery | TransportError] = []
    for record, future in zip(records, pending, strict=True):
        if isinstance(future, TransportError):
            results.append(future)
            continue
        try:
            with _transport_errors(f"{what} to {record.topic}"):
                metadata = await future
        except TransportError as exc:
            results.append(exc)
            continue
        results.append(
            Delivery(topic=metadata.topic, partition=metadata.partition, offset=metadata.offset)
        )
    return results


@contextlib.asynccontextmanager
async def open_producer(settings: ProducerSettings) -> AsyncIterator[Producer]:
    """A started producer for the ``async with`` block; flushed and stopped on the way out."""
    client = aiokafka.AIOKafkaProducer(**settings.client_options())
    try:
        with _transport_errors(f"connecting a producer to {settings.bootstrap}"):
            await client.start()
    except BaseException:
        # stop() also after a failed start(): aiokafka leaves the client half-open otherwise
        with _transport_errors("stopping a producer"):
            await client.stop()
        raise
    producer = Producer(client, settings)
    try:
        yield producer
    finally:
        await producer.close()


@contextlib.asynccontextmanager
async def open_consumer(
    settings: ConsumerSettings, topics: Sequence[str]
) -> AsyncIterator[Consumer]:
    """A started group consumer subscribed to ``topics``; it leaves the group on the way out."""
    if not topics:
        raise UsageError("a consumer needs at least one topic")
    client = aiokafka.AIOKafkaConsumer(*topics, **settings.client_options())
    try:
        with _transport_errors(f"connecting a consumer to {settings.bootstrap}"):
            await client.start()
        yield Consumer(client)
    finally:
        with _transport_errors("stopping a consumer"):
            await client.stop()


@contextlib.asynccontextmanager
async def open_reader(
    settings: ConsumerSettings, topic: str, *, offset: int
) -> AsyncIterator[Consumer]:
    """A started consumer of partition 0 of the one-partition ``topic``, reading from
    ``offset`` on (an offset past the end reads from the earliest record, as a new group
    would). It is assigned the partition itself: it joins no group and commits nothing."""
    if offset < 0:
        raise UsageError(f"an offset is >= 0, not {offset}")
    client = aiokafka.AIOKafkaConsumer(**settings.client_options())
    try:
        with _transport_errors(f"connecting a consumer to {settings.bootstrap}"):
            await client.start()
            partition = aiokafka.TopicPartition(topic, 0)
            client.assign([partition])
            client.seek(partition, offset)
        yield Consumer(client)
    finally:
        with _transport_errors("stopping a consumer"):
            await client.stop()


async def create_topics(
    bootstrap: str,
    topics: Sequence[TopicSpec],
    *,
    client_id: str = "broker-admin",
    request_timeout_ms: int = 30_000,
    security: ClientSecurity = PLAINTEXT,
) -> None:
    """Create ``topics``; a topic that already exists is left as it is, not an error."""
    if not topics:
        security.check_bootstrap(bootstrap)
        return
    async with open_admin(
        bootstrap, client_id=client_id, request_timeout_ms=request_timeout_ms, security=security
    ) as admin:
        new_topics = [
            aiokafka.admin.NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                topic_configs=dict(spec.configs),
            )
            for spec in topics
        ]
        with _transport_errors("creating topics"):
            response = await admin.create_topics(new_topics, timeout_ms=request_timeout_ms)
    # the broker reports per-topic failures in the response, not as an exception
    for name, error_code, *detail in response.topic_errors:
        if error_code not in (0, _TOPIC_ALREADY_EXISTS):
            reason = detail[0] if detail and detail[0] else f"error code {error_code}"
            raise TransportError(f"cannot create topic {name}: {reason}")


@contextlib.asynccontextmanager
async def open_admin(
    bootstrap: str,
    *,
    client_id: str = "broker-admin",
    request_timeout_ms: int = 30_000,
    security: ClientSecurity = PLAINTEXT,
) -> AsyncIterator[Any]:
    """A started aiokafka admin client for the block (for this package's own modules)."""
    security.check_bootstrap(bootstrap)
    admin = aiokafka.admin.AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        request_timeout_ms=request_timeout_ms,
        **security.client_options(),
    )
    try:
        with _transport_errors(f"connecting an admin client to {bootstrap}"):
            await admin.start()
        yield admin
    finally:
        with _transport_errors("stopping an admin client"):
            await admin.close()


@contextlib.contextmanager
def _transport_errors(action: str) -> Iterator[None]:
    """The one place where aiokafka's failures become :class:`TransportError`."""
    try:
        yield
    except aiokafka.errors.KafkaError as exc:
        raise TransportError(f"{action}: {_describe(exc)}") from exc
    except (OSError, TimeoutError) as exc:
        raise TransportError(f"{action}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _record(message: Any) -> Record:
    defect = _records.defect_of(message)
    if defect is None:
        headers = tuple((name, bytes(value)) for name, value in message.headers)
    else:
        headers = tuple(
            (
                name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"),
                b"" if value is None else bytes(value),
            )
            for name, value in message.headers
        )
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=headers,
        timestamp_ms=message.timestamp,
        defect=defect,
    )


def _require_positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise UsageError(f"{name} must be positive, not {value}")
