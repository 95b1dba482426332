"""The adapter's work, without Kafka: submissions in, sealed envelopes journalled; deliveries
in, verified messages stored. The daemon (:mod:`broker.adapter.daemon`) feeds it records and
drains its journal to Kafka; tests drive it directly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import structlog

from broker import errors, limits
from broker.adapter._setup import AdapterKeys
from broker.adapter.fates import DEFAULT_MAX_AGE as FATES_MAX_AGE
from broker.adapter.fates import Receipted, ViewRefusal
from broker.adapter.journal import JournalEntry, Sealed, SendJournal
from broker.adapter.outputs import Delivery, DeliveryDir, Webhook
from broker.adapter.receiving import inbox_item, log_rejection, rejection_row, verify_record
from broker.adapter.spool import MAX_SUBMISSION_BYTES, Spool, parse_submission
from broker.bounded import read_bounded
from broker.clock import Clock
from broker.config import outbox_topic
from broker.envelope import DEFAULT_MAX_AGE, DEFAULT_MAX_SKEW, Origin
from broker.ids import MessageId, PartnerCode
from broker.keys import Registry
from broker.pipeline.notice import VerifiedNotice
from broker.pipeline.receipts import Acknowledgement, batch_receipts, receipt_lines
from broker.pipeline.receive import Accepted, Rejected
from broker.pipeline.send import (
    Outgoing,
    Refused,
    SendOutcome,
    prepare,
    prepare_receipt,
    sign_views,
)
from broker.reasons import ReasonCode
from broker.runtime import AccordReporter, Metrics, bind_ids
from broker.schema import Message
from broker.schema.handling import RestrictToUnits
from broker.schema.protocol import Withdrawal
from broker.store import DedupVerdict, InboxStore, RejectedDelivery, Withdrawn
from broker.store.officers import Role
from broker.store.rejected import DEFAULT_MAX_AGE as REJECTED_MAX_AGE
from broker.trust import AccordInForce, BookSource, RateCounters

__all__ = ["Adapter", "ReceiveVerdict"]

_log = structlog.get_logger(__name__)

ReceiveVerdict = str
"""``"stored"``, ``"duplicate"``, ``"conflict"``, ``"rejected"``, or ``"notice"`` (the gateway's
notice of a view of ours it quarantined)."""


@dataclasses.dataclass
class Adapter:
    """One partner's adapter: what it may send, to whom, and what it has received."""

    me: PartnerCode
    prefix: str
    registry: Registry
    #: every accord version held; which one decides is asked at each use
    accords: BookSource
    keys: AdapterKeys
    journal: SendJournal
    inbox: InboxStore
    clock: Clock
    metrics: Metrics
    #: the longest this adapter keeps what it receives (``store.retention_days``); an accord's
    #: flow or the message itself may end it sooner (:mod:`broker.pipeline.retention`)
    retention: dt.timedelta
    max_age: dt.timedelta = DEFAULT_MAX_AGE
    max_skew: dt.timedelta = DEFAULT_MAX_SKEW
    spool: Spool | None = None
    delivery_dir: DeliveryDir | None = None
    webhook: Webhook | None = None
    #: called after envelopes were journalled, so the sender wakes at once
    on_journalled: Callable[[], None] = lambda: None
    rates: RateCounters = dataclasses.field(default_factory=RateCounters)
    #: the most of a refused frame kept in the inbox's rejected table (with its digest)
    max_rejected_frame_bytes: int = limits.REJECTED_PREFIX_BYTES
    #: how long a refusal is kept in the rejected table, at most
    rejected_max_age: dt.timedelta = REJECTED_MAX_AGE
    #: the largest envelope sealed: a larger view is refused, never sent to be refused later
    max_envelope_bytes: int = limits.MAX_ENVELOPE_BYTES
    #: tells operators of refused accords and coming expiries (default: one on ``metrics``)
    reporter: AccordReporter | None = None
    #: the accord flows whose spool submissions a second officer must release
    #: (``spool.four_eyes_flows``)
    four_eyes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        m = self.metrics
        if self.reporter is None:
            self.reporter = AccordReporter(m)
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
        self._pruned = m.counter(
            "xb_adapter_rejected_pruned_total", "Refusals pruned from the rejected table by age."
        )
        self._seal_seconds = m.histogram(
            "xb_adapter_seal_seconds",
            "Time to decide, redact and seal one submission for all its recipients.",
        )
        self._open_seconds = m.histogram(
            "xb_adapter_open_seconds", "Time to verify, decrypt and check one delivery."
        )
        self._end_to_end = m.histogram(
            "xb_adapter_end_to_end_seconds",
            "From the sender sealing a message (its signed created time) to its storage here; "
            "read across two hosts' clocks.",
        )
        # every series at zero from the first scrape: "none yet" is not "not exported"
        for code in ReasonCode:
            self._refused.declare(reason_code=code)
            self._rejected.declare(reason_code=code)
        for partner in sorted(self.registry.partners - {self.me}):
            self._sealed.declare(recipient=partner)
        self._topic = outbox_topic(self.prefix, self.me)

    # -- sending ------------------------------------------------------------------------------

    def submit(
        self, message: Message, *, to: Sequence[PartnerCode], officer: str | None = None
    ) -> list[SendOutcome]:
        """Decide, seal and journal ``message`` for each of ``to``; returns one outcome each.

        An :class:`Outgoing` is durably journalled and will be produced (at least once, always
        the same bytes); a :class:`Refused` names why that recipient gets nothing. ``officer``
        (who must hold the submit role here) is named in each view's signed header.
        """
        outcomes = self._prepare(message, to, origin=self._origin(officer))
        self._journal(outcomes, source=None)
        return outcomes

    def process_spool(self, *, limit: int | None = None) -> int:
        """Handle the files waiting in the spool (at most ``limit``, oldest first); returns
        how many were handled.

        The handled files' views are journalled together in one transaction before any file
        moves to ``sent/``, so a crash in between finds them journalled and only finishes the
        move. The daemon passes a small ``limit`` and yields between calls, so a burst of
        submissions never holds up sending and receiving for long.
        """
        if self.spool is None:
            return 0
        waiting = self.spool.waiting(limit=limit)
        handled = 0
        ready: list[tuple[Path, str, list[SendOutcome], list[str]]] = []
        #: the view ids the chunk's files chose so far: two files never seal one id
        chosen: set[str] = set()
        #: who released each file's views, by source (four-eyes release)
        approvers: dict[str, str] = {}
        for path in waiting:
            try:
                # bounded, and never blocking on a FIFO put in a file's place after the scan
                data = read_bounded(
                    path,
                    limit=MAX_SUBMISSION_BYTES,
                    what="the submission",
                    too_large=errors.SchemaError,
                )
            except errors.SchemaError as exc:
                self.spool.mark_rejected(path, str(exc))
                continue
            except errors.UsageError as exc:
                _log.warning("spool_unreadable", file=path.name, error=str(exc))
                continue
            source = Spool.source_key(path, data)
            handled += 1
            if self.journal.has_source(source):  # journalled before a crash; finish the move
                self.spool.mark_sent(path)
                self.spool.remove_settled(self.journal.settled, names=[path.name])
                continue
            try:
                submission = parse_submission(data)
                self._fresh_ids(submission.ids.values(), chosen)
                released = self._released_by(submission.approver, submission.officer)
                outcomes = self._prepare(
                    submission.message,
                    submission.to,
                    ids=submission.ids,
                    sign=False,
                    origin=self._origin(submission.officer),
                    released=released,
                )
            except (errors.SchemaError, errors.UsageError, errors.AccessError) as exc:
                _log.warning("spool_rejected", file=path.name, error=str(exc))
                self.spool.mark_rejected(path, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one file must never stop the spool
                # left in incoming/, it would stop the daemon again at every start
                _log.exception("spool_failed", file=path.name)
                self.spool.mark_rejected(
                    path, f"the adapter could not process this submission ({type(exc).__name__})"
                )
                continue
            refused = [o for o in outcomes if isinstance(o, Refused)]
            # before the file moves: a crash in between decides it again, recording nothing twice
            self.journal.record_refusals(
                [
                    ViewRefusal(
                        submission.ids[o.recipient],
                        o.recipient,
                        o.reason_code,
                        "; ".join(o.reasons),
                    )
                    for o in refused
                    if o.recipient in submission.ids
                ],
                source=source,
                now=self.clock.now(),
            )
            refusals = [f"{o.recipient}: {o.reason_code}: {'; '.join(o.reasons)}" for o in refused]
            if len(refusals) == len(outcomes):
                self.spool.mark_rejected(path, "\n".join(refusals))
                continue
            ready.append((path, source, outcomes, refusals))
            if released is not None:
                approvers[source] = released
        # the chunk's views are signed together: one signature per signing key, not per view
        signed = sign_views([outcomes for _, _, outcomes, _ in ready])
        sources = [source for _, source, _, _ in ready]
        self._journal_many(list(zip(sources, signed, strict=True)), approvers=approvers)
        self.spool.mark_sent_many([(path, refusals) for path, _, _, refusals in ready])
        return handled

    def _fresh_ids(self, ids: Iterable[str], chosen: set[str]) -> None:
        """Refuse (SchemaError) a submission choosing a view id already sealed here, or
        chosen by another file of the chunk: a copied or twice-released file must not seal a
        second envelope under one id (nor stop the journal, whose ids are unique)."""
        wanted = set(ids)
        taken = (wanted & chosen) | self.journal.sealed_among(wanted)
        if taken:
            raise errors.SchemaError(
                f"a view under {', '.join(sorted(taken))} was already sealed from another "
                "submission: this one is a copy (or a second release) and is not sent"
            )
        chosen.update(wanted)

    def _released_by(self, approver: str | None, officer: str | None) -> str | None:
        """The second officer who released a submission: one who holds ``approve`` now and is
        not its submitter; None when nobody did (its four-eyes views are then refused)."""
        if approver is None or approver == officer:
            return None
        self.inbox.officers.holding(approver, Role.APPROVE)  # AccessError rejects the file
        return approver

    def _held_back(
        self, outcome: SendOutcome, released: str | None, message: Message
    ) -> SendOutcome:
        """``outcome``, or a refusal if its flow needs a second officer's release and has
        none. A withdrawal is not held when it takes back a view this adapter sealed for the
        same recipient (it discloses nothing new, and must not wait); any other text sent as
        one is held like the rest."""
        decision = outcome.decision
        if (
            not isinstance(outcome, Outgoing)
            or released is not None
            or decision is None
            or decision.flow not in self.four_eyes
            or self._takes_back(message, outcome.recipient)
        ):
            return outcome
        why = (
            f"flow {decision.flow} needs a second officer's release (spool.four_eyes_flows): "
            "send it with `broker send`, then `broker release ID` by another officer"
        )
        return Refused(outcome.recipient, ReasonCode.NOT_RELEASED, (why,), decision)

    def _takes_back(self, message: Message, recipient: PartnerCode) -> bool:
        """Whether ``message`` withdraws a view this adapter sealed for ``recipient``."""
        body = message.body
        if not isinstance(body, Withdrawal):
            return False
        try:
            sent = self.journal.fates_of(body.withdraws)
        except errors.UsageError:  # never sent from here (or no longer remembered)
            return False
        return any(
            f.message_id == body.withdraws and f.recipient == recipient and f.journalled_at
            for f in sent
        )

    def _origin(self, officer_id: str | None) -> Origin | None:
        """What the signed header says of the officer who submitted a message: their id,
        agency and unit from this adapter's directory, as it stands now (a disabled officer,
        or one without the ``submit`` role, has the submission rejected)."""
        if officer_id is None:
            return None
        return self.inbox.officers.holding(officer_id, Role.SUBMIT).origin()

    def _prepare(
        self,
        message: Message,
        to: Sequence[PartnerCode],
        *,
        ids: Mapping[PartnerCode, MessageId] | None = None,
        sign: bool = True,
        origin: Origin | None = None,
        released: str | None = None,
    ) -> list[SendOutcome]:
        now = self.clock.now()
        started = time.perf_counter()
        outcomes = prepare(
            message,
            sender=self.me,
            recipients=list(to),
            accords=self.accords.book(now).counterparts(self.me),
            registry=self.registry,
            signing_key=self.keys.signers,
            now=now,
            counters=self.rates.snapshot(now),
            max_envelope_bytes=self.max_envelope_bytes,
            message_ids=ids,
            sign=sign,
            origin=origin,
        )
        if self.four_eyes:
            outcomes = [self._held_back(outcome, released, message) for outcome in outcomes]
        self._seal_seconds.observe(time.perf_counter() - started)
        for outcome in outcomes:
            if isinstance(outcome, Outgoing):
                self.rates.count(outcome.decision, now)
            else:
                self._refused.inc(reason_code=outcome.reason_code)
                _log.info(
                    "recipient_refused",
                    recipient=outcome.recipient,
                    reason_code=outcome.reason_code,
                )
        return outcomes

    def _journal(self, outcomes: Sequence[SendOutcome], *, source: str | None) -> bool:
        return self._journal_many([(source, outcomes)])[0]

    def _journal_many(
        self,
        submissions: Sequence[tuple[str | None, Sequence[SendOutcome]]],
        *,
        covers: Mapping[str, Sequence[str]] | None = None,
        approvers: Mapping[str, str] | None = None,
    ) -> list[bool]:
        """Journal every submission's sealed views in one transaction; False for a source
        that was journalled before (or has no view to send). ``approvers`` names, by source,
        the officer who released a submission's views."""
        if any(isinstance(o, Outgoing) and o.unsigned for _, views in submissions for o in views):
            raise errors.UsageError("a view must be signed (sign_views) before it is journalled")
        batches = [
            (
                source,
                [
                    (o.message_id, o.recipient, self._topic, o.envelope)
                    for o in outcomes
                    if isinstance(o, Outgoing)
                ],
            )
            for source, outcomes in submissions
        ]
        wanted = [(source, entries) for source, entries in batches if entries]
        if not wanted:
            return [False] * len(batches)
        released = approvers or {}
        known = {
            o.message_id: Sealed(
                o.labels,
                o.case_id,
                o.gateway_header,
                o.origin,
                None if source is None else released.get(source),
                o.conditions,
            )
            for source, outcomes in submissions
            for o in outcomes
            if isinstance(o, Outgoing) and o.labels is not None
        }
        recorded = iter(
            self.journal.record_many(wanted, now=self.clock.now(), sealed=known, covers=covers)
        )
        results: list[bool] = []
        sealed = 0
        for _source, entries in batches:
            done = bool(entries) and next(recorded)
            results.append(done)
            if done:
                for message_id, recipient, _, _ in entries:
                    self._sealed.inc(recipient=recipient)
                    _log.debug("view_sealed", message_id=message_id, recipient=recipient)
                sealed += len(entries)
        if any(results):
            _log.info("views_journalled", count=sealed)
            self.on_journalled()
        return results

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, frame: bytes | None) -> ReceiveVerdict:
        """Verify one delivery frame and store it; the caller commits the offset afterwards."""
        return self.receive_many([frame])[0]

    def receive_many(
        self,
        frames: Sequence[bytes | None],
        *,
        ids: Sequence[Mapping[str, object]] | None = None,
    ) -> list[ReceiveVerdict]:
        """:meth:`store_many`, then the batch's files in the delivery directory."""
        verdicts, deliveries = self.store_many(frames, ids=ids)
        if self.delivery_dir is not None:
            self.delivery_dir.write_many(deliveries)
        return verdicts

    def store_many(
        self,
        frames: Sequence[bytes | None],
        *,
        ids: Sequence[Mapping[str, object]] | None = None,
        defects: Sequence[str | None] | None = None,
    ) -> tuple[list[ReceiveVerdict], list[Delivery]]:
        """Verify and store a fetched batch of delivery frames; one verdict each, in order,
        and what the delivery directory must get before the offsets are committed (the
        daemon writes those files off its event loop: they cost a flush each).

        The verdicts and effects are those of :meth:`receive` called on each frame in turn,
        but every accepted message is stored in ONE inbox transaction and every receipt is
        journalled in ONE journal transaction, so a batch costs two fsyncs instead of two per
        record. A refused frame is recorded in the inbox's rejected table in the inbox's
        transaction. Everything is durable when this returns: the caller commits the offsets
        only afterwards. ``ids`` (one mapping per frame: topic, partition, offset) are bound to
        the log lines of their frame and key its rejected row; ``defects`` (one per frame, from
        the transport) refuse a record that could not be decoded whole.
        """
        if ids is not None and len(ids) != len(frames):
            raise errors.UsageError("receive_many: one ids mapping per frame")
        if defects is not None and len(defects) != len(frames):
            raise errors.UsageError("receive_many: one defect (or None) per frame")
        now = self.clock.now()
        accords = self.accords.book(now).counterparts(self.me)
        receipts: list[Acknowledgement] = []
        verdicts: list[ReceiveVerdict] = []
        accepted: list[tuple[int, Accepted]] = []
        refused: list[RejectedDelivery] = []
        notices: list[VerifiedNotice] = []
        for index, frame in enumerate(frames):
            position = ids[index] if ids is not None else None
            with bind_ids(**(position or {})):
                defect = defects[index] if defects is not None else None
                started = time.perf_counter()
                outcome = self._verify(frame, now, accords, defect)
                self._open_seconds.observe(time.perf_counter() - started)
                if isinstance(outcome, VerifiedNotice):
                    verdicts.append("notice")
                    notices.append(outcome)
                elif isinstance(outcome, Rejected):
                    verdicts.append("rejected")
                    refused.append(self._record_refusal(outcome, frame, position, now, receipts))
                else:
                    verdicts.append("stored")  # replaced once the store has decided
                    accepted.append((index, outcome))
        self._alert_foreign_withdrawals(accepted)
        items = [inbox_item(outcome, frames[index] or b"") for index, outcome in accepted]
        stored = self.inbox.put_many(items, rejected=refused)
        for (index, outcome), verdict in zip(accepted, stored, strict=True):
            with bind_ids(**(ids[index] if ids is not None else {})):
                verdicts[index] = self._after_store(outcome, verdict, receipts)
        withdrawn = set(self._apply_withdrawals(accepted, verdicts, now))
        # Also for duplicates: a crash between the store and this is filled in then.
        self.journal.record_receipts(
            [
                receipted
                for (index, outcome) in accepted
                if verdicts[index] != "conflict"
                for receipted in _receipted(outcome)
            ],
            now=now,
        )
        # Also for duplicates: a crash between the store and the files is filled in then;
        # but never for a message shredded since, whose file must stay gone.
        shredded = self.inbox.shredded_among(
            outcome.message_id for index, outcome in accepted if verdicts[index] == "duplicate"
        )
        deliveries = [
            (outcome.message_id, outcome.sender, outcome.message_bytes)
            for (index, outcome) in accepted
            if verdicts[index] != "conflict"
            and outcome.message_id not in shredded
            and outcome.message_id not in withdrawn
        ]
        self._note_quarantines(notices)
        self._send_receipts(receipts)
        _log.info(
            "batch_stored",
            records=len(frames),
            stored=verdicts.count("stored"),
            duplicates=verdicts.count("duplicate"),
            rejected=verdicts.count("rejected"),
            conflicts=verdicts.count("conflict"),
            notices=len(notices),
            message_ids=[str(outcome.message_id) for _, outcome in accepted],
        )
        return verdicts, deliveries

    def _note_quarantines(self, notices: Sequence[VerifiedNotice]) -> None:
        """Record what the gateway's notices say of our quarantined views (`broker status`
        shows it) and log each: a view of ours the accords or the gateway refused is news for
        the operator. A notice for a view this adapter never sent matches nothing."""
        if not notices:
            return
        matched = self.journal.record_quarantines(notices)
        for notice in notices:
            _log.warning(
                "view_quarantined",
                message_id=notice.message_id,
                recipient=notice.recipient,
                reason_code=notice.reason_code,
                reason=notice.reason,
            )
        if matched < len(notices):
            _log.info("quarantine_notices_unmatched", count=len(notices) - matched)

    def _alert_foreign_withdrawals(self, accepted: Sequence[tuple[int, Accepted]]) -> None:
        """Log a security alert for each withdrawal naming a view another partner sent (as
        stored here, else as in this batch). Such a notice is stored and receipted like any
        other and changes nothing (a notice binds only its own sender's view): refusing it
        would tell its sender that the view exists here, and whose it is."""
        notices = [(o, body) for _, o in accepted if (body := _withdrawal(o)) is not None]
        if not notices:
            return
        owners = {str(o.message_id): str(o.sender) for _, o in accepted}
        stored = self.inbox.originators(body.withdraws for _, body in notices)
        owners.update((str(mid), str(sender)) for mid, sender in stored.items())  # the store wins
        for outcome, body in notices:
            owner = owners.get(body.withdraws)
            if owner is not None and owner != outcome.sender:
                _log.error(
                    "security_alert",
                    alert="foreign_withdrawal",
                    message_id=outcome.message_id,
                    sender=outcome.sender,
                    reason=f"names {body.withdraws}, which {owner} sent: it changes nothing",
                )

    def _apply_withdrawals(
        self,
        accepted: Sequence[tuple[int, Accepted]],
        verdicts: Sequence[ReceiveVerdict],
        now: dt.datetime,
    ) -> tuple[MessageId, ...]:
        """Shred what this batch's withdrawals take back, and what arrived already withdrawn.
        Also for redelivered notices: a crash between the store and this is made good then."""
        notices = [
            Withdrawn(
                message_id=body.withdraws,
                sender=outcome.sender,
                notice_id=outcome.message_id,
                reason=_reason_kept(outcome.message, body),
                replaced_by=body.replaced_by,
            )
            for index, outcome in accepted
            if verdicts[index] != "conflict" and (body := _withdrawal(outcome)) is not None
        ]
        # duplicates too: one stored just before a crash is shredded on its redelivery
        arrived = [
            (outcome.message_id, outcome.sender)
            for index, outcome in accepted
            if verdicts[index] in ("stored", "duplicate")
        ]
        shredded = self.inbox.apply_withdrawals(notices, arrived=arrived, now=now)
        if shredded:
            # at once, not at the next sweep: the originator asked for every copy to go
            files = 0 if self.delivery_dir is None else self.delivery_dir.remove_many(shredded)
            if self.webhook is not None:
                self.webhook.forget(shredded)
            _log.warning("messages_withdrawn", message_ids=list(shredded), files_removed=files)
        return shredded

    def _verify(
        self,
        frame: bytes | None,
        now: dt.datetime,
        accords: Mapping[PartnerCode, AccordInForce],
        defect: str | None = None,
    ) -> Accepted | Rejected | VerifiedNotice:
        return verify_record(
            frame,
            defect,
            me=self.me,
            registry=self.registry,
            decryption_keys=self.keys.decryption,
            accords=accords,
            now=now,
            max_retention=self.retention,
            max_age=self.max_age,
            max_skew=self.max_skew,
        )

    def _after_store(
        self, outcome: Accepted, verdict: DedupVerdict, receipts: list[Acknowledgement]
    ) -> ReceiveVerdict:
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
        # Per message at DEBUG: store_many logs one INFO line for the batch.
        if verdict == "duplicate":
            self._replays.inc()
            _log.debug("duplicate_dropped", message_id=outcome.message_id, sender=outcome.sender)
        else:
            self._delivered.inc()
            self._end_to_end.observe(
                max((outcome.received_at - outcome.header.created).total_seconds(), 0.0)
            )
            _log.debug("message_stored", message_id=outcome.message_id, sender=outcome.sender)
            if self.webhook is not None:
                self.webhook.enqueue(
                    message_id=outcome.message_id,
                    sender=outcome.sender,
                    message_json=outcome.message_bytes,
                )
        if outcome.receipt is not None:
            receipts.append(outcome.receipt)
        return "stored" if verdict == "new" else "duplicate"

    def _record_refusal(
        self,
        outcome: Rejected,
        frame: bytes | None,
        position: Mapping[str, object] | None,
        now: dt.datetime,
        receipts: list[Acknowledgement],
    ) -> RejectedDelivery:
        """Count and log a refused delivery, queue its rejected receipt if the sender is
        authenticated, and return its row for the inbox's rejected table."""
        log_rejection(outcome, self._rejected)
        if outcome.receipt is not None:
            receipts.append(outcome.receipt)
        return rejection_row(
            outcome,
            frame,
            position=position,
            me=self.me,
            registry=self.registry,
            now=now,
            max_skew=self.max_skew,
            max_frame_bytes=self.max_rejected_frame_bytes,
        )

    def _send_receipts(self, acknowledgements: Sequence[Acknowledgement]) -> None:
        """Seal one batch receipt per sender (and markings) for every view of a batch not
        receipted before, and journal them all in one transaction."""
        submissions: list[tuple[str | None, list[SendOutcome]]] = []
        covers: dict[str, list[str]] = {}
        now = self.clock.now()
        accords = self.accords.book(now).counterparts(self.me)
        owed = [
            ack
            for ack in acknowledgements
            if not self.journal.has_source(_receipt_source(ack.message_id))
        ]
        for receipt in batch_receipts(owed):
            accord = accords.get(receipt.to)
            halt = None if accord is None else accord.halt
            if accord is None or halt is not None:
                why = "no accord with sender" if halt is None else str(halt.code)
                _log.warning("receipt_not_sent", message_ids=list(receipt.covers), reason=why)
                continue
            sealed = prepare_receipt(
                receipt.message,
                sender=self.me,
                recipient=receipt.to,
                accord=accord,
                registry=self.registry,
                signing_key=self.keys.signers,
                now=now,
                sign=False,
            )
            if isinstance(sealed, Refused):
                _log.warning(
                    "receipt_not_sent",
                    message_ids=list(receipt.covers),
                    reason="; ".join(sealed.reasons),
                )
                continue
            source, *others = (_receipt_source(mid) for mid in receipt.covers)
            covers[source] = others
            submissions.append((source, [sealed]))
        # the batch's receipts are signed together, one signature per signing key
        signed = sign_views([views for _, views in submissions])
        self._journal_many(
            [(source, views) for (source, _), views in zip(submissions, signed, strict=True)],
            covers=covers,
        )

    def settle_sent(self, acknowledged: Sequence[JournalEntry]) -> int:
        """After Kafka acknowledged ``acknowledged``: delete the ``sent/`` copy of each spool
        file none of whose views waits any more; returns how many were deleted."""
        if self.spool is None:
            return 0
        names = {Spool.sent_name(e.source) for e in acknowledged if e.source is not None}
        names.discard(None)
        return self.spool.remove_settled(
            self.journal.settled, names=sorted(n for n in names if n is not None)
        )

    def remove_plaintext_copies(self) -> int:
        """Remove what plaintext of shredded messages is left outside the inbox: their files in
        the delivery directory and their posts still queued for the webhook (shredded by
        retention, by ``broker inbox erase`` or before a crash); returns how many went."""
        removed = 0
        if self.delivery_dir is not None:
            files = self.inbox.shredded_among(self.delivery_dir.message_ids())
            removed += self.delivery_dir.remove_many(sorted(files))
        if self.webhook is not None:
            removed += self.webhook.forget(self.inbox.shredded_among(self.webhook.queued()))
        if removed:
            _log.info("plaintext_copies_removed", count=removed)
        return removed

    # -- housekeeping -------------------------------------------------------------------------

    def registry_usable(self) -> bool:
        """Whether the registry may be used now: past its expiry the adapter pauses, since a
        frozen registry could hide a revocation."""
        return self.clock.now() < self.registry.expires

    def report_accords(self) -> None:
        """Refresh the accords' expiry gauges and warnings."""
        if self.reporter is not None:
            now = self.clock.now()
            self.reporter.observe(self.accords.statuses(now), now=now)

    def shred_expired(self) -> int:
        """Crypto-shred messages past retention, remove every plaintext copy of a shredded
        message (delivery files, queued webhook posts) and of a sent submission (the spool's
        ``sent/`` copy, once every view of it is acknowledged), and forget old
        de-duplication entries; returns how many messages were shredded now."""
        now = self.clock.now()
        shredded = len(self.inbox.shred_expired(now))
        self.remove_plaintext_copies()
        if self.spool is not None:
            self.spool.remove_settled(self.journal.settled)
        self.inbox.dedup.prune(now)
        pruned = self.inbox.rejected.prune(older_than=now - self.rejected_max_age, now=now)
        if pruned:
            self._pruned.inc(pruned)
            _log.info("rejections_pruned", count=pruned, kept_at_most=str(self.rejected_max_age))
        # A receipt or spool source older than the replay window can no longer be redelivered.
        self.journal.prune_sources(older_than=now - 2 * (self.max_age + self.max_skew))
        self.journal.prune_fates(older_than=now - FATES_MAX_AGE)
        if shredded:
            self._shredded.inc(shredded)
            _log.info("messages_shredded", count=shredded)
        return shredded


def _withdrawal(outcome: Accepted) -> Withdrawal | None:
    body = outcome.message.body
    return body if isinstance(body, Withdrawal) else None


def _reason_kept(message: Message, body: Withdrawal) -> str:
    """A withdrawal's reason as the view it shreds keeps it, which anyone who may list the
    inbox sees: for a withdrawal restricted to units, only where to read it (the reason is
    read as the withdrawal is, by those units)."""
    if any(isinstance(c, RestrictToUnits) for c in message.handling_conditions):
        return "its reason is restricted to units: read the withdrawal"
    return body.reason


def _receipt_source(message_id: MessageId) -> str:
    """The journal's source name of the receipt for view ``message_id``: one per view, so a
    redelivered view is never receipted twice, whichever batch receipt covered it."""
    return f"receipt:{message_id}"


def _receipted(outcome: Accepted) -> list[Receipted]:
    """What a stored receipt (either version) says of each view it acknowledges."""
    return [
        Receipted(
            message_id=line.message_id,
            sender=outcome.sender,
            status=str(line.status),
            received_at=line.received_at,
            receipt_id=outcome.message_id,
            reason=line.reason,
        )
        for line in receipt_lines(outcome.message)
    ]
