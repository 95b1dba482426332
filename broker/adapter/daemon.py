"""The adapter daemon: Kafka in and out around :class:`~broker.adapter.core.Adapter`.

Tasks, all stopped by one :class:`~broker.runtime.StopSignal`:

* **receive**: fetch from ``inbox.<me>`` (group ``adapter_group``), verify every record of
  the batch, store them in one inbox transaction and journal their receipts in one journal
  transaction, then commit the batch's offsets (never before the store write);
* **send**: produce journalled envelopes to ``outbox.<me>`` with ``acks=all`` and the
  ``xb-recipient`` header; acknowledged ones leave the journal (one transaction per batch of
  sends), failed ones stay and are produced again with the same bytes after a backoff;
* **spool** (a few files at a time, yielding between them, so a burst never stalls the
  other tasks), **housekeeping** (crypto-shredding), **webhook** and **reload** (accords and
  registry) on their own intervals.

On SIGTERM intake stops (no new fetches or spool files), the batch in hand is finished and
committed, and the journal is flushed; anything still unacknowledged when the drain timeout
ends stays journalled and is sent on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path

import structlog

from broker import errors
from broker.adapter._setup import load_keys, load_trust, reread_accords
from broker.adapter.core import Adapter
from broker.adapter.fates import Acknowledged
from broker.adapter.journal import JournalEntry, SendJournal
from broker.adapter.outputs import DeliveryDir, Webhook
from broker.adapter.spool import Spool
from broker.clock import Clock, SystemClock
from broker.config import AdapterConfig, adapter_group, inbox_topic, kafka_client_security
from broker.crypto import AeadSealer
from broker.ids import KeyId, MessageId
from broker.pipeline.gateway import RECIPIENT_HEADER
from broker.runtime import (
    AccordReporter,
    ConsumerLag,
    Expiry,
    ExpiryReporter,
    Health,
    HeapTrimmer,
    Metrics,
    StopSignal,
    certificate_expiries,
    registry_expiries,
    serve_observability,
    state_lock,
    supervise,
    watch,
)
from broker.store import InboxStore
from broker.transport.kafka import (
    Consumer,
    ConsumerSettings,
    OutboundRecord,
    Producer,
    ProducerSettings,
    open_consumer,
    open_producer,
)
from broker.transport.security import PLAINTEXT, ClientSecurity
from broker.trust import AccordInForce, HeldTrust

__all__ = [
    "AdapterDaemon",
    "Connection",
    "build_adapter",
    "journal_path",
    "serve_config",
    "spool_chunk",
]

_log = structlog.get_logger(__name__)
_MAX_BACKOFF_S = 30.0
_SEND_BATCH = 500
_RECEIVE_BATCH = 100
#: messages indexed for search per idle moment: some tens of milliseconds of the event loop
_INDEX_BATCH = 50
#: spool files per call: from the smallest, grown while a backlog lasts so that one call
#: (one journal transaction, one flush of the spool) uses about _SPOOL_CHUNK_BUDGET_S of CPU
_SPOOL_CHUNK_MIN, _SPOOL_CHUNK_MAX = 8, 128
_SPOOL_CHUNK_BUDGET_S = 0.05
#: How long the broker may hold an empty fetch. Some brokers (the embedded one among them)
#: answer a waiting fetch only when this expires, not when a record arrives, so it bounds the
#: latency of every hop; an idle consumer pays with a few more small requests per second.
FETCH_MAX_WAIT_MS = 100


@dataclasses.dataclass(frozen=True, slots=True)
class Connection:
    """Where Kafka is, how to prove who we are to it, and how patient to be with it."""

    bootstrap: str
    client_id: str = "broker-adapter"
    session_timeout_ms: int = 10_000
    request_timeout_ms: int = 30_000
    _: dataclasses.KW_ONLY
    security: ClientSecurity = PLAINTEXT
    #: the broker numbers each send, so a retried one is never written twice (Apache Kafka)
    idempotence: bool = False


def _check_four_eyes(flows: frozenset[str], accords: Iterable[AccordInForce]) -> None:
    """Refuse to start when ``spool.four_eyes_flows`` names a flow no accord in force has: a
    misspelt or renamed flow would quietly let that traffic go without a second officer."""
    known = {flow.id for held in accords for flow in held.accord.flows}
    unknown = sorted(flows - known)
    if unknown:
        raise errors.UsageError(
            f"spool.four_eyes_flows names {', '.join(unknown)}, which no accord in force has "
            f"(its flows: {', '.join(sorted(known)) or 'none'}): the control would not apply"
        )


def journal_path(config: AdapterConfig) -> Path:
    """The send journal lives beside the inbox store: ``<store dir>/send-journal.sqlite``."""
    return journal_beside(config.store.path)


def journal_beside(inbox: Path) -> Path:
    """The send journal of the adapter whose inbox store is ``inbox``."""
    return inbox.parent / "send-journal.sqlite"


def build_adapter(
    config: AdapterConfig,
    *,
    metrics: Metrics,
    clock: Clock | None = None,
    reporter: AccordReporter | None = None,
) -> Adapter:
    """Load keys, registry and accords and open the stores named by ``config``.

    ``reporter`` (default: one on ``metrics``) is told of refused accords and their expiry.
    """
    me, store = config.partner, config.store
    clock = clock or SystemClock()
    keyset = load_keys(config)
    reporter = reporter or AccordReporter(metrics)
    # before the stores open: whether they exist says whether this adapter has run here before
    held = load_trust(config, key=keyset.signing, now=clock.now(), reporter=reporter)
    four_eyes = frozenset(config.spool.four_eyes_flows if config.spool else ())
    _check_four_eyes(four_eyes, held.book(clock.now()).counterparts(me).values())
    limits = config.limits
    spool = Spool(config.spool.dir) if config.spool is not None else None
    delivery_dir = DeliveryDir(store.delivery_dir) if store.delivery_dir else None
    webhook = Webhook(store.webhook_url, metrics=metrics) if store.webhook_url else None
    inbox = InboxStore.open(
        store.path,
        recipient=me,
        sealer=AeadSealer(),
        dedup_retention=dt.timedelta(seconds=limits.replay_window_seconds),
    )
    try:
        journal = SendJournal.open(journal_path(config))
    except BaseException:
        inbox.close()
        raise
    return Adapter(
        me=me,
        prefix=config.kafka.topic_prefix,
        registry=held.registry,
        accords=held,
        keys=keyset,
        journal=journal,
        inbox=inbox,
        clock=clock,
        metrics=metrics,
        retention=dt.timedelta(days=store.retention_days),
        max_age=dt.timedelta(seconds=limits.max_age_seconds),
        max_skew=dt.timedelta(seconds=limits.max_clock_skew_seconds),
        spool=spool,
        four_eyes=four_eyes,
        delivery_dir=delivery_dir,
        webhook=webhook,
        max_envelope_bytes=limits.max_envelope_bytes,
        reporter=reporter,
    )


class AdapterDaemon:
    """Runs an :class:`Adapter` against Kafka until stopped."""

    def __init__(
        self,
        adapter: Adapter,
        *,
        connection: Connection,
        health: Health | None = None,
        spool_interval_s: float = 0.05,
        housekeeping_interval_s: float = 60.0,
        fetch_timeout_ms: int = 500,
        expiry: ExpiryReporter | None = None,
        certificates: Sequence[Expiry] = (),
    ) -> None:
        self.adapter = adapter
        self.connection = connection
        self.health = health or Health()
        #: gauges and readiness for the registry, keys and ``certificates`` (read at start)
        self._expiry = expiry
        self._certificates = tuple(certificates)
        self._spool_interval_s = spool_interval_s
        self._housekeeping_interval_s = housekeeping_interval_s
        self._fetch_timeout_ms = fetch_timeout_ms
        metrics = adapter.metrics
        self._produced = metrics.counter(
            "xb_adapter_produced_total", "Envelopes acknowledged by Kafka.", ("recipient",)
        )
        self._retries = metrics.counter(
            "xb_adapter_send_retries_total", "Sends without a definite answer, to be retried."
        )
        self._pending = metrics.gauge("xb_adapter_journal_pending", "Envelopes awaiting acks.")
        self._lag = ConsumerLag(metrics)
        self._committed = metrics.counter(
            "xb_adapter_committed_total", "Inbox records whose offsets were committed."
        )
        for partner in sorted(adapter.registry.partners - {adapter.me}):
            self._produced.declare(recipient=partner)
        self._progress: asyncio.Condition | None = None
        self._registry_paused = False

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, checked after every commit and every send batch
        (for tests and supervisors: an event to await instead of a sleep)."""
        if self._progress is None:
            self._progress = asyncio.Condition()
        async with self._progress:
            await self._progress.wait_for(predicate)

    async def _notify(self) -> None:
        if self._progress is not None:
            async with self._progress:
                self._progress.notify_all()

    async def serve(self, stop: StopSignal) -> None:
        """Connect, set ready, run every task until ``stop``, drain, return."""
        adapter = self.adapter
        wake = asyncio.Event()
        adapter.on_journalled = wake.set
        intake_done = asyncio.Event()
        async with self._clients() as (producer, consumer):
            self.health.set_ready()
            _log.info("adapter_ready", partner=adapter.me)
            sender = asyncio.create_task(
                self._send_loop(producer, stop, wake, intake_done), name="sender"
            )
            intake = [
                asyncio.create_task(self._receive_loop(consumer, stop), name="receiver"),
                asyncio.create_task(self._spool_loop(stop), name="spool"),
                asyncio.create_task(self._housekeeping_loop(stop), name="housekeeping"),
            ]
            if adapter.webhook is not None:
                intake.append(asyncio.create_task(adapter.webhook.run(stop), name="webhook"))
            # A task that dies ends serve() (gather raises) and the daemon exits; until it
            # has, the daemon reports itself failed, naming the task.
            for task in [sender, *intake]:
                supervise(task, name=task.get_name(), health=self.health, metrics=adapter.metrics)
            try:
                await asyncio.gather(*intake)
            finally:
                self.health.set_draining()
                intake_done.set()
                wake.set()
                try:
                    await sender
                finally:
                    for task in intake:
                        task.cancel()
        _log.info("adapter_stopped", reason=stop.reason, pending=len(adapter.journal))

    @contextlib.asynccontextmanager
    async def _clients(self) -> AsyncIterator[tuple[Producer, Consumer]]:
        c, me = self.connection, self.adapter.me
        producer_settings = ProducerSettings(
            bootstrap=c.bootstrap,
            client_id=c.client_id,
            request_timeout_ms=c.request_timeout_ms,
            enable_idempotence=c.idempotence,
            security=c.security,
        )
        consumer_settings = ConsumerSettings(
            bootstrap=c.bootstrap,
            group_id=adapter_group(self.adapter.prefix, me),
            client_id=c.client_id,
            session_timeout_ms=c.session_timeout_ms,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            security=c.security,
        )
        topic = inbox_topic(self.adapter.prefix, me)
        async with (
            open_producer(producer_settings) as producer,
            open_consumer(consumer_settings, [topic]) as consumer,
        ):
            yield producer, consumer

    def _paused_for_registry(self) -> bool:
        """Past the registry's expiry, take nothing in (not ready) until a fresh one is
        installed: a frozen registry could hide a revocation. Records wait in Kafka, files in
        the spool."""
        if self.adapter.registry_usable():
            if self._registry_paused:
                self._registry_paused = False
                self.health.set_ready()
                _log.info("registry_usable_again", version=self.adapter.registry.version)
            return False
        if not self._registry_paused:
            self._registry_paused = True
            self.health.set_not_ready("the partner registry has expired")
            _log.error("registry_expired_paused", expires=str(self.adapter.registry.expires))
        return True

    def _index_while_idle(self) -> None:
        """Index a few stored messages for search, between fetches that found nothing: the
        index never costs delivery anything (``broker inbox search`` indexes what is left)."""
        try:
            indexed = self.adapter.inbox.index_pending(limit=_INDEX_BATCH)
        except errors.BrokerError as exc:  # a busy database: the next idle moment retries
            _log.warning("search_indexing_deferred", error=str(exc))
            return
        if indexed:
            _log.debug("messages_indexed", count=indexed)

    async def _receive_loop(self, consumer: Consumer, stop: StopSignal) -> None:
        trimmer = HeapTrimmer()
        while not stop.is_set():
            if self._paused_for_registry():
                if await stop.sleep(1.0):
                    return
                continue
            try:
                records = await consumer.fetch(
                    timeout_ms=self._fetch_timeout_ms, max_records=_RECEIVE_BATCH
                )
                self._lag.observe(consumer.lag())
            except errors.TransportError as exc:
                _log.warning("fetch_failed", error=str(exc))
                if await stop.sleep(1.0):
                    return
                continue
            if not records:
                trimmer.batch_done(0, full=False)
                self._index_while_idle()
                continue
            # One inbox transaction and one receipt-journal transaction for the whole batch;
            # the delivery files, a flush each, are written in a thread meanwhile the spool
            # and the sender go on, but still before the commit.
            _, deliveries = self.adapter.store_many(
                [record.value for record in records],
                ids=[
                    {"topic": r.topic, "partition": r.partition, "offset": r.offset}
                    for r in records
                ],
                defects=[record.defect for record in records],
            )
            if self.adapter.delivery_dir is not None and deliveries:
                await asyncio.to_thread(self.adapter.delivery_dir.write_many, deliveries)
            try:
                # Only now: every record of the batch is stored (or finally rejected).
                await consumer.commit(records)
            except errors.TransportError as exc:
                _log.warning("commit_failed", error=str(exc), note="records will be redelivered")
                continue
            self._committed.inc(len(records))
            trimmer.batch_done(len(records), full=len(records) == _RECEIVE_BATCH)
            await self._notify()

    async def _send_loop(
        self,
        producer: Producer,
        stop: StopSignal,
        wake: asyncio.Event,
        intake_done: asyncio.Event,
    ) -> None:
        journal, backoff = self.adapter.journal, 0.5
        while True:
            entries = journal.pending(limit=_SEND_BATCH)
            self._pending.set(len(journal))
            if not entries:
                if intake_done.is_set():
                    return
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=1.0)
                continue
            # One batch handed to the producer, every ack awaited: an entry leaves the
            # journal only once Kafka acknowledged it, and a send without a definite answer
            # stays to be produced again with the same bytes.
            results = await producer.send_many(
                [
                    OutboundRecord(
                        entry.topic,
                        entry.envelope,
                        key=entry.message_id.encode("ascii"),
                        headers=_headers(entry),
                    )
                    for entry in entries
                ]
            )
            acknowledged: list[JournalEntry] = []
            positions: list[Acknowledged] = []
            ambiguous: list[MessageId] = []
            for entry, result in zip(entries, results, strict=True):
                if isinstance(result, errors.TransportError):
                    ambiguous.append(entry.message_id)
                    _log.warning("send_ambiguous", message_id=entry.message_id, error=str(result))
                else:
                    acknowledged.append(entry)
                    positions.append(
                        Acknowledged(
                            entry.message_id, result.topic, result.partition, result.offset
                        )
                    )
                    _log.debug("envelope_sent", message_id=entry.message_id, offset=result.offset)
            # One transaction (one fsync) for the whole batch, not one per envelope.
            journal.acknowledge_many(positions, now=self.adapter.clock.now())
            journal.attempted_many(ambiguous)
            # nothing needs a submission's plaintext once every view of it is acknowledged;
            # a copy that cannot go now is retried by housekeeping, which fails loudly
            try:
                self.adapter.settle_sent(acknowledged)
            except errors.UsageError as exc:
                _log.error("sent_copy_not_removed", error=str(exc))
            if acknowledged:
                # the batch's one INFO line names every envelope Kafka acknowledged
                _log.info(
                    "envelopes_sent",
                    count=len(acknowledged),
                    message_ids=[entry.message_id for entry in acknowledged],
                )
            for entry in acknowledged:
                self._produced.inc(recipient=entry.recipient)
            self._retries.inc(len(ambiguous))
            failed = bool(ambiguous)
            await self._notify()
            if failed:
                if intake_done.is_set():
                    return  # still journalled: sent again, same bytes, on the next start
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            else:
                backoff = 0.5

    async def _spool_loop(self, stop: StopSignal) -> None:
        while not stop.is_set():
            try:
                # A chunk of files at a time, yielding in between: a burst is sealed while
                # the sender already produces its first views and the receiver keeps going.
                # Under a backlog the chunks grow to a budget of this thread's CPU time:
                # each costs a journal transaction and a flush of the spool directory,
                # whatever its size. (CPU, not wall time: on a machine short of CPU or of
                # disk, waiting would keep the chunks small, and the flushes many.)
                chunk = _SPOOL_CHUNK_MIN
                while not self._paused_for_registry():
                    started = time.thread_time()
                    if self.adapter.process_spool(limit=chunk) < chunk:
                        break
                    chunk = spool_chunk(chunk, time.thread_time() - started)
                    await asyncio.sleep(0)
                    if stop.is_set():
                        return
            except errors.UsageError as exc:
                _log.error("spool_failed", error=str(exc))
            if await stop.sleep(self._spool_interval_s):
                return

    def report_expiries(self) -> None:
        """Refresh the expiry gauges of the registry, keys and TLS files (and readiness)."""
        if self._expiry is None:
            return
        adapter = self.adapter
        signers = adapter.keys.signers.values()
        own = [*(key.public_key().key_id for key in signers), *adapter.keys.decryption]
        expiries = registry_expiries(adapter.registry, own=[KeyId(k) for k in own])
        self._expiry.observe([*expiries, *self._certificates], now=adapter.clock.now())

    async def _housekeeping_loop(self, stop: StopSignal) -> None:
        while not stop.is_set():
            self.adapter.shred_expired()
            self.adapter.report_accords()
            self.report_expiries()
            if await stop.sleep(self._housekeeping_interval_s):
                return


