"""Looking things up without side effects: whether a topic exists, and one record by position.

Both serve ``broker quarantine release``, which must never create a topic (a producer's
metadata request may, on a broker that auto-creates) and must re-produce exactly the record
the gateway refused, read back from where it was refused. Neither joins a consumer group:
the record reader assigns itself the one partition and seeks, so it commits nothing.
"""

from __future__ import annotations

import asyncio

import aiokafka

from broker.transport.kafka import Record, _record, _transport_errors, open_admin
from broker.transport.security import PLAINTEXT, ClientSecurity

__all__ = ["read_record_at", "topic_exists"]


async def topic_exists(
    bootstrap: str,
    topic: str,
    *,
    client_id: str = "broker-admin",
    request_timeout_ms: int = 30_000,
    security: ClientSecurity = PLAINTEXT,
) -> bool:
    """Whether ``topic`` exists, asked in a way that never creates it (metadata of all topics)."""
    async with open_admin(
        bootstrap, client_id=client_id, request_timeout_ms=request_timeout_ms, security=security
    ) as admin:
        with _transport_errors("listing topics"):
            topics = await admin.list_topics()
    return topic in topics


async def read_record_at(
    bootstrap: str,
    topic: str,
    partition: int,
    offset: int,
    *,
    client_id: str = "broker-reader",
    timeout_s: float = 10.0,
    security: ClientSecurity = PLAINTEXT,
) -> Record | None:
    """The record at ``offset`` of ``topic``'s ``partition``; None if it is no longer there
    (retention removed it) or does not arrive within ``timeout_s``."""
    security.check_bootstrap(bootstrap)
    client = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        # an offset retention has removed is answered with the earliest one, which is later
        # than the one asked for: that is how "gone" is told apart from "here"
        auto_offset_reset="earliest",
        isolation_level="read_uncommitted",
        check_crcs=True,
        **security.client_options(),
    )
    where = aiokafka.TopicPartition(topic, partition)
    try:
        with _transport_errors(f"connecting a reader to {bootstrap}"):
            await client.start()
        client.assign([where])
        client.seek(where, offset)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
            with _transport_errors(f"reading {topic}/{partition}/{offset}"):
                batches = await client.getmany(where, timeout_ms=int(min(remaining, 1) * 1000))
            for message in batches.get(where, []):
                return _record(message) if message.offset == offset else None
        return None
    finally:
        with _transport_errors("stopping a reader"):
            await client.stop()
