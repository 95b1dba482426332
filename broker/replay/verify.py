"""Offline verification of an audit log: every record is a valid gateway record under a signed
checkpoint or checked on its own, nothing was tampered with, and witnesses agree.

:func:`verify_entries` reads the entries once (:func:`~broker.replay.scan.scan`) and checks:

1. every checkpoint: its note signed by a gateway key registered at its time, and its listed
   leaf hashes reproducing its signed root. All roots are recomputed from one leaf sequence,
   so consecutive checkpoints are consistent exactly when every root verifies; two roots for
   one size, or two hashes for one index, are a fork;
2. every record the checkpointer refused (listed by offset in a checkpoint record): an
   ``invalid_record`` finding at its index, so a log holding anything but valid gateway
   records never verifies;
3. every record no checkpoint has judged yet (the unsigned tail): judged here as the
   checkpointer would, strictly parsed and its own gateway signature checked;
4. the records against the signed leaf hashes: :func:`broker.audit.classify_tampering` names
   the first bad index and the kind (modified, deleted, reordered, truncated, forked);
5. every witnessed checkpoint (the bundle's own and those given by the auditor): signed by a
   registered gateway, its cosignatures by registered witnesses verifying, and its tree a
   prefix of the bundle's, so a copy cut short is ``truncated``.

A record a checkpoint covers is authenticated by that checkpoint's signature over the Merkle
root (its leaf hash is one of the leaves), and the checkpointer checked its own signature
before covering it, so by default it costs one SHA-256. ``thorough`` judges every record here
as well, and reports one the checkpointer covered that does not verify, or refused that does.
"""

from __future__ import annotations

import array
import bisect
import dataclasses
from collections.abc import Iterable, Sequence

from broker import errors
from broker.audit import (
    Checkpoint,
    MerkleLog,
    TamperKind,
    TamperReport,
    classify_tampering,
)
from broker.keys import Registry
from broker.ledger import (
    CheckpointRecord,
    Refusal,
    open_registered_checkpoint,
    registered_cosigners,
)
from broker.replay.bundle import Entry
from broker.replay.scan import Finding, Scan, scan

