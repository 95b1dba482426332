"""Properties of verification over logs of any size and checkpoint spacing: whichever single
record is modified or deleted, the report names that index and that kind."""

from __future__ import annotations

import pathlib
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit import Checkpoint, MerkleLog, leaf_hash, sign_checkpoint
from broker.ledger import encode_checkpoint_record
from broker.replay import iter_entries, read_header, verify_entries
from broker.replay.bundle import BundleHeader
from tests.unit.replay.audit_log import NOW, AuditLog, decide, labels

POOL = 24


@pytest.fixture(scope="module")
def log() -> AuditLog:
    """One registry and gateway key for the module."""
    return AuditLog.create()


@pytest.fixture(scope="module")
def pool(log: AuditLog) -> list[bytes]:
    """Distinct signed records to build logs from."""
    return [decide(log.accords[0], labels(), key=log.gateway_key, at=NOW) for _ in range(POOL)]


def _checkpointed(log: AuditLog, records: list[bytes], every: int) -> list[bytes]:
    """``records`` with a checkpoint record after every ``every`` and at the end."""
    merkle, pending, out = MerkleLog(), [], []
    for value in records:
        out.append(value)
        leaf = leaf_hash(value)
        merkle.append(leaf)
        pending.append(leaf)
        if len(pending) == every or merkle.size == len(records):
            checkpoint = Checkpoint("broker/xb.audit", merkle.size, merkle.root(), NOW)
            note = sign_checkpoint(checkpoint, key=log.gateway_key)
            first = merkle.size - len(pending)
            out.append(
                encode_checkpoint_record(
                    note, first=first, leaves=pending, refused=[], through=len(out)
                )
            )
            pending = []
    return out


def _first_problem(log: AuditLog, values: list[bytes]) -> tuple[str, int | None]:
    with tempfile.TemporaryDirectory() as scratch:
        path = pathlib.Path(scratch) / "b.bundle"
        path.write_bytes(log.bundle_bytes(values))
        header: BundleHeader = read_header(path)
        report = verify_entries(iter_entries(path), registry=header.registry())
    problem = report.first_problem
    return ("none", None) if problem is None else (problem.kind, problem.index)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_single_modified_or_deleted_record_is_named(
    log: AuditLog, pool: list[bytes], data: st.DataObject
) -> None:
    """Modifying record i reports (modified, i); deleting it reports (deleted, i), or
    (truncated, i) when it was the last."""
    size = data.draw(st.integers(2, POOL), label="size")
    every = data.draw(st.integers(1, size), label="every")
    index = data.draw(st.integers(0, size - 1), label="index")
    action = data.draw(st.sampled_from(["modify", "delete"]), label="action")
    records = pool[:size]
    if action == "modify":
        changed = records[index].replace(b'"recipient":"RS"', b'"recipient":"AL"')
        tampered = [*records[:index], changed, *records[index + 1 :]]
        expected = ("modified", index)
    else:
        tampered = records[:index] + records[index + 1 :]
        expected = ("truncated" if index == size - 1 else "deleted", index)
    # checkpoints as signed over the true log, records as tampered
    signed = [v for v in _checkpointed(log, records, every) if v not in records]
    assert _first_problem(log, [*tampered, *signed]) == expected
    assert _first_problem(log, _checkpointed(log, records, every)) == ("none", None)
