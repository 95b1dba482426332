"""The operator's view of the quarantine topic: list, show, and release for re-evaluation.

Reading uses a throwaway consumer group that never commits, from the earliest offset, and
stops when a fetch brings nothing within a short idle time: ``end_offsets()`` is never
consulted (the embedded broker answers it wrongly). Release re-produces the ORIGINAL envelope
bytes to the outbox they came from, with a header naming the released record, so the gateway
decides again under the accords and keys in force now. Release is never a bypass: a record
that is still refused is quarantined again, under a new id.
"""

from __future__ import annotations

import time
import uuid

import structlog

from broker import errors
from broker.config import Config, kafka_client_security, quarantine_topic
from broker.pipeline.records import (
    QuarantineRecord,
    max_quarantine_record_bytes,
    parse_quarantine_record,
)
from broker.transport.kafka import (
    ConsumerSettings,
    Delivery,
    ProducerSettings,
    open_consumer,
    open_producer,
)
from broker.transport.limits import request_bytes_for

__all__ = ["RELEASE_HEADER", "list_quarantine", "read_quarantine", "release"]

#: header on a released envelope: the id of the quarantine record it was released from
RELEASE_HEADER = "xb-released-from"
_log = structlog.get_logger(__name__)


async def read_quarantine(
    config: Config, *, idle_ms: int = 1500, join_timeout_s: float | None = None
) -> list[QuarantineRecord]:
    """Every quarantine record on the topic, oldest first (unreadable ones are logged, skipped).

    Waits up to ``join_timeout_s`` (default: the session timeout plus 5 s) for the first
    records while the throwaway group joins; after that, a fetch that returns nothing within
    ``idle_ms`` ends the read.
    """
    settings = ConsumerSettings(
        bootstrap=",".join(config.kafka.bootstrap),
        group_id=f"{config.kafka.topic_prefix}quarantine-reader.{uuid.uuid4().hex[:12]}",
        client_id=f"{config.kafka.client_id}-quarantine",
        session_timeout_ms=config.kafka.session_timeout_ms,
        security=kafka_client_security(config.kafka),
    )
    join_s = (
        config.kafka.session_timeout_ms / 1000 + 5 if join_timeout_s is None else join_timeout_s
    )
    found: list[QuarantineRecord] = []
    async with open_consumer(settings, [quarantine_topic(config.kafka.topic_prefix)]) as reader:
        deadline = time.monotonic() + join_s
        seen_any = False
        while True:
            batch = await reader.fetch(timeout_ms=idle_ms)
            if batch:
                seen_any = True
            elif seen_any or time.monotonic() >= deadline:
                break
            for record in batch:
                try:
                    found.append(parse_quarantine_record(record.value or b""))
                except errors.SchemaError as exc:
                    _log.warning(
                        "unreadable_quarantine_record",
                        partition=record.partition,
                        offset=record.offset,
                        reason=exc.diagnostics(),
                    )
    return found


async def list_quarantine(config: Config) -> list[QuarantineRecord]:
    """The quarantine records, one per id (a record re-quarantined after a crash counts once)."""
    by_id: dict[str, QuarantineRecord] = {}
    for record in await read_quarantine(config):
        by_id.setdefault(record.id, record)
    return list(by_id.values())


async def find(config: Config, record_id: str) -> QuarantineRecord:
    """The quarantine record ``record_id``, or UsageError."""
    for record in await list_quarantine(config):
        if record.id == record_id:
            return record
    raise errors.UsageError(f"no quarantine record with id {record_id!r}")


async def release(config: Config, record_id: str) -> Delivery:
    """Re-produce the original envelope of ``record_id`` to its source outbox (acks=all)."""
    record = await find(config, record_id)
    outbox_stem = f"{config.kafka.topic_prefix}outbox."
    if not record.source.topic.startswith(outbox_stem):
        raise errors.UsageError(
            f"record {record_id} came from {record.source.topic}, which is not an outbox"
        )
    if not record.envelope_bytes:
        raise errors.UsageError(
            f"record {record_id} was quarantined as {record.reason_code} without its bytes "
            "(too large to keep): there is nothing to release"
        )
    headers = [(RELEASE_HEADER, record.id.encode("utf-8"))]
    settings = ProducerSettings(
        bootstrap=",".join(config.kafka.bootstrap),
        client_id=f"{config.kafka.client_id}-quarantine",
        max_request_size=request_bytes_for(
            max_quarantine_record_bytes(config.limits.max_envelope_bytes)
        ),
        enable_idempotence=config.kafka.capabilities.idempotence,
        security=kafka_client_security(config.kafka),
    )
    key = None if record.message_id is None else record.message_id.encode("ascii")
    async with open_producer(settings) as producer:
        delivery = await producer.send(
            record.source.topic, record.envelope_bytes, key=key, headers=headers
        )
    _log.info(
        "quarantine_released",
        record_id=record.id,
        message_id=record.message_id,
        reason_code=str(record.reason_code),
        to=delivery.topic,
        offset=delivery.offset,
    )
    return delivery