__all__ = ["Finding", "VerifyReport", "verify_entries"]


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify_entries`. Ask ``.intact``; it has no truth value."""

    records: int
    checkpoints: int
    signed_size: int
    tamper: TamperReport
    findings: tuple[Finding, ...]
    latest: Checkpoint | None
    #: registered witnesses (names) whose cosignature of ``latest`` verified
    witnesses: tuple[str, ...]
    #: records that are not authenticated valid gateway records: left out of every count
    unauthenticated: frozenset[int]
    #: the record index of each leaf of the log, in leaf order
    leaf_records: Sequence[int]

    @property
    def intact(self) -> bool:
        """Every signature verified, every record is a valid gateway record in its place."""
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
        """Leaves after the newest checkpoint: not yet covered by any signature."""
        return max(0, len(self.leaf_records) - self.signed_size)

    def leaf_index(self, record: int) -> int | None:
        """The leaf index of record ``record``, or None if it is no leaf."""
        at = bisect.bisect_left(self.leaf_records, record)
        return at if at < len(self.leaf_records) and self.leaf_records[at] == record else None

    def __bool__(self) -> bool:
        raise TypeError("a VerifyReport has no truth value; use .intact")


def verify_entries(
    entries: Iterable[Entry],
    *,
    registry: Registry,
    witnessed: Sequence[bytes] = (),
    bundle_witnessed: Sequence[bytes] = (),
    thorough: bool = False,
) -> VerifyReport:
    """Verify a whole log; see the module docstring for what is checked.

    ``witnessed`` are checkpoint notes the auditor obtained elsewhere (from a witness): each
    must carry a verifying cosignature by a registered witness, and the log must extend it.
    ``bundle_witnessed`` are the notes the bundle itself carries: checked the same way, but
    one without a registered cosignature is simply not counted.
    """
    found = scan(entries, registry=registry, thorough=thorough)
    findings = list(found.findings)
    expected, fork = _signed_leaves(found.checkpoints, findings)
    leaves = _Leaves(found, findings, thorough=thorough)
    tamper = classify_tampering(expected, leaves.hashes)
    if not tamper.intact:
        assert tamper.first_bad_index is not None  # noqa: S101 - set whenever not intact
        index = leaves.record_at(tamper.first_bad_index)
        detail = f"the log was {tamper.kind} here (leaf {tamper.first_bad_index} of the signed log)"
        findings.append(Finding(str(tamper.kind), index, detail))
        leaves.distrust_from(expected)
    elif fork is not None:
        findings.append(fork)
    leaves.flag_unlisted(len(expected), findings)
    latest = max((c for c, _ in found.checkpoints), key=lambda c: c.size, default=None)
    witnesses = _witnessed(
        leaves.hashes,
        latest,
        registry=registry,
        given=witnessed,
        bundled=bundle_witnessed,
        findings=findings,
        after_last_leaf=leaves.record_at(len(leaves.hashes)),
    )
    return VerifyReport(
        records=len(found.hashes),
        checkpoints=len(found.checkpoints),
        signed_size=len(expected),
        tamper=tamper,
        findings=tuple(findings),
        latest=latest,
        witnesses=witnesses,
        unauthenticated=frozenset(leaves.unauthenticated),
        leaf_records=leaves.records,
    )


class _Leaves:
    """Which records are leaves of the log, in order, and which are not to be trusted."""

    def __init__(self, found: Scan, findings: list[Finding], *, thorough: bool) -> None:
        refused_at: dict[int, Refusal] = {}
        for _, record in found.checkpoints:
            refused_at.update(record.refused)
        self.found = found
        self.unauthenticated: set[int] = set()
        if not (refused_at or found.refused or found.damaged):
            # The common case, an untouched log: every record is a leaf, in place.
            self.hashes: list[bytes] = found.hashes
            self.records: Sequence[int] = range(len(found.hashes))
            return
        self.hashes = []
        records: array.array[int] = array.array("q")
        self.records = records
        damaged = set(found.damaged)
        for index, offset in enumerate(found.offsets):
            reason = refused_at.get(offset)
            own = found.refused.get(index)
            if index in damaged:
                # Kept in place as a leaf: its hash cannot match, so tampering is named here.
                self.unauthenticated.add(index)
                findings.append(Finding("invalid_record", index, "the bundle line is damaged"))
                self.hashes.append(found.hashes[index])
                records.append(index)
            elif reason is not None:
                self._exclude(index, findings, f"offset {offset}: refused ({reason})")
                if thorough and own is None:
                    findings.append(
                        Finding("bad_checkpoint", index, "refused a record that verifies")
                    )
            elif own is not None and offset >= found.through:
                detail = f"offset {offset}: not a valid gateway record ({own.reason}): {own.detail}"
                self._exclude(index, findings, detail)
            else:
                if own is not None:  # covered by a checkpoint, yet it does not verify
                    self.unauthenticated.add(index)
                    detail = f"offset {offset}: covered, yet {own.reason}: {own.detail}"
                    findings.append(Finding("invalid_record", index, detail))
                self.hashes.append(found.hashes[index])
                records.append(index)

    def _exclude(self, index: int, findings: list[Finding], detail: str) -> None:
        self.unauthenticated.add(index)
        findings.append(Finding("invalid_record", index, detail))

    def record_at(self, leaf: int) -> int:
        """The record index of leaf ``leaf`` (past the last leaf: one past the last record)."""
        return self.records[leaf] if leaf < len(self.records) else len(self.found.hashes)

    def distrust_from(self, expected: Sequence[bytes]) -> None:
        """After tampering, every leaf not equal to the signed one at its place is suspect."""
        for leaf, index in enumerate(self.records):
            if leaf >= len(expected) or self.hashes[leaf] != expected[leaf]:
                self.unauthenticated.add(index)

    def flag_unlisted(self, signed: int, findings: list[Finding]) -> None:
        """A leaf past the signed ones at an offset the checkpoints already judged was never
        listed by them: it was put there afterwards."""
        for leaf in range(signed, len(self.records)):
            index = self.records[leaf]
            offset = self.found.offsets[index]
            if offset < self.found.through:
                self.unauthenticated.add(index)
                detail = f"offset {offset} was judged by a checkpoint that does not list it"
                findings.append(Finding(str(TamperKind.FORKED), index, detail))
                return


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
                fork = Finding("forked", None, f"two signed histories differ at leaf {index}")
    log, signed = MerkleLog(), 0
    expected: list[bytes] = []
    for size in sorted(roots):
        for index in range(log.size, size):
            signed_leaf = listed.get(index)
            if signed_leaf is None:
                detail = f"no checkpoint lists leaf {index}: one is missing"
                findings.append(Finding("bad_checkpoint", None, detail))
                return expected[:signed], fork
            expected.append(signed_leaf)
            log.append(signed_leaf)
        if log.root() != roots[size]:
            detail = f"the leaves listed up to size {size} miss its root"
            findings.append(Finding("bad_checkpoint", None, detail))
            return expected[:signed], fork
        signed = size
    return expected, fork


def _witnessed(
    observed: Sequence[bytes],
    latest: Checkpoint | None,
    *,
    registry: Registry,
    given: Sequence[bytes],
    bundled: Sequence[bytes],
    findings: list[Finding],
    after_last_leaf: int,
) -> tuple[str, ...]:
    """Check witnessed notes against the log's leaves; the witnesses of ``latest``."""
    notes: list[tuple[Checkpoint, tuple[str, ...]]] = []
    for note, from_auditor in [*((n, True) for n in given), *((n, False) for n in bundled)]:
        where = "a witnessed checkpoint" if from_auditor else "a witnessed checkpoint in the bundle"
        try:
            checkpoint = open_registered_checkpoint(note, registry)
            names = tuple(c.name for c in registered_cosigners(note, registry))
        except errors.AuditError as exc:
            findings.append(Finding("bad_checkpoint", None, f"{where}: {exc.diagnostics()}"))
            continue
        if from_auditor and not names:
            detail = f"{where} carries no cosignature by a registered witness"
            findings.append(Finding("bad_checkpoint", None, detail))
            continue
        notes.append((checkpoint, names))
    roots = _roots_at(observed, {c.size for c, _ in notes if c.size <= len(observed)})
    for checkpoint, _ in notes:
        if checkpoint.size > len(observed):
            detail = (
                f"a witnessed checkpoint signs {checkpoint.size} records, the log has "
                f"{len(observed)}: its newest entries are missing"
            )
            findings.append(Finding(str(TamperKind.TRUNCATED), after_last_leaf, detail))
        elif roots[checkpoint.size] != checkpoint.root:
            detail = f"the first {checkpoint.size} records do not match a witnessed checkpoint"
            findings.append(Finding(str(TamperKind.FORKED), None, detail))
    if latest is None:
        return ()
    return tuple(
        sorted(
            {
                name
                for checkpoint, names in notes
                if (checkpoint.size, checkpoint.root) == (latest.size, latest.root)
                for name in names
            }
        )
    )


def _roots_at(leaves: Sequence[bytes], sizes: set[int]) -> dict[int, bytes]:
    """The tree head at each of ``sizes``, in one pass over ``leaves``."""
    log, roots = MerkleLog(), {}
    for size in sorted(sizes):
        log.extend(leaves[log.size : size])
        roots[size] = log.root()
    return roots
