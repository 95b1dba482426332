"""The two depths of verification. By default a record a signed checkpoint covers is
authenticated by that checkpoint (its leaf hash is under the signed root, and the checkpointer
judged it before covering it), a record the checkpointer refused is reported, and the unsigned
tail has each record's own signature and strict form checked; ``thorough`` judges every record
as well. Tampering is found at its index in both modes."""

from __future__ import annotations

import pathlib
import re

import pytest
from click.testing import CliRunner

from broker import errors
from broker.audit import Checkpoint, MerkleLog, TamperKind, leaf_hash, sign_checkpoint
from broker.cli import cli
from broker.ledger import encode_checkpoint_record, is_checkpoint_record
from broker.replay import iter_entries, read_header, verify_entries
from tests.unit.replay.audit_log import NOW, AuditLog, checkpointed_topic, decide, labels

SIGNED = 8  # checkpoints at 4 and 8
TAIL = 3  # records after the last checkpoint
TAMPER_KINDS = {str(kind) for kind in TamperKind} - {str(TamperKind.NONE)}


@pytest.fixture(scope="module")
def log() -> AuditLog:
    """One registry and gateway key for the module."""
    return AuditLog.create()


def _record(log: AuditLog) -> bytes:
    return decide(log.accords[0], labels(), key=log.gateway_key, at=NOW)


def _foreign_signature(record: bytes, donor: bytes) -> bytes:
    """``record`` carrying ``donor``'s (valid, but not its own) gateway signature."""
    pattern = re.compile(rb'"signature":"[^"]*"')
    found = pattern.search(donor)
    assert found is not None
    assert pattern.search(record) is not None
    return pattern.sub(found[0], record)


def _leaf_positions(values: list[bytes]) -> list[int]:
    return [i for i, v in enumerate(values) if not is_checkpoint_record(v)]


async def _topic(log: AuditLog, signed: list[bytes]) -> list[bytes]:
    """``signed`` records under checkpoints every 4, then TAIL records no checkpoint covers."""
    topic = await checkpointed_topic(signed, key=log.gateway_key, registry=log.fixture.registry)
    return [*topic.contents(), *(_record(log) for _ in range(TAIL))]


def _report(
    log: AuditLog, values: list[bytes], tmp_path: pathlib.Path, *, thorough: bool
) -> tuple[str, int | None]:
    path = tmp_path / "audit.bundle"
    path.write_bytes(log.bundle_bytes(values))
    registry = read_header(path).registry()
    report = verify_entries(iter_entries(path), registry=registry, thorough=thorough)
    assert report.signed_size == SIGNED
    problem = report.first_problem
    if problem is None:
        assert report.unsigned_tail == TAIL
    return ("none", None) if problem is None else (problem.kind, problem.index)


@pytest.mark.parametrize("thorough", [False, True], ids=["default", "thorough"])
async def test_an_intact_log_with_a_tail_verifies_in_both_modes(
    log: AuditLog, tmp_path: pathlib.Path, thorough: bool
) -> None:
    """Signed records and a valid unsigned tail: no finding either way."""
    values = await _topic(log, [_record(log) for _ in range(SIGNED)])
    assert _report(log, values, tmp_path, thorough=thorough) == ("none", None)


@pytest.mark.parametrize(
    ("leaf", "kinds"),
    [
        (0, TAMPER_KINDS),  # covered by the first checkpoint
        (6, TAMPER_KINDS),  # covered by the last checkpoint
        (SIGNED, {"invalid_record"}),  # first record of the unsigned tail
        (SIGNED + TAIL - 1, {"invalid_record"}),  # last record
    ],
    ids=["covered-first", "covered-last", "tail-first", "tail-last"],
)
async def test_a_changed_record_is_found_at_its_index_in_both_modes(
    log: AuditLog, tmp_path: pathlib.Path, leaf: int, kinds: set[str]
) -> None:
    """A covered record no longer matches its signed leaf hash (a tampering kind); a tail
    record no longer matches its own signature (invalid_record). Both modes report the same
    first problem, at the record's index."""
    values = await _topic(log, [_record(log) for _ in range(SIGNED)])
    position = _leaf_positions(values)[leaf]
    values[position] = values[position].replace(b'"decision":"allow"', b'"decision":"deny"')
    default = _report(log, values, tmp_path, thorough=False)
    assert default == _report(log, values, tmp_path, thorough=True)
    assert default[0] in kinds
    assert default[1] == leaf


