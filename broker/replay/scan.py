"""One pass over a bundle's entries: leaf hashes, verified checkpoints, and the records no
checkpoint has judged, judged here exactly as the checkpointer would.

:func:`scan` keeps 32 bytes and an offset per record, and a record's bytes only while it waits
for a checkpoint that judges its offset (a bounded number: past the bound it is judged on the
spot). Checkpoint records are verified as they come (one signature each, with a gateway key
registered at the checkpoint's time); the checkpointer's verdict on each record they cover
(a leaf under the signed root, or refused by offset) is what the default verification relies
on, so a covered record costs one SHA-256 and nothing else.
"""

from __future__ import annotations

import array
import dataclasses
import hashlib
from collections.abc import Iterable

from broker.audit import Checkpoint
from broker.keys import Registry
from broker.ledger import (
    CHECKPOINT_PREFIX,
    CheckpointRecord,
    Refused,
    SeenCheckpoint,
    judge_record,
)
from broker.replay.bundle import Entry

__all__ = ["Finding", "Scan", "scan"]

#: records held while waiting for a checkpoint; gateways checkpoint far more often
_MAX_PENDING = 16_384
#: SHA-256 already fed the leaf prefix 0x00 (RFC 6962): the same as broker.audit.leaf_hash
_LEAF_PREFIX = hashlib.sha256(b"\x00")


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """One problem: its kind (a TamperKind value, ``invalid_record`` or ``bad_checkpoint``),
    the first record index it concerns (None when it concerns no single record) and why.

    A record index counts the bundle's audit records (every entry but checkpoint records)
    from 0 in offset order."""

    kind: str
    index: int | None
    detail: str

    def describe(self) -> str:
        """One line for the auditor."""
        where = "" if self.index is None else f" at index {self.index}"
        return f"{self.kind}{where}: {self.detail}"


@dataclasses.dataclass
class Scan:
    """What one pass over the entries found, by record index."""

    #: the leaf hash of every record
    hashes: list[bytes] = dataclasses.field(default_factory=list)
    #: the topic offset of every record
    offsets: array.array[int] = dataclasses.field(default_factory=lambda: array.array("q"))
    #: records whose bundle line is damaged, ascending
    damaged: list[int] = dataclasses.field(default_factory=list)
    #: verified checkpoints with their records
    checkpoints: list[tuple[Checkpoint, CheckpointRecord]] = dataclasses.field(default_factory=list)
    #: the records judged here that are not valid gateway records
    refused: dict[int, Refused] = dataclasses.field(default_factory=dict)
    #: whether every record was judged here (``thorough``), not only the unjudged ones
    judged_all: bool = False
    #: the offset after the last record a verified checkpoint judged
    through: int = 0
    findings: list[Finding] = dataclasses.field(default_factory=list)


def scan(entries: Iterable[Entry], *, registry: Registry, thorough: bool = False) -> Scan:
    """Read every entry once; see the module docstring. With ``thorough``, every record is
    judged here, including those a checkpoint already covers."""
    found = Scan(judged_all=thorough)
    pending: list[tuple[int, int, bytes]] = []  # (index, offset, value) awaiting a checkpoint
    # Bound once: this loop runs once per record, and a covered record costs one SHA-256.
    add_hash, add_offset, leaf_prefix = found.hashes.append, found.offsets.append, _LEAF_PREFIX
    for entry in entries:
        value = entry.value
        if not entry.damaged and value.startswith(CHECKPOINT_PREFIX):
            judged = judge_record(value, registry=registry)
            if isinstance(judged, SeenCheckpoint):
                found.checkpoints.append((judged.checkpoint, judged.record))
                if judged.record.through > found.through:
                    found.through = judged.record.through
                    pending = [item for item in pending if item[1] >= found.through]
            else:
                detail = judged.detail if isinstance(judged, Refused) else "not a checkpoint"
                where = f"checkpoint at offset {entry.offset}"
                found.findings.append(Finding("bad_checkpoint", None, f"{where}: {detail}"))
            continue
        index = len(found.hashes)
        hasher = leaf_prefix.copy()
        hasher.update(value)
        add_hash(hasher.digest())
        add_offset(entry.offset)
        if entry.damaged:
            found.damaged.append(index)
        elif thorough:
            _judge(found, registry, index, value)
        elif entry.offset >= found.through:
            pending.append((index, entry.offset, value))
            if len(pending) >= _MAX_PENDING:
                for item in pending:
                    _judge(found, registry, item[0], item[2])
                pending = []
    for index, _, value in pending:
        _judge(found, registry, index, value)
    return found


def _judge(found: Scan, registry: Registry, index: int, value: bytes) -> None:
    judged = judge_record(value, registry=registry)
    if isinstance(judged, Refused):
        found.refused[index] = judged
