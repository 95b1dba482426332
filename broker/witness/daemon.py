"""The witness daemon: follows the audit topic, proves each new checkpoint consistent with all
it has seen, and publishes its cosignature on the witness topic.

Per checkpoint record on the audit topic (other records are not its business):

1. the note must be signed by a gateway key the registry lists at the checkpoint's time
   (otherwise: ``xb_witness_refused_total{reason="unregistered"}``, a warning);
2. the checkpoint must extend the witness's view of the log (:class:`~broker.audit.LogView`):
   a fork, a rewritten history or a gap is refused, logged as an error and counted
   (``reason="inconsistent"``): the alert that the log showed two histories;
3. once the witness has caught up with the topic (a fetch came back empty), after each batch
   it cosigns the newest consistent checkpoint it has not cosigned yet
   (c2sp.org/tlog-cosignature/v1, under the key name the registry gives its key), saves its
   state durably, and only then publishes the cosigned note on ``<prefix>witness``. While
   catching up it does not cosign older checkpoints: a cosignature says "the largest tree I
   have seen", which they no longer are.

It reads the topic from its first record in a fresh consumer group each start and skips what
its saved state has already seen. Any failure is logged, counted, turns readiness to 503 and
is retried; a state file that does not verify stops the daemon (it would rather cosign
nothing than cosign from memory it cannot prove).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import structlog

from broker import crypto, errors, keys
from broker.audit import Checkpoint, Observation, add_signatures, cosign_checkpoint
from broker.audit.note import is_key_name
from broker.clock import Clock, SystemClock
from broker.config import (
    WitnessConfig,
    audit_topic,
    kafka_client_security,
    read_secret,
    witness_group,
    witness_topic,
)
from broker.keys import Registry
from broker.ledger import (
    Refused,
    SeenCheckpoint,
    checkpoint_origin,
    is_checkpoint_record,
    judge_record,
)
from broker.runtime import ConsumerLag, Health, Metrics, StopSignal, serve_observability, watch
from broker.transport.kafka import (
    ConsumerSettings,
    Producer,
    ProducerSettings,
    Record,
    open_consumer,
    open_producer,
)
from broker.transport.security import ClientSecurity
from broker.witness.state import WitnessState

__all__ = ["WitnessMetrics", "serve_witness"]

_log = structlog.get_logger("broker.witness")
_FETCH_MS = 500
_RETRY_S = 5.0
_MAX_FILE_BYTES = 4 * 1024 * 1024


class WitnessMetrics:
    """The witness's Prometheus series (names in docs/AUDIT.md)."""

    def __init__(self, metrics: Metrics) -> None:
        c = metrics.counter
        self.metrics = metrics
        self.cosigned = c("xb_witness_cosigned_total", "Checkpoints cosigned and published")
        self.refused = c(
            "xb_witness_refused_total",
            "Checkpoint records not cosigned: unregistered, or inconsistent with what was seen",
            ("reason",),
        )
        self.failures = c("xb_witness_failures_total", "Times following the log failed")
        self.size = metrics.gauge("xb_witness_tree_size", "Size of the newest consistent tree")
        self.lag = ConsumerLag(metrics)


@dataclasses.dataclass
class _Witness:
    config: WitnessConfig
    clock: Clock
    metrics: WitnessMetrics
    registry: Registry
    key: crypto.SigningKey
    name: str
    state: WitnessState
    pending: tuple[Checkpoint, bytes] | None = None

    @property
    def state_dir(self) -> Path:
        return self.config.witness.state_dir

    def take(self, record: Record) -> None:
        """Judge one audit-topic record; remember a consistent checkpoint to cosign."""
        if record.offset < self.state.offset:
            return  # seen before the restart
        self.state.offset = record.offset + 1
        if not is_checkpoint_record(record.value):
            return
        judged = judge_record(record.value, registry=self.registry)
        if not isinstance(judged, SeenCheckpoint):
            detail = judged.detail if isinstance(judged, Refused) else "not a checkpoint"
            self.metrics.refused.inc(reason="unregistered")
            _log.warning("witness_ignored_checkpoint", offset=record.offset, reason=detail)
            return
        checkpoint, listed = judged.checkpoint, judged.record
        try:
            seen = self.state.view.observe(checkpoint, first=listed.first, leaves=listed.leaves)
        except errors.AuditError as exc:
            self.metrics.refused.inc(reason="inconsistent")
            _log.error(
                "witness_refused_checkpoint",
                offset=record.offset,
                size=checkpoint.size,
                reason=exc.diagnostics(),
            )
            return
        if seen in (Observation.GREW, Observation.SAME):
            self.pending = (checkpoint, listed.note)
        self.metrics.size.set(self.state.view.size)

    async def cosign_pending(self, producer: Producer) -> None:
        """Cosign the newest consistent checkpoint, save the state, then publish."""
        if self.pending is None:
            return
        checkpoint, note = self.pending
        stamp = int(self.clock.now().timestamp())
        line = cosign_checkpoint(checkpoint, key=self.key, name=self.name, timestamp=stamp)
        self.state.note = note
        self.state.cosigned = add_signatures(note, [line])
        self.state.published = False
        self.state.save(self.state_dir)
        self.pending = None
        await self.publish(producer)
        _log.info("witness_cosigned", size=checkpoint.size, origin=checkpoint.origin)

    async def publish(self, producer: Producer) -> None:
        """Publish the last cosigned note if it is not out yet (also after a restart)."""
        if self.state.cosigned is None or self.state.published:
            return
        topic = witness_topic(self.config.kafka.topic_prefix)
        await producer.send(topic, self.state.cosigned, key=self.state.view.origin.encode())
        self.state.published = True
        self.state.save(self.state_dir)
        self.metrics.cosigned.inc()

    def reload(self, changed: tuple[Path, ...]) -> None:
        """A newer registry replaces the one in force only if it verifies against it."""
        data = _read(self.config.registry.path, "the registry")
        self.registry = keys.verify_registry(data, trusted=self.registry, now=self.clock.now())
        _log.info("registry_reloaded", version=self.registry.version)


