"""Regressions found by the fuzz campaigns (docs/FUZZING.md): records the gateway and the
auditors parse are refused with our errors, and a large malformed record is quarantined.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from broker import errors
from broker.crypto import sha256
from broker.keys import canonical_json
from broker.keys.testing import build_registry
from broker.pipeline import (
    ReasonCode,
    parse_audit_record,
    parse_quarantine_record,
    verify_audit_record,
)
from broker.pipeline.gateway import InboundRecord, Quarantine, route
from broker.trust import AccordBook

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
WORLD = build_registry(now=NOW, partners=("GB", "RS"), roots=1, threshold=1)
GATEWAY_KEY = next(iter(WORLD.gateways.values()))


def _route(value: bytes) -> Quarantine:
    outcome = route(
        InboundRecord(topic="xb.outbox.GB", partition=0, offset=3, value=value),
        registry=WORLD.registry,
        accords=AccordBook([]),
        gateway_key=GATEWAY_KEY,
        now=NOW,
        counters={},
        dedup=lambda _key: "new",
    )
    assert isinstance(outcome, Quarantine)
    return outcome


@pytest.mark.parametrize("size", [64 * 1024, 1024 * 1024 - 5])
def test_a_large_malformed_record_is_quarantined_by_digest_and_prefix(size: int) -> None:
    """A malformed record far over the models' default string cap is still quarantined; its
    quarantine record carries its size, digest and first bytes, and parses again."""
    value = b"\x89XBE\x01" + bytes(size)
    quarantined = _route(value)
    assert quarantined.reason_code is ReasonCode.MALFORMED
    again = parse_quarantine_record(quarantined.record.to_bytes())
    assert again.value_prefix == value[: len(again.value_prefix)]
    assert (again.value_size, again.value_sha256) == (len(value), sha256(value).hex())


def test_non_ascii_base64_in_a_quarantine_record_is_a_schema_error() -> None:
    """value_prefix_b64 holding non-ASCII text is refused as SchemaError, not a ValueError."""
    document = json.loads(_route(b"junk").record.to_bytes())
    document["value_prefix_b64"] = "\u00e9AAA"
    record = parse_quarantine_record(canonical_json(document))
    with pytest.raises(errors.SchemaError, match="bad value_prefix_b64"):
        _ = record.value_prefix


def test_non_ascii_base64_in_an_audit_signature_does_not_verify() -> None:
    """A non-ASCII signature on an otherwise valid audit record is a VerificationError."""
    document = json.loads(_route(b"junk").audit.to_bytes())
    document["signature"] = "\u2014AAA"
    with pytest.raises(errors.VerificationError):
        verify_audit_record(canonical_json(document), registry=WORLD.registry)


@pytest.mark.parametrize("depth", [200, 600])
def test_nesting_near_the_recursion_limit_is_refused(depth: int) -> None:
    """Nesting json.loads still accepts, but far over the limit, is a SchemaError; measuring
    it must not overflow the stack itself."""
    data = b'{"v":' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(errors.SchemaError, match="nests deeper"):
        parse_audit_record(data)
