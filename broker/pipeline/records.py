"""The gateway's own records on the wire: signed audit records, and what every record shares.

Records are canonical JSON (sorted keys, no whitespace, no floats) parsed strictly: duplicate
keys, NaN, unknown fields and any non-canonical byte form are refused, so one record has one
byte form and a signature over it means one thing. None ever carries plaintext: an audit
record holds only the signed clear labels and the decision; the quarantine record
(:mod:`broker.pipeline._quarantine`) a digest and a prefix of the still-encrypted value.

An audit record (version 1) is signed by the gateway over
``b"xb-audit-record-v1\\x00" || u32be(len(c)) || c`` where ``c`` is the canonical JSON of the
record without its ``signature`` field (docs/GATEWAY.md). The audit records of one output
batch are signed together (version 2): those same bytes, one per record, are the leaves of one
RFC 6962 head, signed over ``b"xb-audit-batch-v2\\x00" || u32be(n) || head``, and each record
carries its place in the batch (``batch``, left out of ``c`` like the signature), so each still
verifies alone and a verifier checks the batch's one signature once.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import struct
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol, TypeVar

import pydantic
from pydantic import Field

from broker import crypto, errors, limits, strictjson
from broker.clock import format_instant, parse_instant
from broker.ids import KeyId
from broker.keys import canonical_json
from broker.reasons import ReasonCode
from broker.schema._base import StrictModel
from broker.schema.labels import Labels

__all__ = [
    "AUDIT_BATCH_DOMAIN",
    "AUDIT_DOMAIN",
    "AuditBatch",
    "AuditKind",
    "AuditRecord",
    "GatewayKeys",
    "Justification",
    "ReasonCode",
    "SourcePosition",
    "draft_audit_record",
    "format_time",
    "parse_audit_record",
    "parse_time",
    "sign_audit_record",
    "sign_audit_records",
    "strict_json_object",
    "validate_object",
    "verify_audit_record",
    "verify_gateway_signature",
]

AUDIT_DOMAIN = b"xb-audit-record-v1\x00"
#: what the head of a batch of audit records is signed under (never a single record's domain)
AUDIT_BATCH_DOMAIN = b"xb-audit-batch-v2\x00"
_MAX_DEPTH = 8
# how each strict-parse refusal reads after "<what> "; {0} is strictjson's own description
_WORDING: dict[strictjson.Reason, str] = {
    "utf-8": "is not UTF-8",
    "syntax": "is not valid JSON: {0}",
    "duplicate": "is not valid JSON: {0}",
    "number": "is not valid JSON: {0}",
    "depth": f"nests deeper than {_MAX_DEPTH} levels",
    "unicode": "has a value with no canonical form",
}
_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
_HEX64 = r"^[0-9a-f]{64}$"
_KEY_ID = r"^[0-9a-f]{32}$"
_PARTNER = r"^[A-Z]{2}$"
_U32 = struct.Struct(">I")
_SCHEMA = errors.SchemaError
_M = TypeVar("_M", bound=pydantic.BaseModel)


class AuditKind(enum.StrEnum):
    """What an audit record is about (UK DPA 2018 s.62 logs disclosures)."""

    DISCLOSURE = "disclosure"
    REFUSAL = "refusal"
    RECEIPT = "receipt"
    #: a party's signed suspension, resumption or termination of an accord, as the gateway
    #: applied it (``envelope_sha256`` is then the act's digest, ``sender`` its signer)
    ACCORD_ACT = "accord_act"
    #: refusals of one outbox counted, past an hourly number audited one by one
    REFUSAL_SUMMARY = "refusal-summary"


def format_time(value: dt.datetime) -> str:
    """:func:`broker.clock.format_instant`, the one time form in our records."""
    try:
        return format_instant(value)
    except ValueError as exc:
        raise errors.UsageError(f"record times: {exc}") from exc


def parse_time(text: str) -> dt.datetime:
    """:func:`broker.clock.parse_instant`; anything else is a SchemaError."""
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise errors.SchemaError(f"bad record time {text!r}") from exc


def strict_json_object(
    data: bytes,
    *,
    what: str,
    max_bytes: int,
    error: type[errors.IntegrityError] = errors.SchemaError,
) -> dict[str, Any]:
    """Parse canonical JSON bytes into an object, refusing everything ambiguous.

    Size is checked first; then UTF-8, duplicate keys, floats/NaN, nesting, and finally that
    ``data`` is exactly the canonical encoding of what it parses to.
    """
    if len(data) > max_bytes:
        raise error(f"{what} is {len(data)} bytes, over the {max_bytes} limit")
    try:
        value = strictjson.loads(data, max_depth=_MAX_DEPTH, allow_floats=False)
    except strictjson.StrictJSONError as exc:
        raise error(f"{what} {_WORDING[exc.reason].format(exc)}") from exc
    if not isinstance(value, dict):
        raise error(f"{what} is not a JSON object")
    try:
        canonical = canonical_json(value)
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise error(f"{what} has a value with no canonical form") from exc
    if canonical != data:
        raise error(f"{what} is not in canonical form")
    return value


def validate_object(
    model: type[_M], raw: dict[str, Any], *, what: str, error: type[errors.IntegrityError]
) -> _M:
    """Validate a parsed JSON object into ``model``; the first problem becomes ``error``."""
    try:
        # JSON mode: the same coercions as reading the bytes (arrays become frozensets)
        return model.model_validate_json(strictjson.encode(raw))
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(record)"
        raise error(f"{what} field {where}: {first['msg']}") from None


class SourcePosition(StrictModel):
    """Where a record was read: the outbox topic, partition and offset."""

    topic: Annotated[str, Field(min_length=1, max_length=249)]
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]

    @property
    def record_id(self) -> str:
        """``<topic>/<partition>/<offset>``: unique per record in the cluster."""
        return f"{self.topic}/{self.partition}/{self.offset}"


class Justification(StrictModel):
    """Why a disclosure was lawful: the declared purposes and the accord flow that allowed it."""

    purposes: tuple[str, ...]
    flow: str | None


class AuditBatch(StrictModel):
    """A version 2 record's place in the batch its signature covers: leaf ``index`` of
    ``size``, and the inclusion ``path`` (hex) from its leaf to the signed head."""

    size: Annotated[int, Field(ge=2, le=crypto.MAX_BATCH)]
    index: Annotated[int, Field(ge=0)]
    path: Annotated[
        tuple[Annotated[str, Field(pattern=_HEX64)], ...], Field(max_length=crypto.MAX_PATH)
    ]

    @pydantic.model_validator(mode="after")
    def _index_in_batch(self) -> AuditBatch:
        if self.index >= self.size:
            raise ValueError("index must be below size")
        return self

    @classmethod
    def of(cls, proof: crypto.BatchProof) -> AuditBatch:
        """The JSON form of a batch proof."""
        return cls(size=proof.size, index=proof.index, path=tuple(h.hex() for h in proof.path))

    def proof(self) -> crypto.BatchProof:
        """The proof :func:`broker.crypto.verify_member` walks (whether it fits is its call)."""
        return crypto.BatchProof(
            size=self.size, index=self.index, path=tuple(bytes.fromhex(h) for h in self.path)
        )


class AuditRecord(StrictModel):
    """One gateway decision, signed by the gateway. Never plaintext."""

    #: 1: signed alone; 2: signed with the other records of its batch (``batch``)
    v: Literal[1, 2] = 1
    kind: AuditKind
    message_id: Annotated[str, Field(max_length=64)] | None
    sender: Annotated[str, Field(pattern=_PARTNER)] | None
    recipient: Annotated[str, Field(pattern=_PARTNER)] | None
    #: the signed labels; null when the envelope did not verify
    labels: Labels | None
    envelope_sha256: Annotated[str, Field(pattern=_HEX64)]
    decision: Literal["allow", "deny"]
    reason_code: ReasonCode | None
    rule_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    accord_id: str | None
    accord_version: Annotated[int, Field(ge=1)] | None
    accord_digest: Annotated[str, Field(pattern=_HEX64)] | None
    justification: Justification | None
    decided_at: Annotated[str, Field(pattern=_TIME)]
    gateway_key_id: Annotated[str, Field(pattern=_KEY_ID)]
    signature: str
    #: version 2 only (present exactly then): where the signed head covers this record
    batch: AuditBatch | None = None

    @pydantic.model_validator(mode="after")
    def _batch_is_version_2(self) -> AuditRecord:
        if (self.v == 2) != (self.batch is not None):
            raise ValueError("a version 2 audit record, and only one, has a batch")
        return self

    def unsigned_bytes(self) -> bytes:
        """The canonical JSON of the record without ``signature`` and ``batch``: what the
        signature covers (version 1), or this record's leaf of its batch (version 2)."""
        return canonical_json(self.model_dump(mode="json", exclude={"signature", "batch"}))

    def to_bytes(self) -> bytes:
        """The canonical JSON bytes of the whole signed record (version 1 has no ``batch``)."""
        return canonical_json(
            self.model_dump(mode="json", exclude=None if self.batch is not None else {"batch"})
        )


