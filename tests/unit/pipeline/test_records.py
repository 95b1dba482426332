"""Quarantine and audit records: one canonical byte form, strict parsing, signed by the
gateway, and bounded in size whatever they describe."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import crypto, errors, limits
from broker.keys import canonical_json
from broker.keys.testing import RegistryFixture, build_registry
from broker.pipeline import (
    AuditKind,
    QuarantineRecord,
    ReasonCode,
    SourcePosition,
    parse_audit_record,
    parse_quarantine_record,
    sign_audit_record,
    sign_quarantine_record,
    verify_audit_record,
    verify_quarantine_record,
)
from broker.pipeline.records import format_time, parse_time
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
LABELS = Labels(
    message_type=MessageType.PERSON_ALERT,
    schema_version=1,
    classification=Classification.OFFICIAL_SENSITIVE,
    tlp=TLP.AMBER,
    handling=HandlingCode.H1,
    purposes=frozenset({Purpose.PEOPLE_SMUGGLING, Purpose.HUMAN_TRAFFICKING}),
    data_categories=frozenset({DataCategory.IDENTITY, DataCategory.OPERATIONAL}),
)


@pytest.fixture(scope="module")
def fixture() -> RegistryFixture:
    return build_registry(now=NOW, partners=("GB", "RS"), roots=1, threshold=1)


_QUARANTINE_KEY = crypto.SigningKey.generate(crypto.Suite.CLASSIC)


def quarantine_record(
    value: bytes | None = b"\x89XBE sealed bytes",
    key: crypto.SigningKey = _QUARANTINE_KEY,
    **changes: Any,
) -> QuarantineRecord:
    fields: dict[str, Any] = {
        "id": "xb.outbox.GB/2/41",
        "reason_code": ReasonCode.POLICY_DENIED,
        "reason": "TLP:RED is above the ceiling TLP:AMBER for GB -> RS",
        "quarantined_at": format_time(NOW),
        "source": SourcePosition(topic="xb.outbox.GB", partition=2, offset=41),
        "message_id": "019a0000-0000-7000-8000-000000000000",
        "sender": "GB",
        "recipient": "RS",
        "decision": {"outcome": "deny", "rule_ids": ["GB-RS-OPS.tlp"], "accord_version": 2},
    }
    return sign_quarantine_record({**fields, **changes}, value, gateway_key=key)


def audit_fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "kind": AuditKind.DISCLOSURE,
        "message_id": "019a0000-0000-7000-8000-000000000000",
        "sender": "GB",
        "recipient": "RS",
        "labels": LABELS,
        "envelope_sha256": "12" * 32,
        "decision": "allow",
        "reason_code": None,
        "rule_ids": ("GB-RS-OPS",),
        "reasons": ("person.alert from GB -> RS is allowed by GB-RS-OPS",),
        "accord_id": "gb-rs",
        "accord_version": 2,
        "accord_digest": "34" * 32,
        "justification": {
            "purposes": ("human-trafficking", "people-smuggling"),
            "flow": "GB-RS-OPS",
        },
        "decided_at": format_time(NOW),
    }
    return {**fields, **changes}


def test_a_quarantine_record_round_trips_through_its_canonical_bytes() -> None:
    """to_bytes is canonical JSON; parsing it gives the same record and the value's prefix."""
    record = quarantine_record()
    data = record.to_bytes()
    assert canonical_json(json.loads(data)) == data
    parsed = parse_quarantine_record(data)
    assert parsed == record
    assert parsed.value_prefix == b"\x89XBE sealed bytes"
    assert parsed.value_is_whole
    assert parsed.value_sha256 == crypto.sha256(b"\x89XBE sealed bytes").hex()
    assert parsed.source.record_id == parsed.id


@pytest.mark.parametrize(
    ("value", "size"),
    [
        pytest.param(None, None, id="no value"),
        pytest.param(b"", 0, id="empty"),
        pytest.param(b"x" * limits.QUARANTINE_PREFIX_BYTES, None, id="exactly the prefix"),
        pytest.param(bytes(range(256)) * 8192, None, id="2 MiB of anything"),
    ],
)
def test_a_quarantine_record_keeps_a_digest_and_a_bounded_prefix(
    value: bytes | None, size: int | None
) -> None:
    """Whatever was refused, the record holds its size, SHA-256 and at most the prefix bound,
    and stays under the record limit."""
    record = quarantine_record(value)
    assert record.value_size == (None if value is None else len(value))
    assert record.value_sha256 == crypto.sha256(value or b"").hex()
    assert record.value_prefix == (value or b"")[: limits.QUARANTINE_PREFIX_BYTES]
    assert record.value_is_whole == (value is not None and len(value) <= len(record.value_prefix))
    assert len(record.to_bytes()) <= limits.QUARANTINE_RECORD_MAX_BYTES


def test_a_quarantine_record_stays_bounded_whatever_the_reason_and_decision() -> None:
    """A reason of any size or alphabet is cut to ASCII; a decision too large to keep is left
    out, and the reason says so."""
    huge = {"reasons": ["\u2603 no" * 5000] * 40, "rule_ids": ["r" * 200] * 200}
    record = quarantine_record(b"v" * 100_000, reason="\u0000\u2603" * 10_000, decision=huge)
    assert len(record.to_bytes()) <= limits.QUARANTINE_RECORD_MAX_BYTES
    assert record.reason.isascii()
    assert len(record.reason) <= limits.REASON_MAX_CHARS
    assert record.decision is None


