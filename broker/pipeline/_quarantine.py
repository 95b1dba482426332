"""The quarantine record: why the gateway refused a record, signed so nobody else can say so.

Canonical JSON (docs/GATEWAY.md gives every field), version 2::

    {"decision", "gateway_key_id", "id", "message_id", "quarantined_at", "reason",
     "reason_code", "recipient", "sender", "signature", "source", "v": 2,
     "value_prefix_b64", "value_sha256", "value_size"}

It keeps a digest and a bounded prefix of what was refused, never the whole value: the
record stays under ``limits.QUARANTINE_RECORD_MAX_BYTES`` whatever was refused, so it always
fits what the broker accepts (a record the broker refuses would stall the gateway's batch).
The whole value stays on its outbox at ``source``; release reads it back from there and
checks it against ``value_sha256``.

The gateway signs it like an audit record, with its own domain::

    signature = Sign(gateway key, b"xb-quarantine-record-v2\\x00" || u32be(len(c)) || c)

where ``c`` is the canonical JSON of the record without ``signature``. Anybody who can write to
the quarantine topic can write a record; only one the registered gateway key signed is
believed (:func:`verify_quarantine_record`).
"""

from __future__ import annotations

import base64
import struct
from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue

from broker import crypto, errors, limits
from broker.keys import canonical_json
from broker.pipeline.records import (
    GatewayKeys,
    ReasonCode,
    SourcePosition,
    strict_json_object,
    validate_object,
    verify_gateway_signature,
)
from broker.schema._base import StrictModel

__all__ = [
    "QUARANTINE_DOMAIN",
    "QuarantineRecord",
    "bounded_reason",
    "parse_quarantine_record",
    "sign_quarantine_record",
    "verify_quarantine_record",
]

QUARANTINE_DOMAIN = b"xb-quarantine-record-v2\x00"
_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
_HEX64 = r"^[0-9a-f]{64}$"
_KEY_ID = r"^[0-9a-f]{32}$"
_PARTNER = r"^[A-Z]{2}$"
_U32 = struct.Struct(">I")
# 4 base64 characters for every 3 bytes of the prefix
_PREFIX_B64_CHARS = 4 * ((limits.QUARANTINE_PREFIX_BYTES + 2) // 3)


def bounded_reason(reason: str) -> str:
    """A reason as records keep it: ASCII (anything else escaped) and at most
    ``limits.REASON_MAX_CHARS`` characters, since it may quote what an attacker sent."""
    return reason.encode("ascii", "backslashreplace").decode("ascii")[: limits.REASON_MAX_CHARS]


class QuarantineRecord(StrictModel):
    """One quarantined record: why, when, from where, and a digest and prefix of its value."""

    v: Literal[2] = 2
    id: Annotated[str, Field(min_length=1, max_length=300)]
    reason_code: ReasonCode
    reason: Annotated[str, Field(max_length=limits.REASON_MAX_CHARS)]
    quarantined_at: Annotated[str, Field(pattern=_TIME)]
    source: SourcePosition
    #: claimed by the envelope header; verified only if the reason is a policy or routing one
    message_id: Annotated[str, Field(max_length=64)] | None
    sender: Annotated[str, Field(pattern=_PARTNER)] | None
    recipient: Annotated[str, Field(pattern=_PARTNER)] | None
    #: the policy Decision.to_json() when the policy denied
    decision: dict[str, JsonValue] | None
    #: the size of the refused value; None when the record had no value at all
    value_size: Annotated[int, Field(ge=0)] | None
    #: SHA-256 of the whole refused value (of b"" when it had none)
    value_sha256: Annotated[str, Field(pattern=_HEX64)]
    #: the first ``limits.QUARANTINE_PREFIX_BYTES`` bytes of the value, in base64
    value_prefix_b64: Annotated[str, Field(max_length=_PREFIX_B64_CHARS)]
    gateway_key_id: Annotated[str, Field(pattern=_KEY_ID)]
    signature: Annotated[str, Field(max_length=2 * limits.GATEWAY_SIGNATURE_MAX_BYTES)]

    @property
    def value_prefix(self) -> bytes:
        """The kept prefix of the refused value, byte for byte."""
        try:
            return base64.b64decode(self.value_prefix_b64, validate=True)
        except ValueError as exc:  # binascii.Error, or text that is not even ASCII
            raise errors.SchemaError(f"quarantine record {self.id}: bad value_prefix_b64") from exc

    @property
    def value_is_whole(self) -> bool:
        """Whether the prefix is the whole refused value."""
        return self.value_size is not None and len(self.value_prefix) == self.value_size

    def unsigned_bytes(self) -> bytes:
        """The canonical JSON of the record without ``signature``: what the signature covers."""
        return canonical_json(self.model_dump(mode="json", exclude={"signature"}))

    def to_bytes(self) -> bytes:
        """The canonical JSON bytes of the whole signed record."""
        return canonical_json(self.model_dump(mode="json"))


def _signing_input(unsigned: bytes) -> bytes:
    return QUARANTINE_DOMAIN + _U32.pack(len(unsigned)) + unsigned


def sign_quarantine_record(
    fields: dict[str, Any], value: bytes | None, *, gateway_key: crypto.SigningKey
) -> QuarantineRecord:
    """Build the record for a refused ``value`` from ``fields`` (id, reason code, reason, time,
    source, claimed ids, decision), keep its digest and prefix, and sign it.

    Should the record still outgrow ``limits.QUARANTINE_RECORD_MAX_BYTES`` (a policy
    decision with a great many reasons), the decision is left out and the reason says so: a
    record the broker refused would stall the gateway.
    """
    data = value or b""
    draft = QuarantineRecord.model_validate(
        {
            **fields,
            "reason": bounded_reason(fields["reason"]),
            "value_size": None if value is None else len(value),
            "value_sha256": crypto.sha256(data).hex(),
            "value_prefix_b64": base64.b64encode(data[: limits.QUARANTINE_PREFIX_BYTES]).decode(),
            "gateway_key_id": gateway_key.public_key().key_id,
            "signature": "",
        },
        strict=False,
    )
    room = limits.QUARANTINE_RECORD_MAX_BYTES - 2 * limits.GATEWAY_SIGNATURE_MAX_BYTES
    if len(draft.unsigned_bytes()) > room:
        reason = bounded_reason(f"{draft.reason} (the policy decision was too large to keep)")
        draft = draft.model_copy(update={"decision": None, "reason": reason})
    signature = gateway_key.sign(_signing_input(draft.unsigned_bytes()))
    return draft.model_copy(update={"signature": base64.b64encode(signature).decode("ascii")})


def parse_quarantine_record(data: bytes) -> QuarantineRecord:
    """Parse quarantine record bytes WITHOUT checking the signature; raises SchemaError."""
    raw = strict_json_object(
        data, what="quarantine record", max_bytes=limits.QUARANTINE_RECORD_MAX_BYTES
    )
    return validate_object(
        QuarantineRecord, raw, what="quarantine record", error=errors.SchemaError
    )


def verify_quarantine_record(
    record: QuarantineRecord, *, registry: GatewayKeys
) -> QuarantineRecord:
    """Check the gateway's signature with the key registered at ``quarantined_at``.

    Raises KeyTrustError (no such gateway key then) or VerificationError (the signature does
    not cover this record).
    """
    verify_gateway_signature(
        registry,
        key_id=record.gateway_key_id,
        at=record.quarantined_at,
        signature=record.signature,
        message=_signing_input(record.unsigned_bytes()),
        what="quarantine record",
    )
    return record
