"""Read what the partners and the gateway hold at the end of a run, for :func:`check`.

- every recipient's SQLite inbox store (metadata only: nothing is decrypted), and the
  deliveries its adapter refused (its ``rejected`` table);
- the quarantine topic, every partition, from the start, with a fresh group of its own;
- the audit topic through :func:`broker.ledger.read_log` (checkpoint records skipped).

A record on either topic that is not one of the gateway's (any bytes at all: not decodable,
not a record, a quarantine record without a valid gateway signature) is counted as foreign
and otherwise ignored: the checker judges what the exchange did, and must not stop on what a
writer to those topics put beside it.

Topics are read until a quiet period passes with nothing new: never against end offsets,
which the embedded broker answers wrongly.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from broker import errors
from broker.checker.verdict import Audited, Observations, Quarantined, Refused, Stored
from broker.config import audit_topic, quarantine_topic
from broker.crypto import AeadSealer
from broker.errors import UsageError
from broker.ledger import is_checkpoint_record, read_log
from broker.pipeline import (
    AuditRecord,
    parse_audit_record,
    parse_quarantine_record,
    refusal_counts,
)
from broker.schema import MessageType
from broker.store import InboxStore
from broker.transport.kafka import ConsumerSettings, Record, open_consumer
from broker.transport.security import PLAINTEXT, ClientSecurity

__all__ = ["observe", "read_audit", "read_inboxes", "read_quarantine", "read_rejections"]

_ROW_LIMIT = 100_000
_POLL_MS = 500


def read_inboxes(inboxes: Mapping[str, Path]) -> list[Stored]:
    """The metadata of every message in each recipient's inbox store (absent stores: none)."""
    rows: list[Stored] = []
    for recipient, path in sorted(inboxes.items()):
        if not path.exists():
            continue
        with InboxStore.open(
            path, recipient=recipient, sealer=AeadSealer(), dedup_retention=dt.timedelta(days=2)
        ) as store:
            rows += [
                Stored(
                    recipient=recipient,
                    message_id=str(row.message_id),
                    sender=str(row.sender),
                    key=None if row.case_id is None else str(row.case_id),
                    received_at=row.received_at.timestamp(),
                    receipt=row.message_type is MessageType.RECEIPT,
                )
                for row in store.each()
            ]
    return rows


def read_rejections(inboxes: Mapping[str, Path]) -> list[Refused]:
    """Every delivery each recipient's adapter refused, from its inbox store's ``rejected``
    table (absent stores: none). Frames are not read."""
    rows: list[Refused] = []
    for recipient, path in sorted(inboxes.items()):
        if not path.exists():
            continue
        with InboxStore.open(
            path, recipient=recipient, sealer=AeadSealer(), dedup_retention=dt.timedelta(days=2)
        ) as store:
            listed = store.rejected.list(limit=_ROW_LIMIT)
        if len(listed) == _ROW_LIMIT:
            raise UsageError(f"{path} holds {_ROW_LIMIT} rejections or more: too many to check")
        rows += [
            Refused(
                recipient=recipient,
                message_id=row.message_id,
                sender=row.sender,
                key=row.case_id,
                reason_code=row.reason_code,
            )
            for row in listed
        ]
    return rows


def _settings(
    bootstrap: str, session_timeout_ms: int, security: ClientSecurity
) -> ConsumerSettings:
    return ConsumerSettings(
        bootstrap=bootstrap,
        group_id=f"checker-{uuid.uuid4().hex[:12]}",
        client_id="broker-checker",
        session_timeout_ms=session_timeout_ms,
        security=security,
    )


