"""The gateway's audit checkpointer: a task beside the routing loop.

It reads the audit topic from its first record with a consumer group of its own (so every
gateway instance rebuilds the same log and signs the same roots; a different root for the
same size is a fork that verification reports), and appends a signed checkpoint every
``gateway.checkpoint_interval_seconds`` while records keep arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import structlog

from broker import crypto, errors
from broker.clock import Clock
from broker.config import Config, audit_topic
from broker.ledger import checkpoint_origin, run_checkpointer
from broker.transport.kafka import (
    ConsumerSettings,
    ProducerSettings,
    open_consumer,
    open_producer,
)
from broker.transport.security import ClientSecurity

__all__ = ["checkpoint_audit_log"]

_log = structlog.get_logger("broker.gateway")
_RETRY_S = 5.0


async def checkpoint_audit_log(
    config: Config,
    *,
    key: crypto.SigningKey,
    clock: Clock,
    security: ClientSecurity,
    stop: asyncio.Event,
) -> None:
    """Checkpoint the audit topic until ``stop`` is set; a final checkpoint is written then."""
    topic = audit_topic(config.kafka.topic_prefix)
    bootstrap = ",".join(config.kafka.bootstrap)
    client_id = f"{config.kafka.client_id}-checkpointer"
    consumer = ConsumerSettings(
        bootstrap=bootstrap,
        # a fresh group each start: the checkpointer must see the whole log, not resume
        group_id=f"{config.gateway_group_id}.checkpointer.{uuid.uuid4().hex}",
        client_id=client_id,
        session_timeout_ms=config.kafka.session_timeout_ms,
        security=security,
    )
    producer = ProducerSettings(
        bootstrap=bootstrap,
        client_id=client_id,
        request_timeout_ms=config.kafka.request_timeout_ms,
        max_request_size=4 * 1024 * 1024,
        enable_idempotence=config.kafka.capabilities.idempotence,
        security=security,
    )
    while not stop.is_set():
        try:
            async with open_consumer(consumer, [topic]) as source, open_producer(producer) as sink:
                stats = await run_checkpointer(
                    source=source,
                    sink=sink,
                    topic=topic,
                    key=key,
                    origin=checkpoint_origin(topic),
                    clock=clock,
                    stop=stop,
                    every_seconds=float(config.gateway.checkpoint_interval_seconds),
                )
        except errors.TransportError as exc:
            # Kafka is away: checkpoints pause (records stay safe in the topic) and resume,
            # re-reading the log from its start, when it is back.
            _log.warning("audit_checkpointer_retrying", reason=exc.diagnostics())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=_RETRY_S)
        else:
            _log.info("audit_checkpointer_stopped", written=stats.written, forks=stats.forks)
            return
