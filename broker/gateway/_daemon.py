"""The policy gateway daemon: consume every outbox, route, produce, then commit.

Per batch, in this order (docs/GATEWAY.md explains why):

1. open one SQLite transaction on the de-duplication record (and, on Apache Kafka, a Kafka
   transaction);
2. route every record (pure), recording the dedup entry of each delivery inside it;
3. produce every delivery, quarantine and audit record with acks=all and await ALL acks;
4. on Apache Kafka: add the batch's offsets to the Kafka transaction and commit it, so the
   records and the offsets become visible together;
5. commit the SQLite transaction (the dedup entries become durable only now);
6. on the embedded broker (no transactions): commit the Kafka offsets.

Embedded: a crash before 5 redelivers the batch and re-delivers its envelopes (the receiver
de-duplicates) and audits them again; a crash between 5 and 6 makes the redelivered envelopes
duplicates here. Apache Kafka: a crash before 4 leaves a transaction its successor aborts, so
no reader (all read committed records only) ever sees that batch's output, and the batch is
read again; a crash between 4 and 5 loses only dedup entries for records whose offsets are
committed already. In no case is anything lost. A failure in 3 or 4 rolls back and re-reads
the batch from the committed offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from broker import errors
from broker.audit import leaf_hash
from broker.clock import Clock, SystemClock
from broker.config import (
    GatewayConfig,
    audit_topic,
    kafka_client_security,
    outbox_topic,
    quarantine_topic,
)
from broker.gateway._checkpoints import CheckpointerStatus, checkpoint_audit_log
from broker.gateway._output import all_acknowledged, open_output
from broker.gateway._refusals import RefusalAudits
from broker.gateway._trust import TrustState, load_gateway_key
from broker.ids import KeyId
from broker.ledger import WrittenLeaves
from broker.pipeline.gateway import (
    DedupKey,
    Deliver,
    Duplicate,
    GatewayOutcome,
    InboundRecord,
    Limits,
    audit_accord_act,
    quarantine_unroutable,
    route,
    sign_outcomes,
)
from broker.reasons import ReasonCode
from broker.runtime import (
    AccordReporter,
    ConsumerLag,
    ExpiryReporter,
    Health,
    HeapTrimmer,
    Metrics,
    StopSignal,
    bind_ids,
    certificate_expiries,
    registry_expiries,
    serve_observability,
    state_lock,
    supervise,
    watch,
)
from broker.store import DedupStore, DedupVerdict
from broker.transport.kafka import (
    Consumer,
    ConsumerSettings,
    OutboundRecord,
    Producer,
    ProducerSettings,
    Record,
    open_consumer,
)
from broker.transport.security import ClientSecurity
from broker.transport.transactions import TransactionalProducer
from broker.trust import RateCounters
from broker.trust.acts import Act

__all__ = ["GatewayMetrics", "serve_gateway"]

_log = structlog.get_logger("broker.gateway")
_FETCH_TIMEOUT_MS = 500
_FETCH_MAX_WAIT_MS = 100
_MAX_BATCH = 500
_RECONNECT_BACKOFF_S = 2.0
_PRUNE_EVERY_S = 600.0
#: how often the accords' expiry gauges are refreshed (and warnings considered)
_ACCORD_REPORT_EVERY_S = 60.0


class GatewayMetrics:
    """The gateway's Prometheus series (names in docs/GATEWAY.md)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        c = metrics.counter
        self.delivered = c("xb_gateway_delivered_total", "Envelopes delivered", ("recipient",))
        self.quarantined = c(
            "xb_gateway_quarantined_total", "Records quarantined", ("reason_code",)
        )
        self.duplicates = c("xb_gateway_duplicates_total", "Byte-identical redeliveries skipped")
        self.conflicts = c("xb_gateway_conflicts_total", "Reused message ids with new bytes")
        self.decisions = c("xb_gateway_decisions_total", "Records decided (every outcome)")
        self.decision_seconds = c(
            "xb_gateway_decision_seconds_total", "Time spent deciding, summed over decisions"
        )
        self.batch_failures = c(
            "xb_gateway_batch_failures_total", "Batches rolled back to be read again"
        )
        self.route_seconds = metrics.histogram(
            "xb_gateway_route_seconds", "Time to verify and decide one outbox record."
        )
        for code in ReasonCode:
            self.quarantined.declare(reason_code=code)
        self.checkpointer = CheckpointerStatus(metrics)
        self.lag = ConsumerLag(metrics)