async def _read_all(
    bootstrap: str,
    topic: str,
    *,
    quiet_s: float,
    first_wait_s: float,
    session_timeout_ms: int,
    security: ClientSecurity,
) -> list[Record]:
    """Every record of a (multi-partition) topic, each (partition, offset) once."""
    seen: dict[tuple[int, int], Record] = {}
    settings = _settings(bootstrap, session_timeout_ms, security)
    async with open_consumer(settings, [topic]) as consumer:
        last_arrival = time.monotonic()
        while True:
            batch = await consumer.fetch(timeout_ms=_POLL_MS)
            now = time.monotonic()
            if batch:
                last_arrival = now
                for record in batch:
                    seen.setdefault((record.partition, record.offset), record)
            elif now - last_arrival >= (quiet_s if seen else first_wait_s):
                return [seen[k] for k in sorted(seen)]


async def read_quarantine(
    bootstrap: str,
    prefix: str,
    *,
    quiet_s: float = 3.0,
    first_wait_s: float = 8.0,
    session_timeout_ms: int = 3_000,
    security: ClientSecurity = PLAINTEXT,
) -> tuple[list[Quarantined], int]:
    """Every quarantine record, and how many records on the topic were not one (foreign)."""
    records = await _read_all(
        bootstrap,
        quarantine_topic(prefix),
        quiet_s=quiet_s,
        first_wait_s=first_wait_s,
        session_timeout_ms=session_timeout_ms,
        security=security,
    )
    parsed = []
    for record in records:
        try:
            if record.defect is None:
                parsed.append(parse_quarantine_record(record.value or b""))
        except errors.SchemaError:
            pass  # counted below as foreign
    quarantined = [
        Quarantined(
            id=q.id,
            message_id=q.message_id,
            sender=q.sender,
            recipient=q.recipient,
            reason_code=q.reason_code.value,
        )
        for q in parsed
    ]
    return quarantined, len(records) - len(parsed)


async def read_audit(
    bootstrap: str,
    prefix: str,
    *,
    quiet_s: float = 3.0,
    first_wait_s: float = 8.0,
    session_timeout_ms: int = 3_000,
    security: ClientSecurity = PLAINTEXT,
) -> tuple[list[Audited], int]:
    """Every audit record, in order, and how many other records the topic holds (checkpoints
    are neither)."""
    entries: list[Audited] = []
    foreign = 0
    settings = _settings(bootstrap, session_timeout_ms, security)
    async with open_consumer(settings, [audit_topic(prefix)]) as consumer:
        async for record in read_log(consumer, quiet_s=quiet_s, first_wait_s=first_wait_s):
            value = record.value or b""
            if record.defect is None and is_checkpoint_record(value):
                continue
            audit = _audit_record(record)
            if audit is None:
                foreign += 1
                continue
            entries.append(
                Audited(
                    message_id=audit.message_id,
                    sender=audit.sender,
                    recipient=audit.recipient,
                    decision=audit.decision,
                    reason_code=None if audit.reason_code is None else audit.reason_code.value,
                    kind=audit.kind.value,
                    summarized=sum(refusal_counts(audit).values()),
                )
            )
    return entries, foreign


def _audit_record(record: Record) -> AuditRecord | None:
    if record.defect is not None:
        return None
    try:
        return parse_audit_record(record.value or b"")
    except errors.SchemaError:
        return None


async def observe(
    *,
    bootstrap: str,
    prefix: str,
    inboxes: Mapping[str, Path],
    quiet_s: float = 3.0,
    session_timeout_ms: int = 3_000,
    security: ClientSecurity = PLAINTEXT,
) -> Observations:
    """Read every inbox store (with its refusals), the quarantine topic and the audit topic
    (as the cluster's administrator, on a secured cluster)."""
    quarantined, foreign_quarantine = await read_quarantine(
        bootstrap,
        prefix,
        quiet_s=quiet_s,
        session_timeout_ms=session_timeout_ms,
        security=security,
    )
    audited, foreign_audit = await read_audit(
        bootstrap,
        prefix,
        quiet_s=quiet_s,
        session_timeout_ms=session_timeout_ms,
        security=security,
    )
    return Observations(
        stored=read_inboxes(inboxes),
        quarantined=quarantined,
        audited=audited,
        refused=read_rejections(inboxes),
        foreign=foreign_quarantine + foreign_audit,
    )