def _audit_signing_input(unsigned: bytes) -> bytes:
    return AUDIT_DOMAIN + _U32.pack(len(unsigned)) + unsigned


def draft_audit_record(fields: dict[str, Any], *, gateway_key_id: str) -> AuditRecord:
    """An audit record from ``fields`` (everything but the key id and signature), not signed
    yet: :func:`sign_audit_records` signs it, alone or with the rest of its batch.

    ``fields`` holds python values as the model accepts them (``labels`` a Labels, enums...).
    Reasons past what fits ``limits.AUDIT_RECORD_MAX_BYTES`` are left out, and the last kept
    one says how many: a record the broker refused would stall the gateway. The room kept
    back (two signatures' worth) holds the base64 signature and a batch's path (at most
    :data:`broker.crypto.MAX_PATH` hashes, under 900 bytes as JSON).
    """
    draft = AuditRecord.model_validate(
        {**fields, "gateway_key_id": gateway_key_id, "signature": ""}, strict=False
    )
    room = limits.AUDIT_RECORD_MAX_BYTES - 2 * limits.GATEWAY_SIGNATURE_MAX_BYTES
    every, kept = draft.reasons, len(draft.reasons)
    while len(draft.unsigned_bytes()) > room and kept > 0:
        kept -= 1
        left_out = f"({len(every) - kept} more reasons were too large to keep)"
        draft = draft.model_copy(update={"reasons": (*every[:kept], left_out)})
    return draft