def _open_dedup(path: Path, *, retention: dt.timedelta) -> tuple[sqlite3.Connection, DedupStore]:
    # DedupStore.open creates the file (mode 0600) and its schema; the gateway then holds its
    # own connection so one transaction can span a whole batch until the acks are in.
    DedupStore.open(path, retention=retention).close()
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn, DedupStore(conn, retention=retention)


class _Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        clock: Clock,
        metrics: GatewayMetrics,
        expiry: ExpiryReporter | None = None,
    ) -> None:
        now = clock.now()
        self.config, self.clock, self.metrics = config, clock, metrics
        self.gateway_key = load_gateway_key(config)
        self.expiry = expiry
        # the files as read at start: the clients hold those until the gateway restarts
        self.certificates = certificate_expiries(config.kafka.certificate_files)
        reporter = AccordReporter(metrics.metrics)
        self.trust = TrustState(config, key=self.gateway_key, now=now, reporter=reporter)
        retention = dt.timedelta(seconds=config.limits.replay_window_seconds)
        self.conn, self.dedup = _open_dedup(config.store.path, retention=retention)
        self.refusals = RefusalAudits(
            self.conn,
            per_hour=config.gateway.refusal_audits_per_hour,
            prefix=config.kafka.topic_prefix,
            gateway_key=self.gateway_key,
            metrics=metrics.metrics,
        )
        self.rates = RateCounters()
        self.prefix = config.kafka.topic_prefix
        limits = config.limits
        self.limits = Limits(
            max_envelope_bytes=limits.max_envelope_bytes,
            max_age=dt.timedelta(seconds=limits.max_age_seconds),
            max_skew=dt.timedelta(seconds=limits.max_clock_skew_seconds),
        )
        self.last_prune = self.last_report = time.monotonic()
        #: the audit records this process signs, so its checkpointer need not judge them again
        self.written = WrittenLeaves()
        self.report_expiries(now)
        for partner in sorted(self.trust.registry.partners):
            metrics.delivered.declare(recipient=partner)

    def report_accords(self) -> None:
        """Refresh the expiry gauges and warnings of the accords, registry, keys and TLS
        files, at most once a minute."""
        if time.monotonic() - self.last_report < _ACCORD_REPORT_EVERY_S:
            return
        self.last_report = time.monotonic()
        now = self.clock.now()
        self.trust.reporter.observe(self.trust.statuses(now), now=now)
        self.report_expiries(now)

    def report_expiries(self, now: dt.datetime) -> None:
        """The registry's, the keys' and the TLS files' gauges (and readiness)."""
        if self.expiry is not None:
            own = [KeyId(self.gateway_key.public_key().key_id)]
            expiries = registry_expiries(self.trust.registry, own=own)
            self.expiry.observe([*expiries, *self.certificates], now=now)

    def act_sends(self, acts: Sequence[Act], now: dt.datetime) -> list[OutboundRecord]:
        """The audit record of each signed act (suspension, resumption, termination) applied."""
        topic = audit_topic(self.prefix)
        sends = []
        for act in acts:
            value = audit_accord_act(act, gateway_key=self.gateway_key, now=now).to_bytes()
            self.written.add(leaf_hash(value))
            sends.append(OutboundRecord(topic, value, key=act.accord.encode("ascii")))
        return sends

    def topics(self) -> list[str]:
        return [outbox_topic(self.prefix, p) for p in self.trust.outbox_partners()]

    def decide(self, records: Sequence[Record], now: dt.datetime) -> list[GatewayOutcome]:
        book = self.trust.book(now)
        counters = self.rates.snapshot(now)
        outcomes: list[GatewayOutcome] = []

        def seen(key: DedupKey) -> DedupVerdict:
            return self.dedup.classify(key.message_id, key.recipient, key.digest, now=now)

        for rec in records:
            inbound = InboundRecord(
                rec.topic, rec.partition, rec.offset, rec.value, rec.headers, rec.defect
            )
            started = time.perf_counter()
            with bind_ids(topic=rec.topic, partition=rec.partition, offset=rec.offset):
                try:
                    outcome = route(
                        inbound,
                        registry=self.trust.registry,
                        accords=book,
                        gateway_key=self.gateway_key,
                        now=now,
                        counters=counters,
                        dedup=seen,
                        topic_prefix=self.prefix,
                        limits=self.limits,
                        sign=False,
                    )
                except Exception as exc:  # noqa: BLE001 - a poison record must never stop the gateway
                    _log.exception("route_failed_quarantining")
                    outcome = quarantine_unroutable(
                        inbound,
                        reason=f"the gateway could not process this record ({type(exc).__name__})",
                        gateway_key=self.gateway_key,
                        now=now,
                        limits=self.limits,
                    )
                self._log_outcome(outcome)
            self._record_dedup(outcome, now)
            elapsed = time.perf_counter() - started
            self.metrics.decision_seconds.inc(elapsed)
            self.metrics.route_seconds.observe(elapsed)
            if isinstance(outcome, Deliver) and outcome.decision.rate_counter is not None:
                flow = outcome.decision.rate_counter
                counters[flow] = counters.get(flow, 0) + 1
                self.rates.count(outcome.decision, now)
            outcomes.append(outcome)
        # the batch's attestations (per inbox) and audit records are signed together: a
        # signature per head, not one per delivery and one per audit record
        return sign_outcomes(outcomes, gateway_key=self.gateway_key)

    def _record_dedup(self, outcome: GatewayOutcome, now: dt.datetime) -> None:
        """Record what route() found, in the batch's transaction (committed after the acks),
        before the next record is looked up: a delivery is remembered, a duplicate or a
        conflict counted."""
        verdict: DedupVerdict
        if isinstance(outcome, Deliver):
            key, verdict = outcome.dedup_key, "new"
        elif isinstance(outcome, Duplicate):
            key, verdict = outcome.dedup_key, "duplicate"
        elif outcome.dedup_key is not None:
            key, verdict = outcome.dedup_key, "conflict"
        else:
            return
        self.dedup.record_in_transaction(
            key.message_id, key.recipient, key.digest, verdict, now=now
        )

    def _log_outcome(self, outcome: GatewayOutcome) -> None:
        # Routine outcomes are DEBUG: at INFO one line per batch (batch_routed) says what a
        # batch did; a line per record cost more than deciding it. Quarantines stay WARNING.
        if isinstance(outcome, Duplicate):
            key = outcome.dedup_key
            _log.debug("duplicate_skipped", message_id=key.message_id, recipient=key.recipient)
            return
        audit = outcome.audit
        # The ids go straight into the one line (cheaper per record than binding them).
        ids = {"message_id": audit.message_id, "sender": audit.sender, "recipient": audit.recipient}
        if isinstance(outcome, Deliver):
            _log.debug("delivered", inbox=outcome.topic, rule_ids=list(audit.rule_ids), **ids)
        else:
            _log.warning(
                "quarantined",
                reason_code=str(outcome.reason_code),
                reason=outcome.record.reason,
                **ids,
            )

    def sends(
        self, outcomes: Sequence[GatewayOutcome], withheld: frozenset[int] = frozenset()
    ) -> list[OutboundRecord]:
        """Every record the outcomes produce; ``withheld`` refusals get no audit record of
        their own (an hourly summary counts them)."""
        audit, quarantine = audit_topic(self.prefix), quarantine_topic(self.prefix)
        sends: list[OutboundRecord] = []
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, Duplicate):
                continue
            key = None if outcome.audit.message_id is None else outcome.audit.message_id.encode()
            if isinstance(outcome, Deliver):
                sends.append(OutboundRecord(outcome.topic, outcome.frame, key=key))
            else:
                record = outcome.record
                sends.append(OutboundRecord(quarantine, record.to_bytes(), key=record.id.encode()))
                if index in withheld:
                    continue
                if outcome.notice is not None:  # the sender learns why (pipeline/notice.py)
                    topic, frame = outcome.notice
                    sends.append(OutboundRecord(topic, frame, key=key))
            if not outcome.audit.signature:
                raise RuntimeError("an audit record was about to be produced unsigned")
            audit_value = outcome.audit.to_bytes()
            # noted before it is produced, so the checkpointer never reads it back first
            self.written.add(leaf_hash(audit_value))
            sends.append(OutboundRecord(audit, audit_value, key=key))
        return sends

    def count(self, outcomes: Sequence[GatewayOutcome], *, started: float) -> None:
        """Count a committed batch's outcomes, and log the batch's one INFO line."""
        m = self.metrics
        delivered = duplicates = 0
        for outcome in outcomes:
            m.decisions.inc()
            if isinstance(outcome, Deliver):
                delivered += 1
                m.delivered.inc(recipient=outcome.dedup_key.recipient)
            elif isinstance(outcome, Duplicate):
                duplicates += 1
                m.duplicates.inc()
            else:
                m.quarantined.inc(reason_code=str(outcome.reason_code))
                if outcome.reason_code == "replay_conflict":
                    m.conflicts.inc()
        if outcomes:
            _log.info(
                "batch_routed",
                records=len(outcomes),
                delivered=delivered,
                quarantined=len(outcomes) - delivered - duplicates,
                duplicates=duplicates,
                seconds=round(time.monotonic() - started, 4),
            )

    async def process(
        self, consumer: Consumer, producer: Producer | TransactionalProducer, records: list[Record]
    ) -> None:
        """Decide a batch and produce what it says, as one transaction where the engine has
        them; with no records, write what is due (the audit records of signed acts applied,
        refusal summaries)."""
        now, started = self.clock.now(), time.monotonic()
        txn = producer if isinstance(producer, TransactionalProducer) else None
        # Every act applied so far is audited ahead of the batch decided under it: no await
        # comes between taking them and deciding, so a reload cannot slip one in between.
        acts, self.trust.applied_acts[:] = list(self.trust.applied_acts), []
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if txn is not None:
                await txn.begin()
            sends = self.act_sends(acts, now)
            outcomes = self.decide(records, now)
            withheld = self.refusals.withhold(records, outcomes, now=now)
            summaries, closed = self.refusals.due(now=now)
            sends += self.sends(outcomes, withheld)
            topic = audit_topic(self.prefix)
            for summary in summaries:
                value = summary.to_bytes()
                self.written.add(leaf_hash(value))
                sends.append(OutboundRecord(topic, value))
            self.refusals.forget(closed)
            await all_acknowledged(producer, sends)
            if txn is not None:
                if records:
                    await txn.commit_offsets(records, group_id=self.config.gateway_group_id)
                await txn.commit()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            self.trust.applied_acts[:0] = acts  # audited again with the next batch
            if txn is not None:
                # best effort: a fenced or unreachable producer's transaction is aborted by
                # its successor or by the coordinator's timeout instead
                with contextlib.suppress(errors.TransportError):
                    await txn.abort()
            raise
        for act in acts:
            _log.warning("accord_act_audited", accord=act.accord, kind=act.kind, by=act.by)
        if acts:
            self.trust.confirm_acts_audited()
        if txn is None and records:
            await consumer.commit(records)
        self.count(outcomes, started=started)
        if time.monotonic() - self.last_prune > _PRUNE_EVERY_S:
            self.last_prune = time.monotonic()
            self.dedup.prune(now)

    def close(self) -> None:
        self.conn.close()


