"""The adapter's work, without Kafka: submissions in, sealed envelopes journalled; deliveries
in, verified messages stored. The daemon (:mod:`broker.adapter.daemon`) feeds it records and
drains its journal to Kafka; tests drive it directly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import structlog

from broker import errors
from broker.adapter._setup import AdapterKeys
from broker.adapter.journal import SendJournal
from broker.adapter.outputs import DeliveryDir, Webhook
from broker.adapter.spool import Spool, parse_submission
from broker.clock import Clock
from broker.config import outbox_topic
from broker.envelope import DEFAULT_MAX_AGE, DEFAULT_MAX_SKEW
from broker.ids import MessageId, PartnerCode
from broker.keys import Registry
from broker.pipeline.receive import Accepted, Rejected, accept
from broker.pipeline.send import (
    AccordInForce,
    Outgoing,
    Refused,
    SendOutcome,
    prepare,
    prepare_receipt,
)
from broker.policy import Decision
from broker.policy.model import RateWindow
from broker.runtime import Metrics
from broker.schema import Message
from broker.store import InboxStore

__all__ = ["Adapter", "RateCounters", "ReceiveVerdict"]

_log = structlog.get_logger(__name__)
_WINDOW_SECONDS = {RateWindow.HOUR: 3_600, RateWindow.DAY: 86_400}

ReceiveVerdict = str
"""``"stored"``, ``"duplicate"``, ``"conflict"`` or ``"rejected"``."""


class RateCounters:
    """Messages sent per flow in the current fixed window (hour or day), for the accord's limits.

    One integer per flow: memory stays bounded by the number of flows, not by traffic.
    """

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # flow id -> (window index, count)
        self._windows: dict[str, int] = {}

    def snapshot(self, now: dt.datetime) -> dict[str, int]:
        """The counts of the windows that contain ``now``."""
        result = {}
        for flow, (index, count) in self._counts.items():
            if int(now.timestamp()) // self._windows[flow] == index:
                result[flow] = count
        return result

    def count(self, decision: Decision | None, accord: AccordInForce, now: dt.datetime) -> None:
        """Count one sent view against its flow's limit, if the flow has one."""
        if decision is None or decision.rate_counter is None:
            return
        flow = next((f for f in accord.accord.flows if f.id == decision.rate_counter), None)
        if flow is None or flow.rate is None:
            return
        seconds = _WINDOW_SECONDS[flow.rate.window]
        index = int(now.timestamp()) // seconds
        current, count = self._counts.get(flow.id, (index, 0))
        self._windows[flow.id] = seconds
        self._counts[flow.id] = (index, count + 1 if current == index else 1)


