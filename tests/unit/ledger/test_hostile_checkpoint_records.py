"""Regressions found by the fuzz campaigns (docs/FUZZING.md): malformed checkpoint records on
the audit topic are AuditErrors, never a ValueError or RecursionError; and judging any bytes at
all returns a verdict."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import errors
from broker.ledger import Refusal, Refused, judge_record
from broker.ledger.entries import parse_checkpoint_record
from tests.unit.replay.audit_log import AuditLog

REGISTRY = AuditLog.create()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (
            "non-ASCII leaves",
            '{"from":0,"kind":"checkpoint","leaves":"\u00e9AAA","note":"x","v":1}'.encode(),
        ),
        ("nested past the recursion limit", b'{"from":' + b"[" * 100_000),
        (
            "a lone surrogate in the note",
            b'{"from":0,"kind":"checkpoint","leaves":"","note":"\\ud800","v":1}',
        ),
    ],
)
def test_malformed_checkpoint_records_are_audit_errors(name: str, value: bytes) -> None:
    """Each malformed value is refused as AuditError."""
    with pytest.raises(errors.AuditError):
        parse_checkpoint_record(value)


@given(value=st.one_of(st.none(), st.binary(max_size=4096)))
def test_judging_any_bytes_never_raises_and_never_admits_garbage(value: bytes | None) -> None:
    """Whatever is on the audit topic, judging it returns a verdict; random bytes are never a
    valid gateway record."""
    judged = judge_record(value, registry=REGISTRY.fixture.registry)
    assert isinstance(judged, Refused)


@given(value=st.binary(max_size=2048).map(lambda tail: b'{"from":' + tail))
def test_judging_checkpoint_look_alikes_never_raises(value: bytes) -> None:
    """Anything that starts like a checkpoint record and is not one is a bad checkpoint."""
    judged = judge_record(value, registry=REGISTRY.fixture.registry)
    assert isinstance(judged, Refused)
    assert judged.reason == Refusal.BAD_CHECKPOINT