async def serve_gateway(
    config: GatewayConfig,
    stop: StopSignal,
    *,
    metrics: Metrics | None = None,
    health: Health | None = None,
    clock: Clock | None = None,
) -> None:
    """Run the gateway until ``stop`` is set, then finish the batch in hand, commit and return;
    under the lock of its state directory (the store's): one gateway instance per store."""
    with state_lock(config.store.path.parent, daemon="gateway"):
        await _serve_gateway_locked(config, stop, metrics=metrics, health=health, clock=clock)


async def _serve_gateway_locked(
    config: GatewayConfig,
    stop: StopSignal,
    *,
    metrics: Metrics | None,
    health: Health | None,
    clock: Clock | None,
) -> None:
    # read the Kafka secrets and certificates first: a bad file fails before anything opens
    security = kafka_client_security(config.kafka)
    metrics, health = metrics or Metrics(), health or Health()
    window = dt.timedelta(days=config.observability.expiry_readiness_days)
    gateway = _Gateway(
        config,
        clock=clock or SystemClock(),
        metrics=GatewayMetrics(metrics),
        expiry=ExpiryReporter(metrics, health=health, readiness_window=window),
    )
    port = config.observability.port
    try:
        if port is None:
            await _serve(gateway, stop, health, security)
        else:
            async with serve_observability(
                port=port, metrics=metrics, health=health, host=config.observability.host
            ):
                await _serve(gateway, stop, health, security)
    finally:
        gateway.close()


