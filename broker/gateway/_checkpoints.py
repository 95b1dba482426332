"""The gateway's audit checkpointer: a task beside the routing loop.

It reads the audit topic from its first record with a consumer group of its own (so every
gateway instance rebuilds the same log and signs the same roots; a different root for the
same size is a fork that verification reports), judges every record against the registry in
force, and appends a signed checkpoint every ``gateway.checkpoint_interval_seconds`` while
records keep arriving. A record that is not a valid gateway record is never covered: it is
listed as refused, logged as an error and counted in ``xb_audit_refused_records_total``.

It keeps its position beside the gateway's store (``audit-checkpointer.json``,
:mod:`broker.ledger.position`): a restart resumes from its last checkpoint instead of reading
the whole log again, unless the position does not match the topic, when it is dropped and the
log read from its first record.

The task never dies quietly: any failure (Kafka away, or a bug) is logged, counted in
``xb_audit_checkpointer_failures_total``, turns the gateway's readiness to 503 through
:class:`CheckpointerStatus`, and is retried after a pause; readiness comes back once a
restarted checkpointer has caught up with the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import structlog

from broker import crypto, errors
from broker.clock import Clock
from broker.config import GatewayConfig, audit_topic
from broker.keys import Registry
from broker.ledger import (
    POSITION_FILE,
    PositionMismatch,
    Refusal,
    RefusedRecord,
    SavedPosition,
    WrittenLeaves,
    checkpoint_origin,
    run_checkpointer,
)
from broker.runtime import Metrics
from broker.transport.kafka import (
    ConsumerSettings,
    ProducerSettings,
    open_consumer,
    open_producer,
    open_reader,
)
from broker.transport.security import ClientSecurity

__all__ = ["CheckpointerStatus", "checkpoint_audit_log", "same_log"]

_log = structlog.get_logger("broker.gateway")
_RETRY_S = 5.0
#: how long a restart waits for the log's first record before reading the whole log instead
_FIRST_RECORD_WAIT_S = 20.0


class CheckpointerStatus:
    """What the checkpointer task reports: its metrics, and why it is not working (if so)."""

    def __init__(self, metrics: Metrics) -> None:
        c = metrics.counter
        self.refused = c(
            "xb_audit_refused_records_total",
            "Records on the audit topic refused by the checkpointer: not valid gateway records",
            ("reason_code",),
        )
        for reason in Refusal:
            self.refused.declare(reason_code=str(reason))
        self.checkpoints = c("xb_audit_checkpoints_total", "Signed audit checkpoints written")
        self.failures = c(
            "xb_audit_checkpointer_failures_total", "Times the audit checkpointer failed"
        )
        self.up = metrics.gauge(
            "xb_audit_checkpointer_up", "1 while the audit checkpointer works, 0 after a failure"
        )
        self.up.set(1)
        self.last_checkpoint = metrics.gauge(
            "xb_audit_last_checkpoint_timestamp_seconds",
            "When this gateway last wrote a signed audit checkpoint (Unix time; 0 before the "
            "first): time() minus it is the age of the newest signed head.",
        )
        self._problem: str | None = None

    def checkpointed(self) -> None:
        """A signed checkpoint was written now."""
        self.checkpoints.inc()
        self.last_checkpoint.set(time.time())

    @property
    def problem(self) -> str | None:
        """Why the checkpointer is not working, or None while it is."""
        return self._problem

    def failed(self, why: str) -> None:
        """The checkpointer stopped working: readiness goes down until it recovers."""
        self._problem = why
        self.failures.inc()
        self.up.set(0)

    def recovered(self) -> None:
        """The checkpointer has caught up with the log again."""
        self._problem = None
        self.up.set(1)

    def on_refused(self, refused: RefusedRecord) -> None:
        """Count one refused record (the checkpointer has logged it)."""
        self.refused.inc(reason_code=str(refused.reason))


async def checkpoint_audit_log(
    config: GatewayConfig,
    *,
    key: crypto.SigningKey,
    registry: Callable[[], Registry],
    clock: Clock,
    security: ClientSecurity,
    stop: asyncio.Event,
    status: CheckpointerStatus,
    written: WrittenLeaves | None = None,
) -> None:
    """Checkpoint the audit topic until ``stop`` is set; a final checkpoint is written then."""
    topic = audit_topic(config.kafka.topic_prefix)
    origin = checkpoint_origin(topic)
    position = config.store.path.parent / POSITION_FILE
    bootstrap = ",".join(config.kafka.bootstrap)
    client_id = f"{config.kafka.client_id}-checkpointer"
    producer = ProducerSettings(
        bootstrap=bootstrap,
        client_id=client_id,
        request_timeout_ms=config.kafka.request_timeout_ms,
        enable_idempotence=config.kafka.capabilities.idempotence,
        security=security,
    )
    while not stop.is_set():
        resume = _saved(position, origin=origin, registry=registry())
        consumer = ConsumerSettings(
            bootstrap=bootstrap,
            # a fresh group each start, never resuming a group's offsets: where to start is
            # the saved position's business (or the log's first record)
            group_id=f"{config.gateway_group_id}.checkpointer.{uuid.uuid4().hex}",
            client_id=client_id,
            session_timeout_ms=config.kafka.session_timeout_ms,
            security=security,
        )
        try:
            if resume is not None:
                await _require_same_log(consumer, topic, resume)
            reader = (
                open_consumer(consumer, [topic])
                if resume is None
                else open_reader(consumer, topic, offset=resume.through)
            )
            async with reader as source, open_producer(producer) as sink:
                stats = await run_checkpointer(
                    source=source,
                    sink=sink,
                    topic=topic,
                    key=key,
                    origin=origin,
                    registry=registry,
                    clock=clock,
                    stop=stop,
                    every_seconds=float(config.gateway.checkpoint_interval_seconds),
                    on_checkpoint=lambda _: status.checkpointed(),
                    on_refused=status.on_refused,
                    on_caught_up=status.recovered,
                    written=written,
                    resume=resume,
                    on_position=lambda saved: saved.save(position),
                )
        except PositionMismatch as exc:
            _log.warning("audit_checkpointer_position_dropped", reason=str(exc), path=str(position))
            position.unlink(missing_ok=True)
            continue  # at once, from the log's first record
        except errors.TransportError as exc:
            # Kafka is away: checkpoints pause (records stay safe in the topic) and resume,
            # from the last saved position, when it is back.
            _log.warning("audit_checkpointer_retrying", reason=exc.diagnostics())
            status.failed(f"audit checkpointer: {exc.diagnostics()}")
        except Exception as exc:  # noqa: BLE001 - the task must never die quietly
            _log.exception("audit_checkpointer_failed")
            status.failed(f"audit checkpointer failed ({type(exc).__name__}); retrying")
        else:
            _log.info(
                "audit_checkpointer_stopped",
                written=stats.written,
                refused=stats.refused,
                forks=stats.forks,
            )
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=_RETRY_S)


async def same_log(settings: ConsumerSettings, topic: str, saved: SavedPosition) -> bool:
    """Whether the topic's record at the saved first offset is still the one the position was
    saved with: a recreated topic is another log, whatever its later records copy."""
    offset, digest = saved.first
    async with open_reader(settings, topic, offset=offset) as source:
        deadline = time.monotonic() + _FIRST_RECORD_WAIT_S
        while time.monotonic() < deadline:
            records = await source.fetch(timeout_ms=500, max_records=1)
            if records:
                first = records[0]
                return first.offset == offset and crypto.sha256(first.value or b"") == digest
    return False


async def _require_same_log(settings: ConsumerSettings, topic: str, saved: SavedPosition) -> None:
    if not await same_log(settings, topic, saved):
        raise PositionMismatch(
            "the audit topic's first record is not the one the position was saved with (the "
            "topic was recreated?)"
        )


def _saved(path: Path, *, origin: str, registry: Registry) -> SavedPosition | None:
    """The checkpointer's saved position, or None (none saved, or one that does not verify:
    then the log is read from its first record, and the file is replaced at the next
    checkpoint)."""
    try:
        saved = SavedPosition.load(path, origin=origin, registry=registry)
    except errors.AuditError as exc:
        _log.warning("audit_checkpointer_position_dropped", reason=str(exc), path=str(path))
        return None
    if saved is not None:
        _log.info("audit_checkpointer_resuming", size=saved.checkpoint.size, offset=saved.through)
    return saved