def test_a_quarantine_record_verifies_only_under_a_registered_gateway_key(
    fixture: RegistryFixture,
) -> None:
    """The gateway's signature checks; a record signed by anyone else, or altered in any
    field, does not."""
    gateway = next(iter(fixture.gateways.values()))
    signed = quarantine_record(key=gateway)
    assert verify_quarantine_record(signed, registry=fixture.registry) == signed
    with pytest.raises(errors.KeyTrustError):
        verify_quarantine_record(quarantine_record(), registry=fixture.registry)
    altered = signed.model_copy(update={"reason_code": ReasonCode.MALFORMED})
    with pytest.raises(errors.VerificationError):
        verify_quarantine_record(altered, registry=fixture.registry)
    key_only = quarantine_record(key=crypto.SigningKey.generate(crypto.Suite.CLASSIC)).model_copy(
        update={"gateway_key_id": gateway.public_key().key_id}
    )
    with pytest.raises(errors.VerificationError):
        verify_quarantine_record(key_only, registry=fixture.registry)


def _edit(data: bytes, edit: Any) -> bytes:
    document = json.loads(data)
    edit(document)
    return canonical_json(document)


# name -> bytes a parser must refuse
BAD_QUARANTINE: dict[str, Any] = {
    "not canonical (spaces)": lambda d: d.replace(b'{"decision"', b'{ "decision"', 1),
    "duplicate key": lambda d: d[:-1] + b',"v":1}',
    "unknown field": lambda d: _edit(d, lambda x: x.update(extra=1)),
    "unknown reason code": lambda d: _edit(d, lambda x: x.update(reason_code="because")),
    "float": lambda d: _edit(d, lambda x: x["source"].update(offset=1)).replace(
        b'"offset":1', b'"offset":1.5'
    ),
    "NaN": lambda d: d.replace(b'"offset":41', b'"offset":NaN'),
    "not UTF-8": lambda d: d.replace(b"TLP:RED", b"TLP:\xff"),
    "a list": lambda d: b"[]",
    "too large": lambda d: b" " * (limits.QUARANTINE_RECORD_MAX_BYTES + 1),
    "version 1": lambda d: _edit(d, lambda x: x.update(v=1)),
    "prefix over the bound": lambda d: _edit(
        d, lambda x: x.update(value_prefix_b64="QUFB" * limits.QUARANTINE_PREFIX_BYTES)
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_QUARANTINE))
def test_ambiguous_or_malformed_quarantine_bytes_are_refused(case: str) -> None:
    """Every case is a SchemaError, never a crash or a silently different record."""
    with pytest.raises(errors.SchemaError):
        parse_quarantine_record(BAD_QUARANTINE[case](quarantine_record().to_bytes()))


def test_an_audit_record_is_signed_by_the_gateway_and_verifies(fixture: RegistryFixture) -> None:
    """sign -> bytes -> verify gives the same record, checked with the registered gateway key."""
    key = next(iter(fixture.gateways.values()))
    record = sign_audit_record(audit_fields(), gateway_key=key)
    data = record.to_bytes()
    assert canonical_json(json.loads(data)) == data
    verified = verify_audit_record(data, registry=fixture.registry)
    assert verified == record
    assert verified.labels == LABELS
    assert verified.gateway_key_id == key.public_key().key_id
    assert parse_audit_record(data) == record


@pytest.mark.parametrize(
    ("field", "value"),
    [("recipient", "AL"), ("decision", "deny"), ("accord_version", 1), ("rule_ids", [])],
)
def test_an_edited_audit_record_does_not_verify(
    fixture: RegistryFixture, field: str, value: object
) -> None:
    """Changing any signed field breaks the gateway signature."""
    key = next(iter(fixture.gateways.values()))
    data = sign_audit_record(audit_fields(), gateway_key=key).to_bytes()
    with pytest.raises(errors.VerificationError):
        verify_audit_record(
            _edit(data, lambda x: x.update({field: value})), registry=fixture.registry
        )


def test_an_audit_record_signed_by_a_partner_key_is_refused(fixture: RegistryFixture) -> None:
    """Only registered gateway keys sign audit records."""
    partner_key = fixture.partners[next(iter(fixture.partners))].signing
    data = sign_audit_record(audit_fields(), gateway_key=partner_key).to_bytes()
    with pytest.raises(errors.KeyTrustError):
        verify_audit_record(data, registry=fixture.registry)


def test_a_refusal_of_an_unparseable_record_has_nulls_not_guesses(fixture: RegistryFixture) -> None:
    """Unknown ids, parties, labels and accord stay null in the signed refusal."""
    key = next(iter(fixture.gateways.values()))
    fields = audit_fields(
        kind=AuditKind.REFUSAL,
        message_id=None,
        sender=None,
        recipient=None,
        labels=None,
        decision="deny",
        reason_code=ReasonCode.MALFORMED,
        rule_ids=(),
        accord_id=None,
        accord_version=None,
        accord_digest=None,
        justification=None,
    )
    record = verify_audit_record(
        sign_audit_record(fields, gateway_key=key).to_bytes(), registry=fixture.registry
    )
    assert (record.message_id, record.labels, record.reason_code) == (None, None, "malformed")


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2200, 1, 1)))  # noqa: DTZ001 - hypothesis wants naive bounds
def test_record_times_round_trip_to_the_second(when: dt.datetime) -> None:
    """format_time/parse_time agree, in UTC, to whole seconds."""
    aware = when.replace(tzinfo=dt.UTC, microsecond=0)
    assert parse_time(format_time(aware)) == aware