async def _serve(
    gateway: _Gateway, stop: StopSignal, health: Health, security: ClientSecurity
) -> None:
    config = gateway.config
    bootstrap = ",".join(config.kafka.bootstrap)
    producer_settings = ProducerSettings(
        bootstrap=bootstrap,
        client_id=f"{config.kafka.client_id}-gateway",
        request_timeout_ms=config.kafka.request_timeout_ms,
        enable_idempotence=config.kafka.capabilities.idempotence,
        security=security,
    )
    consumer_settings = ConsumerSettings(
        bootstrap=bootstrap,
        group_id=config.gateway_group_id,
        client_id=f"{config.kafka.client_id}-gateway",
        session_timeout_ms=config.kafka.session_timeout_ms,
        # a short broker-side wait: see broker.adapter.daemon.FETCH_MAX_WAIT_MS
        fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
        security=security,
    )
    resubscribe = asyncio.Event()

    def on_change(changed: tuple[Path, ...]) -> None:
        before = gateway.topics()
        gateway.trust.reload(changed, now=gateway.clock.now())
        if gateway.topics() != before:
            resubscribe.set()

    watcher = asyncio.create_task(
        watch(gateway.trust.watched_paths, on_change, interval_s=2.0, stop=stop)
    )
    checkpoints_stop = asyncio.Event()
    status = gateway.metrics.checkpointer
    checkpoints = asyncio.create_task(
        checkpoint_audit_log(
            config,
            key=gateway.gateway_key,
            registry=lambda: gateway.trust.registry,
            clock=gateway.clock,
            security=security,
            stop=checkpoints_stop,
            status=status,
            written=gateway.written,
        )
    )

    def ended(task: asyncio.Task[None]) -> None:
        # It only returns once asked to stop; ending otherwise is a failure to report.
        if not checkpoints_stop.is_set():
            status.failed("the audit checkpointer task ended")

    checkpoints.add_done_callback(ended)
    # Routing goes on if either dies, but the gateway then reports itself failed: a gateway
    # that stopped reloading its registry or signing checkpoints is not a healthy one.
    registry = gateway.metrics.metrics
    supervise(watcher, name="reloader", health=health, metrics=registry)
    supervise(checkpoints, name="audit_checkpointer", health=health, metrics=registry)
    try:
        while not stop.is_set():
            try:
                # a new producer after every failure: a fenced transactional one is finished
                async with open_output(producer_settings, config) as producer:
                    await _consume(gateway, producer, consumer_settings, stop, health, resubscribe)
            except errors.TransportError as exc:
                gateway.metrics.batch_failures.inc()
                health.set_not_ready(exc.diagnostics())
                _log.warning("kafka_unavailable_retrying", reason=exc.diagnostics())
                if await stop.sleep(_RECONNECT_BACKOFF_S):
                    break
    finally:
        health.set_draining()
        stop.set("gateway stopping")
        await watcher
        # after the routing loop: the last checkpoint covers what this instance has read
        checkpoints_stop.set()
        await checkpoints


