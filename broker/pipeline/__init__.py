"""The pure pipeline: one record in, one outcome out; no I/O, no clock, no Kafka client.

- :mod:`.delivery`: the delivery frame the gateway writes to ``inbox.<R>`` (attestation +
  gateway signature + envelope) and its verification by the receiver;
- :mod:`.records`: signed audit records, their canonical bytes and parsers;
- :mod:`._quarantine`: signed quarantine records (a digest and prefix of what was refused);
- :mod:`.gateway`: :func:`route`, the gateway's decision for one outbox record.
"""

from __future__ import annotations

from broker.pipeline._quarantine import (
    QUARANTINE_DOMAIN,
    QuarantineRecord,
    parse_quarantine_record,
    sign_quarantine_record,
    verify_quarantine_record,
)
from broker.pipeline._summary import refusal_counts, summarize_refusals
from broker.pipeline.delivery import (
    DELIVERY_DOMAIN,
    DELIVERY_MAGIC,
    MAX_DELIVERY_BYTES,
    Attestation,
    VerifiedDelivery,
    attest,
    verify_delivery,
)
from broker.pipeline.records import (
    AUDIT_DOMAIN,
    AuditKind,
    AuditRecord,
    Justification,
    ReasonCode,
    SourcePosition,
    parse_audit_record,
    sign_audit_record,
    verify_audit_record,
)

__all__ = [
    "AUDIT_DOMAIN",
    "DELIVERY_DOMAIN",
    "DELIVERY_MAGIC",
    "MAX_DELIVERY_BYTES",
    "QUARANTINE_DOMAIN",
    "Attestation",
    "AuditKind",
    "AuditRecord",
    "Justification",
    "QuarantineRecord",
    "ReasonCode",
    "SourcePosition",
    "VerifiedDelivery",
    "attest",
    "parse_audit_record",
    "parse_quarantine_record",
    "refusal_counts",
    "sign_audit_record",
    "sign_quarantine_record",
    "summarize_refusals",
    "verify_audit_record",
    "verify_delivery",
    "verify_quarantine_record",
]
