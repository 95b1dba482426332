"""Regressions found by the fuzz campaigns (docs/FUZZING.md): malformed checkpoint records on
the audit topic are AuditErrors, never a ValueError or RecursionError."""

from __future__ import annotations

import pytest

from broker import errors
from broker.ledger.entries import parse_checkpoint_record


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