def sign_audit_records(
    drafts: Sequence[AuditRecord], *, gateway_key: crypto.SigningKey
) -> list[AuditRecord]:
    """``drafts`` signed, in order: one alone as version 1; more as version 2, under one head
    per :data:`broker.crypto.MAX_BATCH` (one signature for the lot)."""
    signed: list[AuditRecord] = []
    for start in range(0, len(drafts), crypto.MAX_BATCH):
        chunk = drafts[start : start + crypto.MAX_BATCH]
        if len(chunk) == 1:
            (draft,) = chunk
            signature = gateway_key.sign(_audit_signing_input(draft.unsigned_bytes()))
            signed.append(draft.model_copy(update={"v": 1, "signature": _b64(signature)}))
            continue
        batched = [d.model_copy(update={"v": 2}) for d in chunk]
        signature, proofs = crypto.sign_batch(
            gateway_key,
            [_audit_signing_input(d.unsigned_bytes()) for d in batched],
            prefix=AUDIT_BATCH_DOMAIN,
        )
        signed += [
            d.model_copy(update={"signature": _b64(signature), "batch": AuditBatch.of(proof)})
            for d, proof in zip(batched, proofs, strict=True)
        ]
    return signed


def sign_audit_record(fields: dict[str, Any], *, gateway_key: crypto.SigningKey) -> AuditRecord:
    """One audit record from ``fields``, signed alone (:func:`draft_audit_record`)."""
    draft = draft_audit_record(fields, gateway_key_id=gateway_key.public_key().key_id)
    return sign_audit_records([draft], gateway_key=gateway_key)[0]


def _b64(signature: bytes) -> str:
    return base64.b64encode(signature).decode("ascii")


def parse_audit_record(data: bytes) -> AuditRecord:
    """Parse audit record bytes WITHOUT checking the signature (see :func:`verify_audit_record`)."""
    raw = strict_json_object(data, what="audit record", max_bytes=limits.AUDIT_RECORD_MAX_BYTES)
    # One byte form per record: ``v`` always written, ``batch`` only in version 2 (a null one
    # would be a second form of the same signed record, with another leaf hash).
    if "v" not in raw or ("batch" in raw and raw["v"] != 2):
        raise _SCHEMA("audit record: `v` is required, and `batch` belongs to version 2 only")
    return validate_object(AuditRecord, raw, what="audit record", error=_SCHEMA)


class GatewayKeys(Protocol):
    """The registry lookup gateway signatures need; ``broker.keys.Registry`` satisfies it."""

    def gateway_key(self, key_id: KeyId, *, at: dt.datetime) -> crypto.VerifyKey:
        """The registered gateway key ``key_id`` usable at ``at``, or raise KeyTrustError."""
        ...


def verify_audit_record(data: bytes, *, registry: GatewayKeys) -> AuditRecord:
    """Parse and check the gateway signature with the key registered at ``decided_at``.

    Raises SchemaError (malformed), KeyTrustError (no such gateway key then) or
    VerificationError (the signature does not cover these bytes).
    """
    record = parse_audit_record(data)
    verify_gateway_signature(
        registry,
        key_id=record.gateway_key_id,
        at=record.decided_at,
        signature=record.signature,
        message=_audit_signing_input(record.unsigned_bytes()),
        what="audit record",
        batch=None if record.batch is None else (record.batch.proof(), AUDIT_BATCH_DOMAIN),
    )
    return record


def verify_gateway_signature(
    registry: GatewayKeys,
    *,
    key_id: str,
    at: str,
    signature: str,
    message: bytes,
    what: str,
    batch: tuple[crypto.BatchProof, bytes] | None = None,
) -> None:
    """Check a gateway's base64 ``signature`` over ``message`` with the gateway key ``key_id``
    registered at ``at`` (a record time); KeyTrustError or VerificationError otherwise.
    With ``batch`` (a proof and its head's prefix), the signature covers the head the proof
    leads to from ``message`` (:func:`broker.crypto.verify_member`)."""
    key = registry.gateway_key(KeyId(key_id), at=parse_time(at))
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError as exc:  # binascii.Error, or text that is not even ASCII
        raise errors.VerificationError(f"{what} signature is not base64") from exc
    if batch is None:
        key.verify(signature=raw, message=message)
    else:
        proof, prefix = batch
        crypto.verify_member(key, signature=raw, message=message, proof=proof, prefix=prefix)
