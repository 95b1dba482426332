"""Audit records signed as a batch (version 2): one signature over the head of the batch, each
record carrying its place, each verifying alone; whatever moves a record in its batch, or
mixes the two versions, is refused before it could become a leaf of the audit log."""

from __future__ import annotations

import json
from typing import Any

import pytest

from broker import errors
from broker.keys import canonical_json
from broker.keys.testing import RegistryFixture, build_registry
from broker.ledger import Admitted, Refusal, Refused, judge_record
from broker.pipeline import verify_audit_record
from broker.pipeline.records import (
    AuditRecord,
    draft_audit_record,
    parse_audit_record,
    sign_audit_records,
)

from .test_records import NOW, audit_fields

HASH = "00" * 32


@pytest.fixture(scope="module")
def fixture() -> RegistryFixture:
    return build_registry(now=NOW, partners=("GB", "RS"), roots=1, threshold=1)


def _signed(fixture: RegistryFixture, count: int) -> list[AuditRecord]:
    key = next(iter(fixture.gateways.values()))
    drafts = [
        draft_audit_record(
            audit_fields(message_id=f"019a0000-0000-7000-8000-00000000000{n}"),
            gateway_key_id=key.public_key().key_id,
        )
        for n in range(count)
    ]
    return sign_audit_records(drafts, gateway_key=key)


def _edited(data: bytes, **changes: Any) -> bytes:
    record = json.loads(data)
    record.update(changes)
    return canonical_json({k: v for k, v in record.items() if v is not ...})


def test_a_batch_shares_one_signature_and_each_record_verifies_alone(
    fixture: RegistryFixture,
) -> None:
    records = _signed(fixture, 5)
    assert {r.v for r in records} == {2}
    assert len({r.signature for r in records}) == 1
    assert [r.batch.index for r in records if r.batch] == [0, 1, 2, 3, 4]
    for record in records:
        data = record.to_bytes()
        assert canonical_json(json.loads(data)) == data
        assert verify_audit_record(data, registry=fixture.registry) == record
        assert isinstance(judge_record(data, registry=fixture.registry), Admitted)


def test_a_batch_of_one_is_signed_alone_as_version_1(fixture: RegistryFixture) -> None:
    (record,) = _signed(fixture, 1)
    data = record.to_bytes()
    assert record.v == 1
    assert record.batch is None
    assert b'"batch"' not in data
    verify_audit_record(data, registry=fixture.registry)


def _moved(data: bytes) -> dict[str, bytes]:
    batch = json.loads(data)["batch"]
    path = list(batch["path"])
    flipped = [("0" if path[0][0] != "0" else "1") + path[0][1:], *path[1:]]
    return {
        "another index": _edited(data, batch={**batch, "index": (batch["index"] + 1) % 5}),
        "another size": _edited(data, batch={**batch, "size": 6}),
        "a path hash changed": _edited(data, batch={**batch, "path": flipped}),
        "a hash dropped from the path": _edited(data, batch={**batch, "path": path[:-1]}),
        "a field changed": _edited(data, recipient="AL"),
        "relabelled version 1 without its batch": _edited(data, v=1, batch=...),
    }


@pytest.mark.parametrize(
    "how",
    [
        "another index",
        "another size",
        "a path hash changed",
        "a hash dropped from the path",
        "a field changed",
        "relabelled version 1 without its batch",
    ],
)
def test_a_record_moved_in_its_batch_is_a_bad_signature(fixture: RegistryFixture, how: str) -> None:
    records = _signed(fixture, 5)
    # the head's signature was checked (and remembered) for the genuine records first
    for record in records:
        verify_audit_record(record.to_bytes(), registry=fixture.registry)
    forged = _moved(records[2].to_bytes())[how]
    with pytest.raises(errors.VerificationError):
        verify_audit_record(forged, registry=fixture.registry)
    judged = judge_record(forged, registry=fixture.registry)
    assert isinstance(judged, Refused)
    assert judged.reason is Refusal.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("how", "changes"),
    [
        ("version 2 without a batch", {"batch": ...}),
        ("version 1 with a batch", {"v": 1}),
        ("a batch of one", {"batch": {"index": 0, "path": [], "size": 1}}),
        ("an index past the size", {"batch": {"index": 5, "path": [], "size": 5}}),
        ("a path too long", {"batch": {"index": 0, "path": [HASH] * 13, "size": 4096}}),
        ("a path hash that is not hex", {"batch": {"index": 0, "path": ["zz" * 32], "size": 2}}),
        ("an unknown member", {"batch": {"extra": 1, "index": 0, "path": [], "size": 2}}),
    ],
)  # fmt: skip
def test_a_batch_member_of_the_wrong_shape_does_not_parse(
    fixture: RegistryFixture, how: str, changes: dict[str, Any]
) -> None:
    forged = _edited(_signed(fixture, 2)[0].to_bytes(), **changes)
    with pytest.raises(errors.SchemaError):
        parse_audit_record(forged)
    judged = judge_record(forged, registry=fixture.registry)
    assert isinstance(judged, Refused), how
    assert judged.reason is Refusal.MALFORMED, how


@pytest.mark.parametrize(
    "changes", [{"batch": None}, {"v": ...}], ids=["a null batch", "no version"]
)
def test_a_version_1_record_has_one_byte_form(
    fixture: RegistryFixture, changes: dict[str, Any]
) -> None:
    """A null ``batch`` or a missing ``v`` would verify under the same signature with another
    leaf hash: such a second form is refused."""
    (record,) = _signed(fixture, 1)
    forged = _edited(record.to_bytes(), **changes)
    with pytest.raises(errors.SchemaError):
        parse_audit_record(forged)
    assert isinstance(judge_record(forged, registry=fixture.registry), Refused)


def test_a_batch_signed_by_a_partner_key_is_refused(fixture: RegistryFixture) -> None:
    partner = fixture.partners[next(iter(fixture.partners))].signing
    drafts = [
        draft_audit_record(audit_fields(), gateway_key_id=partner.public_key().key_id)
        for _ in range(3)
    ]
    for record in sign_audit_records(drafts, gateway_key=partner):
        with pytest.raises(errors.KeyTrustError):
            verify_audit_record(record.to_bytes(), registry=fixture.registry)