def spool_chunk(previous: int, elapsed_s: float) -> int:
    """How many spool files to take next, after ``previous`` took ``elapsed_s`` of CPU: as
    many as fit the budget at that pace, at most doubling at once, within the bounds."""
    fitting = int(_SPOOL_CHUNK_BUDGET_S * previous / elapsed_s) if elapsed_s > 0 else previous * 2
    return max(_SPOOL_CHUNK_MIN, min(_SPOOL_CHUNK_MAX, previous * 2, fitting))


async def serve_config(
    config: AdapterConfig,
    stop: StopSignal,
    *,
    metrics: Metrics | None = None,
    health: Health | None = None,
) -> None:
    """The whole daemon from a configuration: observability, reloads, and the adapter, under
    the lock of its state directory (the store's), taken before anything there is read."""
    with state_lock(config.store.path.parent, daemon="adapter"):
        await _serve_locked(config, stop, metrics=metrics, health=health)


async def _serve_locked(
    config: AdapterConfig, stop: StopSignal, *, metrics: Metrics | None, health: Health | None
) -> None:
    metrics, health = metrics or Metrics(), health or Health()
    # read the Kafka secrets and certificates first: a bad file fails before any store opens
    security = kafka_client_security(config.kafka)
    adapter = build_adapter(config, metrics=metrics)
    connection = Connection(
        bootstrap=",".join(config.kafka.bootstrap),
        client_id=config.kafka.client_id,
        session_timeout_ms=config.kafka.session_timeout_ms,
        request_timeout_ms=config.kafka.request_timeout_ms,
        security=security,
        idempotence=config.kafka.capabilities.idempotence,
    )
    window = dt.timedelta(days=config.observability.expiry_readiness_days)
    daemon = AdapterDaemon(
        adapter,
        connection=connection,
        health=health,
        expiry=ExpiryReporter(metrics, health=health, readiness_window=window),
        # the files as read at start: the client holds those until it restarts
        certificates=certificate_expiries(config.kafka.certificate_files),
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            if config.observability.port is not None:
                await stack.enter_async_context(
                    serve_observability(
                        port=config.observability.port,
                        metrics=metrics,
                        health=health,
                        host=config.observability.host,
                    )
                )
            reloads = asyncio.create_task(_watch_reloads(config, adapter, stop))
            supervise(reloads, name="reloader", health=health, metrics=metrics)
            try:
                await daemon.serve(stop)
            finally:
                reloads.cancel()
    finally:
        adapter.journal.close()
        adapter.inbox.close()


async def _watch_reloads(config: AdapterConfig, adapter: Adapter, stop: StopSignal) -> None:
    held = adapter.accords
    if not isinstance(held, HeldTrust):
        raise errors.UsageError("an adapter run from its configuration holds its trust")

    def reload(changed: tuple[Path, ...]) -> None:
        now = adapter.clock.now()
        update = held.update_registry(now=now) if config.registry.path in changed else None
        if update is not None and update.adopted:
            adapter.registry = held.registry
        if update is not None and adapter.reporter is not None:
            adapter.reporter.registry_update(update)
        if adapter.reporter is not None:
            # each file that fails keeps its last good version; the others are read afresh
            reread_accords(held, now=now, reporter=adapter.reporter)

    await watch(held.watched_paths, reload, interval_s=2.0, stop=stop)


def _headers(entry: JournalEntry) -> tuple[tuple[str, bytes], ...]:
    """The routing header, and the header the gateway reads beside the envelope, if any (a
    forward's grant, the id a receipt acknowledges)."""
    routing = (RECIPIENT_HEADER, entry.recipient.encode("ascii"))
    if entry.gateway_header is None:
        return (routing,)
    return (routing, entry.gateway_header)
