"""Offline verification of an audit log: every signature, every checkpoint, and tampering.

:func:`scan` reads the entries once, keeping 32 bytes per record (its leaf hash), and the
records themselves only while they wait for a checkpoint (a bounded number).
:func:`verify_entries` then checks:

1. every checkpoint's gateway signature, with the key registered at the checkpoint's time;
2. the gateway signature of every audit record no verified checkpoint covers (the unsigned
   tail), strictly parsed, with the key registered at its ``decided_at``. A record a
   checkpoint covers is authenticated by that checkpoint's signature over the Merkle root,
   which its leaf hash is part of (step 4), so its own signature adds nothing and is only
   checked with ``thorough=True``, which checks every record;
3. that each checkpoint's listed leaf hashes produce its signed root. All roots are
   recomputed from one leaf sequence, so consecutive checkpoints are consistent (the smaller
   tree is a prefix of the larger) exactly when every root verifies; two roots for one size,
   or two hashes for one index, are a fork;
4. the records read against the signed leaf hashes: :func:`broker.audit.classify_tampering`
   names the first bad index and the kind (modified, deleted, reordered, truncated, forked).

When a checkpoint's root does not match its leaves, the records it would have covered are not
re-checked one by one in the default mode; the failed checkpoint is itself reported, so such a
log never verifies.

Checkpoints obtained elsewhere (a witness's co-signed note) can be added as ``trusted_notes``:
they catch a copy cut short together with its last checkpoints.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

from broker import errors
from broker.audit import (
    Checkpoint,
    MerkleLog,
    TamperKind,
    TamperReport,
    classify_tampering,
    leaf_hash,
    root_hash,
    verify_log_signature,
)
from broker.crypto import VerifyKey
from broker.ids import KeyId
from broker.keys import Registry
from broker.ledger import CheckpointRecord, is_checkpoint_record, parse_checkpoint_record
from broker.pipeline.records import parse_time, verify_audit_record
from broker.replay.bundle import Entry

__all__ = [
    "Finding",
    "Scan",
    "VerifyReport",
    "checkpoint_keys",
    "scan",
    "verify_entries",
]

_GATEWAY_LINE = re.compile(rb"^\xe2\x80\x94 gateway/([0-9a-f]{32}) ", re.MULTILINE)
_WITNESS_LINE = re.compile(rb"^\xe2\x80\x94 witness/([0-9a-f]{32}) ", re.MULTILINE)
_TIME_LINE = re.compile(rb"^time ([0-9T:Z-]{20})$", re.MULTILINE)


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """One problem: its kind (a TamperKind value, ``invalid_record`` or ``bad_checkpoint``),
    the first leaf index it concerns (None when it concerns no single record) and why."""

    kind: str
    index: int | None
    detail: str

    def describe(self) -> str:
        """One line for the auditor."""
        where = "" if self.index is None else f" at index {self.index}"
        return f"{self.kind}{where}: {self.detail}"


@dataclasses.dataclass(frozen=True)
class Scan:
    """What one pass over the entries found."""

    observed: list[bytes]
    checkpoints: list[tuple[Checkpoint, CheckpointRecord]]
    findings: list[Finding]


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify_entries`. Ask ``.intact``; it has no truth value."""

    records: int
    checkpoints: int
    signed_size: int
    tamper: TamperReport
    findings: tuple[Finding, ...]
    latest: Checkpoint | None

    @property
    def intact(self) -> bool:
        """Every signature verified and every signed entry is in place."""
        return not self.findings

    @property
    def first_problem(self) -> Finding | None:
        """The problem at the lowest index (tampering first among equals), or None."""
        if not self.findings:
            return None
        tamper_kinds = {str(kind) for kind in TamperKind}
        return min(
            self.findings,
            key=lambda f: (f.index is None, f.index or 0, f.kind not in tamper_kinds),
        )

    @property
    def unsigned_tail(self) -> int:
        """Records after the newest checkpoint: not yet covered by any signature."""
        return max(0, self.records - self.signed_size)

    def __bool__(self) -> bool:
        raise TypeError("a VerifyReport has no truth value; use .intact")


def checkpoint_keys(note: bytes, registry: Registry, *, role: str = "gateway") -> list[VerifyKey]:
    """The registered ``role`` keys that signed ``note`` and were valid at its time."""
    time_match = _TIME_LINE.search(note)
    if time_match is None:
        raise errors.AuditError("checkpoint note has no time line")
    try:
        at = parse_time(time_match[1].decode("ascii"))
    except errors.SchemaError as exc:
        raise errors.AuditError("checkpoint time is not a valid date") from exc
    pattern = _GATEWAY_LINE if role == "gateway" else _WITNESS_LINE
    lookup = registry.gateway_key if role == "gateway" else registry.witness_key
    keys: list[VerifyKey] = []
    for match in pattern.finditer(note):
        try:
            keys.append(lookup(KeyId(match[1].decode()), at=at))
        except errors.KeyTrustError:
            continue  # not registered then: its line cannot count
    if not keys:
        raise errors.AuditError(f"checkpoint carries no {role} key registered at its time")
    return keys


