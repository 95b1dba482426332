"""The signed summary of refusals the gateway counted instead of auditing one by one.

Past ``gateway.refusal_audits_per_hour`` refusals of one outbox in one UTC hour, the gateway
still quarantines every refused record but writes no audit record for each; when the hour is
over it writes one audit record of kind ``refusal-summary`` (docs/GATEWAY.md), signed like
every other::

    kind            "refusal-summary"
    sender          the partner whose outbox the records were read from (null if none)
    decision        "deny"; reason_code, labels, accord fields, message_id: null
    envelope_sha256 SHA-256 chained over the SHA-256 of each summarized value, in order:
                    d = SHA-256(d || SHA-256(value)), starting from the empty string
    reasons         [headline, "<reason_code>: <count>" ...,
                     "<topic>/<partition>: <first offset>..<last offset>" ...]
    decided_at      when the summary was written (after the hour)

So however long a flood lasts, the audit log grows by at most that many records and one
summary per outbox and hour, and nothing refused goes unaccounted for.
"""

from __future__ import annotations

import datetime as dt
import re

from broker import crypto
from broker.pipeline.records import AuditKind, AuditRecord, format_time, sign_audit_record

__all__ = ["refusal_counts", "summarize_refusals"]

_COUNT = re.compile(r"^([a-z][a-z0-9_]{0,63}): (\d+)$")


def summarize_refusals(
    *,
    outbox: str,
    sender: str | None,
    start: dt.datetime,
    end: dt.datetime,
    audited: int,
    by_reason: dict[str, int],
    offsets: dict[int, tuple[int, int]],
    digest: bytes,
    total_bytes: int,
    gateway_key: crypto.SigningKey,
    now: dt.datetime,
) -> AuditRecord:
    """The signed ``refusal-summary`` audit record of one outbox's hour."""
    count = sum(by_reason.values())
    headline = (
        f"{count} more refusals of records from {outbox} between {format_time(start)} and "
        f"{format_time(end)} ({total_bytes} bytes), counted here: the first {audited} of the "
        "hour have audit records of their own; every one is in quarantine"
    )
    reasons = (
        headline,
        *(f"{code}: {n}" for code, n in sorted(by_reason.items())),
        *(f"{outbox}/{p}: {first}..{last}" for p, (first, last) in sorted(offsets.items())),
    )
    fields = {
        "kind": AuditKind.REFUSAL_SUMMARY,
        "message_id": None,
        "sender": sender,
        "recipient": None,
        "labels": None,
        "envelope_sha256": digest.hex(),
        "decision": "deny",
        "reason_code": None,
        "rule_ids": (),
        "reasons": reasons,
        "accord_id": None,
        "accord_version": None,
        "accord_digest": None,
        "justification": None,
        "decided_at": format_time(now),
    }
    return sign_audit_record(fields, gateway_key=gateway_key)


def refusal_counts(record: AuditRecord) -> dict[str, int]:
    """The refusals a ``refusal-summary`` record counts, by reason code (empty for others)."""
    if record.kind is not AuditKind.REFUSAL_SUMMARY:
        return {}
    counts: dict[str, int] = {}
    for reason in record.reasons[1:]:
        match = _COUNT.match(reason)
        if match:
            counts[match[1]] = counts.get(match[1], 0) + int(match[2])
    return counts