async def serve_witness(
    config: WitnessConfig,
    stop: StopSignal,
    *,
    metrics: Metrics | None = None,
    health: Health | None = None,
    clock: Clock | None = None,
) -> None:
    """Run the witness until ``stop`` is set."""
    security = kafka_client_security(config.kafka)
    metrics, health = metrics or Metrics(), health or Health()
    witness = _start(config, clock or SystemClock(), WitnessMetrics(metrics))
    port = config.observability.port
    watcher = asyncio.create_task(
        watch([config.registry.path], witness.reload, interval_s=2.0, stop=stop)
    )
    try:
        if port is None:
            await _serve(witness, stop, health, security)
        else:
            async with serve_observability(
                port=port, metrics=metrics, health=health, host=config.observability.host
            ):
                await _serve(witness, stop, health, security)
    finally:
        stop.set("witness stopping")
        await watcher


def _start(config: WitnessConfig, clock: Clock, metrics: WitnessMetrics) -> _Witness:
    now = clock.now()
    trusted = keys.load_trusted_registry(_read(config.registry.trusted_roots, "trusted roots"))
    data = _read(config.registry.path, "the registry")
    registry = keys.verify_registry(data, trusted=trusted, now=now)
    key = keys.load_signing_key(
        config.keys.signing_key, passphrase=read_secret(config.keys.passphrase)
    )
    key_id = key.public_key().key_id
    registry.witness_key(key_id, at=now)  # refused unless registered as a witness key now
    name = next(r.owner for r in registry.key_records() if r.key_id == key_id)
    if not is_key_name(name):
        raise errors.UsageError(
            f"witness key {key_id} is registered as {name!r}, which is no note key name "
            "(no spaces, no '+'): register it under a name such as 'witness.example/rs'"
        )
    origin = checkpoint_origin(audit_topic(config.kafka.topic_prefix))
    state = WitnessState.load(config.witness.state_dir, origin=origin, registry=registry)
    metrics.size.set(state.view.size)
    _log.info("witness_starting", name=name, origin=origin, size=state.view.size)
    return _Witness(config, clock, metrics, registry, key, name, state)


async def _serve(
    witness: _Witness, stop: StopSignal, health: Health, security: ClientSecurity
) -> None:
    while not stop.is_set():
        try:
            await _follow(witness, stop, health, security)
        except errors.TransportError as exc:
            _failed(witness, health, f"kafka unavailable: {exc.diagnostics()}")
        except errors.AuditError:
            raise  # our own state no longer verifies: stop rather than cosign
        except Exception as exc:  # noqa: BLE001 - never die quietly: report, then retry
            _log.exception("witness_failed")
            _failed(witness, health, f"witness failed ({type(exc).__name__}); retrying")
        else:
            return
        if await stop.sleep(_RETRY_S):
            return


def _failed(witness: _Witness, health: Health, why: str) -> None:
    _log.warning("witness_retrying", reason=why)
    witness.metrics.failures.inc()
    health.set_not_ready(why)


async def _follow(
    witness: _Witness, stop: StopSignal, health: Health, security: ClientSecurity
) -> None:
    config = witness.config
    bootstrap = ",".join(config.kafka.bootstrap)
    client_id = f"{config.kafka.client_id}-witness"
    group = f"{witness_group(config.kafka.topic_prefix, config.witness.name)}{uuid.uuid4().hex}"
    consumer_settings = ConsumerSettings(
        bootstrap=bootstrap,
        group_id=group,  # a fresh group each start: the view is rebuilt from the log's start
        client_id=client_id,
        session_timeout_ms=config.kafka.session_timeout_ms,
        security=security,
    )
    producer_settings = ProducerSettings(
        bootstrap=bootstrap,
        client_id=client_id,
        request_timeout_ms=config.kafka.request_timeout_ms,
        security=security,
    )
    topic = audit_topic(config.kafka.topic_prefix)
    async with (
        open_consumer(consumer_settings, [topic]) as consumer,
        open_producer(producer_settings) as producer,
    ):
        await witness.publish(producer)
        caught_up = False
        while not stop.is_set():
            if witness.clock.now() >= witness.registry.expires:
                # A frozen registry could hide a revoked gateway key: cosign nothing.
                health.set_not_ready("the partner registry has expired")
                await stop.sleep(_RETRY_S)
                continue
            health.set_ready()
            batch = await consumer.fetch(timeout_ms=_FETCH_MS)
            witness.metrics.lag.observe(consumer.lag())
            for record in batch:
                witness.take(record)
            # Once it has reached the log's end it stays current, so it cosigns after every
            # batch: a busy log, where a fetch is seldom empty, is cosigned all the same.
            caught_up = caught_up or not batch
            if caught_up:
                await witness.cosign_pending(producer)
        health.set_draining()


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise errors.UsageError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    if len(data) > _MAX_FILE_BYTES:
        raise errors.UsageError(f"{path}: {what} is larger than {_MAX_FILE_BYTES} bytes")
    return data
