"""The one judgment of a record on the audit topic: a leaf, a checkpoint, or refused.

Anyone who can write the audit topic can put anything on it. Only what a registered gateway
signed becomes a leaf of the Merkle log:

- an audit record that parses strictly and whose gateway signature verifies with a gateway
  key the registry lists as valid at its ``decided_at`` is :class:`Admitted` (its leaf hash);
- a value that starts like a checkpoint record and is one, with a note signed by a gateway
  key registered at its time, is a :class:`SeenCheckpoint` (never a leaf);
- everything else, whatever its bytes (none at all, not UTF-8, garbage, a forgery, a record
  signed by a stranger), is :class:`Refused` with a :class:`~broker.ledger.entries.Refusal`.

The checkpointer judges every record this way before covering it, and an auditor's verify
judges the records no checkpoint has judged yet the same way, so both always agree.
"""

from __future__ import annotations

import dataclasses

from broker import errors
from broker.audit import Checkpoint, leaf_hash
from broker.keys import Registry
from broker.ledger.entries import (
    CheckpointRecord,
    Refusal,
    is_checkpoint_record,
    parse_checkpoint_record,
)
from broker.ledger.registered import open_registered_checkpoint
from broker.pipeline.records import verify_audit_record

__all__ = ["Admitted", "Judgment", "Refused", "SeenCheckpoint", "judge_record"]


@dataclasses.dataclass(frozen=True, slots=True)
class Admitted:
    """A valid gateway audit record: its leaf hash joins the log."""

    leaf: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class SeenCheckpoint:
    """A checkpoint record whose note a registered gateway key signed."""

    checkpoint: Checkpoint
    record: CheckpointRecord


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """Not a valid gateway record: never covered as valid. ``detail`` says why, for logs."""

    reason: Refusal
    detail: str


Judgment = Admitted | SeenCheckpoint | Refused


def judge_record(value: bytes | None, *, registry: Registry) -> Judgment:
    """Judge one topic value (None: a record with no value). Never raises on any bytes."""
    if value is None:
        return Refused(Refusal.MALFORMED, "the record has no value")
    if is_checkpoint_record(value):
        return _judge_checkpoint(value, registry)
    try:
        verify_audit_record(value, registry=registry)
    except errors.KeyTrustError as exc:
        return Refused(Refusal.UNKNOWN_KEY, exc.diagnostics())
    except errors.VerificationError as exc:
        return Refused(Refusal.BAD_SIGNATURE, exc.diagnostics())
    except errors.BrokerError as exc:
        return Refused(Refusal.MALFORMED, exc.diagnostics())
    except Exception as exc:  # noqa: BLE001 - any bytes at all: an unreadable record is refused, never a crash
        return Refused(Refusal.MALFORMED, f"unreadable ({type(exc).__name__})")
    return Admitted(leaf_hash(value))


def _judge_checkpoint(value: bytes, registry: Registry) -> SeenCheckpoint | Refused:
    try:
        record = parse_checkpoint_record(value)
        checkpoint = open_registered_checkpoint(record.note, registry)
    except errors.BrokerError as exc:
        return Refused(Refusal.BAD_CHECKPOINT, exc.diagnostics())
    except Exception as exc:  # noqa: BLE001 - as above: refused, never a crash
        return Refused(Refusal.BAD_CHECKPOINT, f"unreadable ({type(exc).__name__})")
    if record.first + len(record.leaves) != checkpoint.size:
        return Refused(Refusal.BAD_CHECKPOINT, "its listed leaves do not end at its size")
    return SeenCheckpoint(checkpoint, record)