async def _consume(
    gateway: _Gateway,
    producer: Producer | TransactionalProducer,
    settings: ConsumerSettings,
    stop: StopSignal,
    health: Health,
    resubscribe: asyncio.Event,
) -> None:
    resubscribe.clear()
    topics = gateway.topics()
    trimmer = HeapTrimmer()
    async with open_consumer(settings, topics) as consumer:
        _report_ready(health, gateway)
        _log.info("gateway_consuming", topics=topics, group=settings.group_id)
        while not stop.is_set() and not resubscribe.is_set():
            paused = gateway.trust.pause(gateway.clock.now())
            if paused is not None:
                # Fail closed without losing anything: records wait in Kafka until the
                # operator installs a fresh registry or key
                event, reason = paused
                health.set_not_ready(reason)
                _log.error(event, reason=reason)
                await stop.sleep(_RECONNECT_BACKOFF_S)
                continue
            _report_ready(health, gateway)
            gateway.report_accords()
            records = await consumer.fetch(timeout_ms=_FETCH_TIMEOUT_MS, max_records=_MAX_BATCH)
            gateway.metrics.lag.observe(consumer.lag())
            # a batch, or what is due without one: an act applied is audited at once
            due = gateway.trust.applied_acts or gateway.refusals.any_due(now=gateway.clock.now())
            if records or due:
                await gateway.process(consumer, producer, records)
            trimmer.batch_done(len(records), full=len(records) == _MAX_BATCH)
        if stop.is_set():
            health.set_draining()


def _report_ready(health: Health, gateway: _Gateway) -> None:
    """Ready while the routing loop runs, unless the audit checkpointer beside it has failed:
    a gateway that cannot checkpoint must not look whole."""
    problem = gateway.metrics.checkpointer.problem
    if problem is None:
        health.set_ready()
    else:
        health.set_not_ready(problem)
