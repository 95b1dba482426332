"""Offline inclusion proofs: one message's audit records, proven in a signed checkpoint.

A proof file is JSON::

    {"checkpoint": "<signed note>", "format": "xb-inclusion-proof", "v": 2,
     "entries": [{"index": 7, "record": "<audit record JSON>", "proof": ["<base64>", ...]}]}

Whoever holds it and the partner registry can check, without the log, that each record was
signed by a registered gateway and is leaf ``index`` of the tree the checkpoint signs (a C2SP
checkpoint note; version 1 files carried the project's earlier note format and are refused).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import Any

from broker import errors
from broker.audit import Checkpoint, inclusion_proof, leaf_hash, read_checkpoint, verify_inclusion
from broker.keys import Registry
from broker.ledger import is_checkpoint_record, open_registered_checkpoint, parse_checkpoint_record
from broker.pipeline.records import AuditRecord, parse_audit_record, verify_audit_record
from broker.replay.bundle import Entry
from broker.replay.verify import verify_entries

__all__ = ["PROOF_FORMAT", "ProvenRecord", "prove_message", "verify_proof"]

PROOF_FORMAT = "xb-inclusion-proof"
PROOF_VERSION = 2
_MAX_PROOF_FILE = 16 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ProvenRecord:
    """An audit record proven to be leaf ``index`` of the log signed by ``checkpoint``."""

    index: int
    record: AuditRecord
    checkpoint: Checkpoint

    def __bool__(self) -> bool:
        raise TypeError("a ProvenRecord has no truth value; verify_proof() raises on failure")


def prove_message(
    entries: Callable[[], Iterable[Entry]], *, message_id: str, registry: Registry
) -> bytes:
    """The proof file for every audit record of ``message_id``, against the newest checkpoint
    that covers them all. Raises UsageError if no valid record has that id, and AuditError if
    the log does not verify (a proof out of a damaged log would prove nothing).

    ``entries`` opens the log afresh: it is read twice (verification, then the leaves and the
    matching records), so only 32 bytes per record are held.
    """
    report = verify_entries(entries(), registry=registry)
    problem = report.first_problem
    if problem is not None:
        raise errors.AuditError(f"the log does not verify: {problem.describe()}")
    leaves: list[bytes] = []
    matching: list[tuple[int, bytes]] = []
    index = 0
    for entry in entries():
        if not entry.damaged and is_checkpoint_record(entry.value):
            continue
        leaf = report.leaf_index(index)
        index += 1
        if leaf is None:
            continue
        leaves.append(leaf_hash(entry.value))
        if _message_id(entry.value) == message_id:
            matching.append((leaf, entry.value))
    if not matching:
        raise errors.UsageError(f"no audit record for message {message_id} in the log")
    checkpoint = report.latest
    if checkpoint is None or checkpoint.size <= matching[-1][0]:
        raise errors.AuditError(
            f"no checkpoint covers message {message_id} yet (leaf {matching[-1][0]})"
        )
    note = next(note for c, note in _notes(entries()) if c == checkpoint)
    proofs = [
        {
            "index": i,
            "proof": [
                base64.b64encode(h).decode("ascii")
                for h in inclusion_proof(leaves, i, checkpoint.size)
            ],
            "record": value.decode("utf-8"),
        }
        for i, value in matching
    ]
    document = {
        "checkpoint": note.decode("utf-8"),
        "entries": proofs,
        "format": PROOF_FORMAT,
        "v": PROOF_VERSION,
    }
    return json.dumps(document, sort_keys=True, indent=1).encode("utf-8") + b"\n"


def verify_proof(data: bytes, *, registry: Registry) -> list[ProvenRecord]:
    """Check a proof file: the checkpoint's gateway signature, each record's gateway signature,
    and each inclusion proof against the signed root. Raises AuditError on any failure."""
    if len(data) > _MAX_PROOF_FILE:
        raise errors.AuditError("proof file is too large")
    try:
        document: Any = json.loads(data)
        if document.get("format") != PROOF_FORMAT or document.get("v") != PROOF_VERSION:
            raise errors.AuditError(f"not a version {PROOF_VERSION} inclusion proof")
        note = str(document["checkpoint"]).encode("utf-8")
        items = [
            (int(e["index"]), str(e["record"]).encode("utf-8"), [str(p) for p in e["proof"]])
            for e in document["entries"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise errors.AuditError(f"the proof file is malformed ({exc})") from exc
    checkpoint = open_registered_checkpoint(note, registry)
    proven: list[ProvenRecord] = []
    for index, value, path in items:
        try:
            record = verify_audit_record(value, registry=registry)
            hashes = [base64.b64decode(p, validate=True) for p in path]
        except (errors.IntegrityError, ValueError) as exc:  # ValueError: bad base64
            raise errors.AuditError(f"record {index} in the proof does not verify") from exc
        verify_inclusion(leaf_hash(value), index, checkpoint.size, hashes, checkpoint.root)
        proven.append(ProvenRecord(index, record, checkpoint))
    if not proven:
        raise errors.AuditError("the proof file proves no record")
    return proven


def _message_id(value: bytes) -> str | None:
    try:
        return parse_audit_record(value).message_id
    except errors.SchemaError:
        return None


def _notes(entries: Iterable[Entry]) -> Iterable[tuple[Checkpoint, bytes]]:
    """Every checkpoint note in the log, as read (the caller knows which ones verified)."""
    for entry in entries:
        if entry.damaged or not is_checkpoint_record(entry.value):
            continue
        try:
            record = parse_checkpoint_record(entry.value)
            checkpoint, _ = read_checkpoint(record.note)
        except errors.AuditError:
            continue
        yield checkpoint, record.note