def _covered_blindly(log: AuditLog, records: list[bytes]) -> list[bytes]:
    """``records`` under one checkpoint that covers all of them unjudged: what a gateway
    whose checkpointer does not check signatures would sign."""
    merkle = MerkleLog()
    for value in records:
        merkle.append(leaf_hash(value))
    checkpoint = Checkpoint("broker/xb.audit", merkle.size, merkle.root(), NOW)
    note = sign_checkpoint(checkpoint, key=log.gateway_key)
    leaves = [leaf_hash(v) for v in records]
    record = encode_checkpoint_record(
        note, first=0, leaves=leaves, refused=[], through=len(records)
    )
    return [*records, record]


@pytest.mark.parametrize("thorough", [False, True], ids=["default", "thorough"])
async def test_a_record_with_a_bad_own_signature_is_refused_and_named_in_both_modes(
    log: AuditLog, tmp_path: pathlib.Path, thorough: bool
) -> None:
    """The checkpointer refuses a record whose signature does not verify over its bytes, so
    it is never covered: verify names it by default, as thorough does."""
    signed = [_record(log) for _ in range(SIGNED + 1)]
    signed[5] = _foreign_signature(signed[5], donor=signed[4])
    values = await _topic(log, signed)
    assert _report(log, values, tmp_path, thorough=thorough) == ("invalid_record", 5)


@pytest.mark.parametrize(
    ("thorough", "expected"),
    [(False, ("none", None)), (True, ("invalid_record", 5))],
    ids=["default-trusts-the-checkpoint", "thorough-checks-the-record"],
)
def test_a_covered_record_with_a_bad_own_signature_needs_thorough(
    log: AuditLog, tmp_path: pathlib.Path, thorough: bool, expected: tuple[str, int | None]
) -> None:
    """A registered gateway that checkpointed a record with a bad own signature: the signed
    root vouches for its bytes by default; only ``thorough`` re-judges it."""
    signed = [_record(log) for _ in range(SIGNED)]
    signed[5] = _foreign_signature(signed[5], donor=signed[4])
    path = tmp_path / "audit.bundle"
    path.write_bytes(log.bundle_bytes(_covered_blindly(log, signed)))
    registry = read_header(path).registry()
    report = verify_entries(iter_entries(path), registry=registry, thorough=thorough)
    problem = report.first_problem
    assert (("none", None) if problem is None else (problem.kind, problem.index)) == expected


async def test_a_tail_record_with_a_bad_own_signature_is_found_by_default(
    log: AuditLog, tmp_path: pathlib.Path
) -> None:
    """Nothing vouches for the tail but each record's own signature, so it is always checked."""
    values = await _topic(log, [_record(log) for _ in range(SIGNED)])
    values[-2] = _foreign_signature(values[-2], donor=values[-1])
    assert _report(log, values, tmp_path, thorough=False) == ("invalid_record", SIGNED + 1)


async def test_a_log_without_checkpoints_has_every_record_checked(
    log: AuditLog, tmp_path: pathlib.Path
) -> None:
    """With no checkpoint the whole log is the tail: a bad own signature is found by default."""
    values = [_record(log) for _ in range(5)]
    values[3] = _foreign_signature(values[3], donor=values[0])
    path = tmp_path / "audit.bundle"
    path.write_bytes(log.bundle_bytes(values))
    report = verify_entries(iter_entries(path), registry=read_header(path).registry())
    assert [(f.kind, f.index) for f in report.findings] == [("invalid_record", 3)]
    assert (report.records, report.unsigned_tail) == (5, 4)


@pytest.mark.parametrize(
    ("flags", "fails"),
    [((), False), (("--thorough",), True)],
    ids=["default", "thorough"],
)
async def test_the_cli_thorough_flag_checks_every_record(
    log: AuditLog, tmp_path: pathlib.Path, flags: tuple[str, ...], fails: bool
) -> None:
    """``broker audit verify --thorough`` refuses a covered record with a bad own signature
    (AuditError, naming the index); without the flag the checkpoint vouches for it."""
    signed = [_record(log) for _ in range(SIGNED)]
    signed[2] = _foreign_signature(signed[2], donor=signed[3])
    path = tmp_path / "audit.bundle"
    path.write_bytes(log.bundle_bytes(_covered_blindly(log, signed)))
    result = CliRunner().invoke(cli, ["audit", "verify", str(path), *flags])
    if fails:
        assert isinstance(result.exception, errors.AuditError)
        assert "invalid_record at index 2" in str(result.exception)
    else:
        assert result.exit_code == 0, result.output
        assert f"{SIGNED} records signed, 0 not yet signed" in result.output
