"""Which refusals get an audit record of their own, and the hourly summaries of the rest.

The audit topic is kept for ever, so a flood of junk on an outbox must not grow it without
bound. Per outbox and UTC hour, the first ``gateway.refusal_audits_per_hour`` refusals are
audited one by one; later ones are still quarantined (each, as always) but only counted, in
the gateway's store inside the batch's transaction, and once the hour is over one signed
``refusal-summary`` audit record accounts for them (:mod:`broker.pipeline._summary`).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence

import structlog

from broker import crypto
from broker.config import validate_partner
from broker.errors import UsageError
from broker.pipeline import AuditRecord, summarize_refusals
from broker.pipeline.gateway import GatewayOutcome, Quarantine
from broker.runtime import Metrics
from broker.store.refusals import RefusalWindow, RefusalWindows
from broker.transport.kafka import Record

__all__ = ["RefusalAudits"]

_log = structlog.get_logger("broker.gateway")


class RefusalAudits:
    """The gateway's hourly refusal counts and the summaries they become."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        per_hour: int,
        prefix: str,
        gateway_key: crypto.SigningKey,
        metrics: Metrics,
    ) -> None:
        self._windows = RefusalWindows(conn, per_window=per_hour)
        self._outbox_stem = f"{prefix}outbox."
        self._key = gateway_key
        self._summarized = metrics.counter(
            "xb_gateway_refusals_summarized_total",
            "Refusals quarantined and counted in an hourly summary instead of audited singly",
            ("sender",),
        )

    def withhold(
        self, records: Sequence[Record], outcomes: Sequence[GatewayOutcome], *, now: dt.datetime
    ) -> frozenset[int]:
        """The indices of the refusals whose own audit record is not written (counted
        instead); call it inside the batch's transaction."""
        withheld: set[int] = set()
        for index, (record, outcome) in enumerate(zip(records, outcomes, strict=True)):
            if not isinstance(outcome, Quarantine):
                continue
            if self._windows.admit(record.topic, at=now):
                continue
            self._windows.summarize(
                record.topic,
                at=now,
                reason_code=str(outcome.reason_code),
                partition=record.partition,
                offset=record.offset,
                value_sha256=bytes.fromhex(outcome.record.value_sha256),
                size=len(record.value or b""),
            )
            withheld.add(index)
            self._summarized.inc(sender=self._sender(record.topic) or "-")
        return frozenset(withheld)

    def any_due(self, *, now: dt.datetime) -> bool:
        """Whether an hour is over whose window waits to be summarized or forgotten."""
        return self._windows.any_closed(now=now)

    def due(self, *, now: dt.datetime) -> tuple[list[AuditRecord], list[RefusalWindow]]:
        """The summaries of hours that are over, and the windows to forget once they are
        acknowledged (with the batch's transaction)."""
        closed = self._windows.closed(now=now)
        summaries = [self._summary(window, now) for window in closed if window.summarized]
        for window in closed:
            if window.summarized:
                _log.warning(
                    "refusals_summarized",
                    outbox=window.outbox,
                    hour=window.start.isoformat(),
                    audited=window.audited,
                    summarized=window.summarized,
                    by_reason=window.by_reason,
                )
        return summaries, closed

    def forget(self, closed: list[RefusalWindow]) -> None:
        """Forget the windows :meth:`due` returned (inside the transaction that wrote them)."""
        self._windows.forget(closed)

    def _summary(self, window: RefusalWindow, now: dt.datetime) -> AuditRecord:
        return summarize_refusals(
            outbox=window.outbox,
            sender=self._sender(window.outbox),
            start=window.start,
            end=window.end,
            audited=window.audited,
            by_reason=window.by_reason,
            offsets=window.offsets,
            digest=window.digest,
            total_bytes=window.bytes,
            gateway_key=self._key,
            now=now,
        )

    def _sender(self, topic: str) -> str | None:
        if not topic.startswith(self._outbox_stem):
            return None
        try:
            return validate_partner(topic.removeprefix(self._outbox_stem))
        except UsageError:
            return None
