"""Verification of a bundle: an intact log passes, every kind of tampering is named with the
first bad index, and one changed byte anywhere in a record is caught."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from broker import errors
from broker.audit import add_signatures, cosign_checkpoint, read_checkpoint, sign_checkpoint
from broker.ledger import encode_checkpoint_record, is_checkpoint_record, parse_checkpoint_record
from broker.replay import iter_entries, read_header, verify_entries
from tests.unit.replay.audit_log import NOW, AuditLog, checkpointed_topic, decide, labels

RECORDS = 12


@pytest.fixture(scope="module")
def log() -> AuditLog:
    """One registry and gateway key for the module."""
    return AuditLog.create()


@pytest.fixture
async def values(log: AuditLog) -> list[bytes]:
    """The audit topic: 12 signed records, checkpointed every 4 (checkpoints at 4, 8, 12)."""
    records = [decide(log.accords[0], labels(), key=log.gateway_key, at=NOW) for _ in range(12)]
    topic = await checkpointed_topic(records, key=log.gateway_key, registry=log.fixture.registry)
    return topic.contents()


def _verify(log: AuditLog, values: list[bytes], tmp_path: pathlib.Path) -> tuple[str, int | None]:
    path = tmp_path / "audit.bundle"
    path.write_bytes(log.bundle_bytes(values))
    registry = read_header(path).registry()
    report = verify_entries(iter_entries(path), registry=registry)
    problem = report.first_problem
    return ("none", None) if problem is None else (problem.kind, problem.index)


def _positions(values: list[bytes]) -> list[int]:
    """The topic positions of the audit records (leaves), in leaf order."""
    return [i for i, v in enumerate(values) if not is_checkpoint_record(v)]


def test_an_intact_log_verifies(log: AuditLog, values: list[bytes], tmp_path: pathlib.Path) -> None:
    """Every signature, checkpoint and record checks out; the whole log is signed."""
    path = tmp_path / "audit.bundle"
    path.write_bytes(log.bundle_bytes(values))
    report = verify_entries(iter_entries(path), registry=read_header(path).registry())
    assert report.intact, [f.describe() for f in report.findings]
    assert (report.records, report.checkpoints, report.signed_size) == (RECORDS, 3, RECORDS)
    assert report.unsigned_tail == 0
    with pytest.raises(TypeError):
        bool(report)


def _modify(values: list[bytes], leaf: int) -> list[bytes]:
    pos = _positions(values)[leaf]
    out = list(values)
    out[pos] = out[pos].replace(b'"decision":"allow"', b'"decision":"deny"')
    return out


def _delete(values: list[bytes], leaf: int) -> list[bytes]:
    pos = _positions(values)[leaf]
    return values[:pos] + values[pos + 1 :]


def _reorder(values: list[bytes], leaf: int) -> list[bytes]:
    a, b = _positions(values)[leaf], _positions(values)[leaf + 1]
    out = list(values)
    out[a], out[b] = out[b], out[a]
    return out


def _truncate(values: list[bytes], leaf: int) -> list[bytes]:
    # the records are cut, the checkpoints that signed them are kept
    cut = set(_positions(values)[leaf:])
    return [v for i, v in enumerate(values) if i not in cut]


def _fork(log: AuditLog) -> Callable[[list[bytes], int], list[bytes]]:
    def insert(values: list[bytes], leaf: int) -> list[bytes]:
        # a validly signed record that was never in the log, slipped in
        extra = decide(log.accords[0], labels(), key=log.gateway_key, at=NOW)
        pos = _positions(values)[leaf]
        return [*values[:pos], extra, *values[pos:]]

    return insert


@pytest.mark.parametrize(
    ("kind", "leaf"),
    [
        ("modified", 5),
        ("deleted", 2),
        ("reordered", 9),
        ("truncated", 7),
        ("forked", 6),
        ("modified", 0),
        ("deleted", 10),
    ],
)
def test_each_kind_of_tampering_is_named_with_its_first_bad_index(
    log: AuditLog, values: list[bytes], tmp_path: pathlib.Path, kind: str, leaf: int
) -> None:
    """The report names the kind and the first leaf index that differs from the signed log."""
    tamper = {
        "modified": _modify,
        "deleted": _delete,
        "reordered": _reorder,
        "truncated": _truncate,
        "forked": _fork(log),
    }[kind]
    assert _verify(log, tamper(values, leaf), tmp_path) == (kind, leaf)


def test_one_changed_byte_in_a_record_line_is_modified_at_that_index(
    log: AuditLog, values: list[bytes], tmp_path: pathlib.Path
) -> None:
    """Flipping any single byte inside a record's line (even one that breaks the JSON) is
    reported as that record modified."""
    bundle = log.bundle_bytes(values)
    lines = bundle.split(b"\n")
    leaf = 3
    line_no = 1 + _positions(values)[leaf]
    for offset in (5, len(lines[line_no]) // 2, len(lines[line_no]) - 1):
        damaged = bytearray(lines[line_no])
        damaged[offset] ^= 0x01
        copy = [*lines[:line_no], bytes(damaged), *lines[line_no + 1 :]]
        path = tmp_path / "copy.bundle"
        path.write_bytes(b"\n".join(copy))
        report = verify_entries(iter_entries(path), registry=read_header(path).registry())
        problem = report.first_problem
        assert problem is not None
        assert (problem.kind, problem.index) == ("modified", leaf)


def test_a_second_root_for_a_signed_size_is_a_fork(
    log: AuditLog, values: list[bytes], tmp_path: pathlib.Path
) -> None:
    """Two validly signed checkpoints for one size with different roots: forked."""
    from broker.audit import Checkpoint

    rogue = Checkpoint(origin="broker/xb.audit", size=4, root=bytes(32), timestamp=NOW)
    note = sign_checkpoint(rogue, key=log.gateway_key)
    extra = encode_checkpoint_record(note, first=4, leaves=[], refused=[], through=len(values))
    kinds = _verify(log, [*values, extra], tmp_path)[0]
    assert kinds == "forked"


def test_a_checkpoint_by_an_unregistered_key_does_not_count(
    log: AuditLog, values: list[bytes], tmp_path: pathlib.Path
) -> None:
    """A checkpoint signed by a key the registry does not list is reported, never trusted."""
    from broker.crypto import SigningKey, Suite

    records = [v for v in values if not is_checkpoint_record(v)]
    from broker.audit import Checkpoint, leaf_hash, root_hash

    stranger = SigningKey.generate(Suite.CLASSIC)
    hashes = [leaf_hash(v) for v in records]
    checkpoint = Checkpoint("broker/xb.audit", len(hashes), root_hash(hashes), NOW)
    forged = encode_checkpoint_record(
        sign_checkpoint(checkpoint, key=stranger),
        first=0,
        leaves=hashes,
        refused=[],
        through=len(records),
    )
    assert _verify(log, [*records, forged], tmp_path)[0] == "bad_checkpoint"


def test_a_damaged_header_is_an_audit_error(log: AuditLog, tmp_path: pathlib.Path) -> None:
    """A bundle whose header does not parse is refused with AuditError, not a traceback."""
    path = tmp_path / "bad.bundle"
    path.write_bytes(b'{"format":"xb-audit-bundle","v":2\n')
    with pytest.raises(errors.AuditError):
        read_header(path)


def test_a_version_1_bundle_is_refused_with_the_migration_note(
    log: AuditLog, tmp_path: pathlib.Path
) -> None:
    """Bundles made before checkpoints were C2SP notes are refused by name, not misread."""
    path = tmp_path / "old.bundle"
    header = log.bundle_bytes([]).replace(b'"v":2', b'"v":1', 1)
    path.write_bytes(header)
    with pytest.raises(errors.AuditError, match=r"version 1.*Migration"):
        read_header(path)


async def test_a_copy_cut_short_with_its_checkpoints_is_caught_by_a_witnessed_checkpoint(
    log: AuditLog, values: list[bytes], tmp_path: pathlib.Path
) -> None:
    """Cutting the tail together with the checkpoints that signed it leaves a self-consistent
    copy; a checkpoint a registered witness cosigned, held by the auditor, names the
    truncation, and counts as the witness of the newest checkpoint of an intact copy."""
    note = parse_checkpoint_record(values[-1]).note
    checkpoint, _ = read_checkpoint(note)
    line = cosign_checkpoint(
        checkpoint, key=log.witness_key, name="witness-1", timestamp=int(NOW.timestamp())
    )
    witnessed = add_signatures(note, [line])
    cut = _positions(values)[9]
    path = tmp_path / "cut.bundle"
    path.write_bytes(log.bundle_bytes(values[:cut]))
    registry = read_header(path).registry()
    alone = verify_entries(iter_entries(path), registry=registry)
    assert alone.intact
    report = verify_entries(iter_entries(path), registry=registry, witnessed=[witnessed])
    problem = report.first_problem
    assert problem is not None
    assert (problem.kind, problem.index) == ("truncated", 9)
    whole = tmp_path / "whole.bundle"
    whole.write_bytes(log.bundle_bytes(values))
    report = verify_entries(iter_entries(whole), registry=registry, witnessed=[witnessed])
    assert report.intact, report.findings
    assert report.witnesses == ("witness-1",)
    unwitnessed = verify_entries(iter_entries(whole), registry=registry, witnessed=[note])
    assert [f.kind for f in unwitnessed.findings] == ["bad_checkpoint"]


def test_values_that_are_not_utf8_survive_the_bundle(log: AuditLog, tmp_path: pathlib.Path) -> None:
    """A value that is not UTF-8 is stored in base64 and read back byte for byte (and, not
    being a signed record, reported as invalid at its index)."""
    odd = b"\xff\xfe not a record"
    path = tmp_path / "odd.bundle"
    path.write_bytes(log.bundle_bytes([odd]))
    assert [e.value for e in iter_entries(path)] == [odd]
    report = verify_entries(iter_entries(path), registry=read_header(path).registry())
    assert [(f.kind, f.index) for f in report.findings] == [("invalid_record", 0)]