@dataclasses.dataclass
class Adapter:
    """One partner's adapter: what it may send, to whom, and what it has received."""

    me: PartnerCode
    prefix: str
    registry: Registry
    accords: Mapping[PartnerCode, AccordInForce]
    keys: AdapterKeys
    journal: SendJournal
    inbox: InboxStore
    clock: Clock
    metrics: Metrics
    retention: dt.timedelta
    max_age: dt.timedelta = DEFAULT_MAX_AGE
    max_skew: dt.timedelta = DEFAULT_MAX_SKEW
    spool: Spool | None = None
    delivery_dir: DeliveryDir | None = None
    webhook: Webhook | None = None
    #: called after envelopes were journalled, so the sender wakes at once
    on_journalled: Callable[[], None] = lambda: None
    rates: RateCounters = dataclasses.field(default_factory=RateCounters)

    def __post_init__(self) -> None:
        m = self.metrics
        self._sealed = m.counter(
            "xb_adapter_sealed_total", "Views sealed and journalled.", ("recipient",)
        )
        self._refused = m.counter(
            "xb_adapter_refused_total", "Recipients refused when sending.", ("reason_code",)
        )
        self._delivered = m.counter("xb_adapter_delivered_total", "Messages verified and stored.")
        self._replays = m.counter("xb_adapter_replays_dropped_total", "Redeliveries dropped.")
        self._conflicts = m.counter("xb_adapter_conflicts_total", "Reused ids with other bytes.")
        self._rejected = m.counter(
            "xb_adapter_rejected_total", "Deliveries rejected.", ("reason_code",)
        )
        self._shredded = m.counter("xb_adapter_shredded_total", "Messages crypto-shredded.")
        self._topic = outbox_topic(self.prefix, self.me)

    # -- sending ------------------------------------------------------------------------------

    def submit(self, message: Message, *, to: Sequence[PartnerCode]) -> list[SendOutcome]:
        """Decide, seal and journal ``message`` for each of ``to``; returns one outcome each.

        An :class:`Outgoing` is durably journalled and will be produced (at least once, always
        the same bytes); a :class:`Refused` names why that recipient gets nothing.
        """
        outcomes = self._prepare(message, to)
        self._journal(outcomes, source=None)
        return outcomes

    def process_spool(self) -> int:
        """Handle every file waiting in the spool; returns how many were handled."""
        if self.spool is None:
            return 0
        handled = 0
        for path in self.spool.waiting():
            try:
                data = path.read_bytes()
            except OSError as exc:
                _log.warning("spool_unreadable", file=path.name, error=exc.strerror)
                continue
            source = Spool.source_key(path, data)
            handled += 1
            if self.journal.has_source(source):  # journalled before a crash; finish the move
                self.spool.mark_sent(path)
                continue
            try:
                submission = parse_submission(data)
                outcomes = self._prepare(submission.message, submission.to)
            except (errors.SchemaError, errors.UsageError) as exc:
                _log.warning("spool_rejected", file=path.name, error=str(exc))
                self.spool.mark_rejected(path, str(exc))
                continue
            refusals = [
                f"{o.recipient}: {o.reason_code}: {'; '.join(o.reasons)}"
                for o in outcomes
                if isinstance(o, Refused)
            ]
            if len(refusals) == len(outcomes):
                self.spool.mark_rejected(path, "\n".join(refusals))
                continue
            self._journal(outcomes, source=source)
            self.spool.mark_sent(path, refusals=refusals)
        return handled

    def _prepare(self, message: Message, to: Sequence[PartnerCode]) -> list[SendOutcome]:
        now = self.clock.now()
        outcomes = prepare(
            message,
            sender=self.me,
            recipients=list(to),
            accords=self.accords,
            registry=self.registry,
            signing_key=self.keys.signing,
            now=now,
            counters=self.rates.snapshot(now),
        )
        for outcome in outcomes:
            if isinstance(outcome, Outgoing):
                self.rates.count(outcome.decision, self.accords[outcome.recipient], now)
            else:
                self._refused.inc(reason_code=outcome.reason_code)
                _log.info(
                    "recipient_refused",
                    recipient=outcome.recipient,
                    reason_code=outcome.reason_code,
                )
        return outcomes

    def _journal(self, outcomes: Sequence[SendOutcome], *, source: str | None) -> bool:
        entries = [
            (o.message_id, o.recipient, self._topic, o.envelope)
            for o in outcomes
            if isinstance(o, Outgoing)
        ]
        if not entries:
            return False
        recorded = self.journal.record(entries, source=source, now=self.clock.now())
        if recorded:
            for message_id, recipient, _, _ in entries:
                self._sealed.inc(recipient=recipient)
                _log.info("view_sealed", message_id=message_id, recipient=recipient)
            self.on_journalled()
        return recorded

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, frame: bytes | None) -> ReceiveVerdict:
        """Verify one delivery frame and store it; the caller commits the offset afterwards."""
        now = self.clock.now()
        if frame is None:
            self._rejected.inc(reason_code="malformed")
            _log.warning("delivery_rejected", reason_code="malformed", reason="empty record")
            return "rejected"
        outcome = accept(
            frame,
            me=self.me,
            registry=self.registry,
            decryption_keys=self.keys.decryption,
            now=now,
            retention=self.retention,
            max_age=self.max_age,
            max_skew=self.max_skew,
        )
        if isinstance(outcome, Rejected):
            return self._rejected_delivery(outcome)
        verdict = self.inbox.put(
            message_id=outcome.message_id,
            sender=outcome.sender,
            labels=outcome.labels,
            case_id=outcome.header.case_id,
            plaintext=outcome.message_bytes,
            digest=outcome.envelope_digest,
            received_at=outcome.received_at,
            retain_until=outcome.retain_until,
        )
        if verdict == "conflict":
            self._conflicts.inc()
            _log.error(
                "security_alert",
                alert="replay_conflict",
                message_id=outcome.message_id,
                sender=outcome.sender,
                reason="a message id was reused for a different envelope",
            )
            return "conflict"
        if verdict == "duplicate":
            self._replays.inc()
            _log.info("duplicate_dropped", message_id=outcome.message_id, sender=outcome.sender)
        else:
            self._delivered.inc()
            _log.info("message_stored", message_id=outcome.message_id, sender=outcome.sender)
            if self.webhook is not None:
                self.webhook.enqueue(
                    message_id=outcome.message_id,
                    sender=outcome.sender,
                    message_json=outcome.message_bytes,
                )
        if self.delivery_dir is not None:
            # Also for duplicates: a crash between the store and this write is filled in here.
            self.delivery_dir.write(
                message_id=outcome.message_id,
                sender=outcome.sender,
                message_json=outcome.message_bytes,
            )
        self._receipt(outcome)
        return "stored" if verdict == "new" else "duplicate"

    def _rejected_delivery(self, outcome: Rejected) -> ReceiveVerdict:
        self._rejected.inc(reason_code=outcome.reason_code)
        _log.warning(
            "delivery_rejected",
            reason_code=outcome.reason_code,
            reason=outcome.reason,
            message_id=outcome.message_id,
            sender=outcome.sender,
        )
        if outcome.reason_code == "label_mismatch":
            _log.error(
                "security_alert",
                alert="label_mismatch",
                message_id=outcome.message_id,
                sender=outcome.sender,
                reason=outcome.reason,
            )
        if outcome.receipt is not None and outcome.sender is not None and outcome.message_id:
            self._send_receipt(outcome.receipt, to=outcome.sender, for_message=outcome.message_id)
        return "rejected"

    def _receipt(self, outcome: Accepted) -> None:
        if outcome.receipt is not None:
            self._send_receipt(outcome.receipt, to=outcome.sender, for_message=outcome.message_id)

    def _send_receipt(self, receipt: Message, *, to: PartnerCode, for_message: MessageId) -> None:
        source = f"receipt:{for_message}"
        accord = self.accords.get(to)
        if accord is None or self.journal.has_source(source):
            if accord is None:
                _log.warning(
                    "receipt_not_sent", message_id=for_message, reason="no accord with sender"
                )
            return
        sealed = prepare_receipt(
            receipt,
            sender=self.me,
            recipient=to,
            accord=accord,
            registry=self.registry,
            signing_key=self.keys.signing,
            now=self.clock.now(),
        )
        if isinstance(sealed, Refused):
            _log.warning(
                "receipt_not_sent", message_id=for_message, reason="; ".join(sealed.reasons)
            )
            return
        self._journal([sealed], source=source)

    # -- housekeeping -------------------------------------------------------------------------

    def shred_expired(self) -> int:
        """Crypto-shred messages past retention and forget old de-duplication entries."""
        now = self.clock.now()
        shredded = self.inbox.shred_expired(now)
        self.inbox.dedup.prune(now)
        # A receipt or spool source older than the replay window can no longer be redelivered.
        self.journal.prune_sources(older_than=now - 2 * (self.max_age + self.max_skew))
        if shredded:
            self._shredded.inc(shredded)
            _log.info("messages_shredded", count=shredded)
        return shredded
