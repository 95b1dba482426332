"""Regressions found by the fuzz campaigns (docs/FUZZING.md): a damaged bundle or proof file
is reported (AuditError, or a damaged entry kept in place), never a crash."""

from __future__ import annotations

import pathlib

import pytest

from broker import errors
from broker.keys.testing import build_registry
from broker.replay import iter_entries, read_header, verify_proof

from .audit_log import NOW, AuditLog


def _bundle(tmp_path: pathlib.Path, data: bytes) -> pathlib.Path:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(data)
    return path


def test_a_header_nested_past_the_recursion_limit_is_an_audit_error(
    tmp_path: pathlib.Path,
) -> None:
    """A header line of deeply nested JSON is 'damaged', not a RecursionError."""
    with pytest.raises(errors.AuditError, match="damaged"):
        read_header(_bundle(tmp_path, b"[" * 100_000 + b"\n"))


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("non-ASCII base64", '{"offset":0,"value_b64":"\u00e9AAA"}'.encode()),
        ("nested past the recursion limit", b"[" * 100_000),
    ],
)
def test_malformed_lines_are_kept_as_damaged_entries(
    tmp_path: pathlib.Path, name: str, line: bytes
) -> None:
    """Each malformed line becomes a damaged entry at its index, for the auditor's report."""
    header = AuditLog.create().bundle_bytes([]).splitlines(keepends=True)[0]
    (entry,) = iter_entries(_bundle(tmp_path, header + line + b"\n"))
    assert entry.damaged
    assert entry.offset == 0


@pytest.mark.parametrize(
    "data", [b"[" * 100_000, b'{"format":' + b"[" * 100_000], ids=["array", "in a field"]
)
def test_a_proof_file_nested_past_the_recursion_limit_is_an_audit_error(data: bytes) -> None:
    """verify_proof() refuses deeply nested JSON as a malformed proof file."""
    registry = build_registry(now=NOW).registry
    with pytest.raises(errors.AuditError, match="malformed"):
        verify_proof(data, registry=registry)