def scan(
    entries: Iterable[Entry],
    *,
    registry: Registry,
    check_records: bool = True,
    tail_only: bool = False,
) -> Scan:
    """Read every entry once: leaf hashes, verified checkpoints, and what failed.

    With ``check_records``, each audit record's own signature is checked; with ``tail_only``
    as well, only for records no checkpoint with a valid signature covers.
    """
    observed: list[bytes] = []
    checkpoints: list[tuple[Checkpoint, CheckpointRecord]] = []
    findings: list[Finding] = []
    # Records awaiting a covering checkpoint (checkpoints follow the records they sign).
    # Bounded: past the bound they are checked one by one, so memory stays flat even in a
    # log that is never checkpointed.
    pending: list[tuple[int, bytes]] = []
    for entry in entries:
        if not entry.damaged and is_checkpoint_record(entry.value):
            try:
                record = parse_checkpoint_record(entry.value)
                keys = checkpoint_keys(record.note, registry)
                checkpoint = record.checkpoint(gateway_keys=keys)
                checkpoints.append((checkpoint, record))
            except errors.AuditError as exc:
                findings.append(
                    Finding("bad_checkpoint", None, f"checkpoint at offset {entry.offset}: {exc}")
                )
                continue
            pending = [item for item in pending if item[0] >= checkpoint.size]
            continue
        index = len(observed)
        observed.append(leaf_hash(entry.value))
        if entry.damaged:
            findings.append(Finding("invalid_record", index, "the bundle line is damaged"))
        elif check_records and tail_only:
            pending.append((index, entry.value))
            if len(pending) >= _MAX_PENDING:
                findings += _check_records(pending, registry)
                pending = []
        elif check_records:
            findings += _check_records([(index, entry.value)], registry)
    findings += _check_records(pending, registry)
    return Scan(observed, checkpoints, findings)


#: records held while waiting for a checkpoint; gateways checkpoint far more often
_MAX_PENDING = 16_384


def _check_records(records: Sequence[tuple[int, bytes]], registry: Registry) -> list[Finding]:
    """Strict parse and own gateway signature of each (index, value)."""
    findings: list[Finding] = []
    for index, value in records:
        try:
            verify_audit_record(value, registry=registry)
        except errors.IntegrityError as exc:
            findings.append(Finding("invalid_record", index, exc.diagnostics()))
    return findings


def verify_entries(
    entries: Iterable[Entry],
    *,
    registry: Registry,
    trusted_notes: Sequence[bytes] = (),
    thorough: bool = False,
) -> VerifyReport:
    """Verify a whole log; see the module docstring for what is checked.

    ``thorough`` also checks the own signature and strict form of every record a checkpoint
    already covers: one signature verification per record, for an auditor who wants each
    record's own signature checked.
    """
    found = scan(entries, registry=registry, tail_only=not thorough)
    observed, findings = found.observed, list(found.findings)
    expected, fork = _signed_leaves(found.checkpoints, findings)
    tamper = classify_tampering(expected, observed)
    if not tamper.intact:
        findings.append(Finding(str(tamper.kind), tamper.first_bad_index, tamper.describe()))
    elif fork is not None:
        findings.append(fork)
    for note in trusted_notes:
        findings += _check_trusted(note, registry, observed)
    latest = max((c for c, _ in found.checkpoints), key=lambda c: c.size, default=None)
    return VerifyReport(
        records=len(observed),
        checkpoints=len(found.checkpoints),
        signed_size=len(expected),
        tamper=tamper,
        findings=tuple(findings),
        latest=latest,
    )


def _signed_leaves(
    checkpoints: Sequence[tuple[Checkpoint, CheckpointRecord]], findings: list[Finding]
) -> tuple[list[bytes], Finding | None]:
    """The leaf hashes the checkpoints sign, authenticated against their roots."""
    fork: Finding | None = None
    roots: dict[int, bytes] = {}
    listed: dict[int, bytes] = {}
    for checkpoint, record in sorted(checkpoints, key=lambda pair: pair[0].size):
        known = roots.setdefault(checkpoint.size, checkpoint.root)
        if known != checkpoint.root and fork is None:
            fork = Finding("forked", None, f"two signed roots for size {checkpoint.size}")
        for index, leaf in enumerate(record.leaves, start=record.first):
            if listed.setdefault(index, leaf) != leaf and fork is None:
                fork = Finding("forked", index, "two signed histories differ at this index")
    log, signed = MerkleLog(), 0
    expected: list[bytes] = []
    for size in sorted(roots):
        for index in range(log.size, size):
            signed_leaf = listed.get(index)
            if signed_leaf is None:
                findings.append(
                    Finding(
                        "bad_checkpoint", index, "no checkpoint lists this leaf: one is missing"
                    )
                )
                return expected[:signed], fork
            expected.append(signed_leaf)
            log.append(signed_leaf)
        if log.root() != roots[size]:
            findings.append(
                Finding(
                    "bad_checkpoint", None, f"the leaves listed up to size {size} miss its root"
                )
            )
            return expected[:signed], fork
        signed = size
    return expected, fork


def _check_trusted(note: bytes, registry: Registry, observed: Sequence[bytes]) -> list[Finding]:
    try:
        checkpoint = verify_log_signature(note, gateway_keys=checkpoint_keys(note, registry))
    except errors.AuditError as exc:
        return [Finding("bad_checkpoint", None, f"trusted checkpoint: {exc}")]
    if checkpoint.size > len(observed):
        return [
            Finding(
                str(TamperKind.TRUNCATED),
                len(observed),
                f"a trusted checkpoint signs {checkpoint.size} records, the log has "
                f"{len(observed)}",
            )
        ]
    if root_hash(observed[: checkpoint.size]) != checkpoint.root:
        return [
            Finding(
                str(TamperKind.FORKED),
                None,
                f"the first {checkpoint.size} records do not match a trusted checkpoint",
            )
        ]
    return []
