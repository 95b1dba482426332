"""What the audit topic holds: signed audit records (the Merkle log's leaves), checkpoint
records, and whatever else anyone wrote there, which no checkpoint covers.

A checkpoint record travels on the same topic as the records it covers, so one dump of the
topic is a complete, self-verifying bundle. Its value is canonical JSON (sorted keys, no
whitespace), version 2::

    {"from":F,"kind":"checkpoint","leaves":"<base64>","note":"<signed note>",
     "refused":[[O,"<reason>"],...],"through":T,"v":2}

- ``note``: the gateway-signed C2SP checkpoint note (:mod:`broker.audit.checkpoint`);
- ``leaves``: the 32-byte leaf hashes of leaves ``F .. size-1``, concatenated. Not trusted
  on their own: a verifier recomputes the tree head over them and accepts them only if it is
  the signed root, and then knows exactly which records were signed;
- ``refused``: the topic offsets, ascending, of the records in this checkpoint's range that
  the checkpointer refused to cover (not a valid gateway record), each with its reason;
- ``through``: the topic offset after the last record the checkpointer had judged: every
  record before it is a leaf under this or an earlier root, a checkpoint, or refused.

Canonical JSON puts ``"from"`` first and an audit record starts with ``{"accord_digest"``, so
the first bytes tell the kinds apart without parsing. Version 1 records (no ``refused`` or
``through``, a note in the project's earlier format) are not accepted: docs/AUDIT.md,
"Migration".
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
from collections.abc import Sequence
from typing import Any

from broker import errors, limits, strictjson
from broker.audit import HASH_SIZE

__all__ = [
    "CHECKPOINT_PREFIX",
    "CHECKPOINT_RECORD_VERSION",
    "MAX_ENTRIES_PER_CHECKPOINT",
    "CheckpointRecord",
    "Refusal",
    "encode_checkpoint_record",
    "is_checkpoint_record",
    "parse_checkpoint_record",
]

CHECKPOINT_PREFIX = b'{"from":'
CHECKPOINT_RECORD_VERSION = 2
#: leaves plus refusals per record: keeps it under Kafka's default 1 MiB message limit
MAX_ENTRIES_PER_CHECKPOINT = 4096
_MAX_RECORD = limits.CHECKPOINT_RECORD_MAX_BYTES
_FIELDS = frozenset({"from", "kind", "leaves", "note", "refused", "through", "v"})


class Refusal(enum.StrEnum):
    """Why a record on the audit topic is not covered as a valid entry (docs/AUDIT.md)."""

    #: not an audit record in its one canonical form (including no value, or not UTF-8)
    MALFORMED = "malformed"
    #: names no gateway key registered and valid at its ``decided_at``
    UNKNOWN_KEY = "unknown_key"
    #: the gateway signature does not verify over its bytes
    BAD_SIGNATURE = "bad_signature"
    #: starts like a checkpoint record but is not one signed by a registered gateway key
    BAD_CHECKPOINT = "bad_checkpoint"


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A checkpoint record as read from the topic (its note not yet verified)."""

    note: bytes
    first: int
    leaves: tuple[bytes, ...]
    refused: tuple[tuple[int, Refusal], ...]
    through: int


def is_checkpoint_record(value: bytes | None) -> bool:
    """Whether a topic value claims to be a checkpoint record (otherwise it is judged as an
    audit record)."""
    return value is not None and value.startswith(CHECKPOINT_PREFIX)


def encode_checkpoint_record(
    note: bytes,
    *,
    first: int,
    leaves: Sequence[bytes],
    refused: Sequence[tuple[int, Refusal]],
    through: int,
) -> bytes:
    """The canonical JSON value of a checkpoint record."""
    if len(leaves) + len(refused) > MAX_ENTRIES_PER_CHECKPOINT:
        raise errors.UsageError(
            f"a checkpoint record lists at most {MAX_ENTRIES_PER_CHECKPOINT} leaves and refusals"
        )
    document = {
        "from": first,
        "kind": "checkpoint",
        "leaves": base64.b64encode(b"".join(leaves)).decode("ascii"),
        "note": note.decode("utf-8"),
        "refused": [[offset, str(reason)] for offset, reason in refused],
        "through": through,
        "v": CHECKPOINT_RECORD_VERSION,
    }
    return strictjson.canonical(document, ascii_only=False, allow_floats=False)


def parse_checkpoint_record(value: bytes) -> CheckpointRecord:
    """Parse a checkpoint record's value; anything but the exact canonical form is AuditError."""
    if len(value) > _MAX_RECORD:
        raise errors.AuditError(f"checkpoint record is larger than {_MAX_RECORD} bytes")
    try:
        document = json.loads(value.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise errors.AuditError("checkpoint record is not JSON") from exc
    if not isinstance(document, dict) or set(document) != _FIELDS:
        if isinstance(document, dict) and document.get("v") == 1:
            raise errors.AuditError("checkpoint record version 1 is no longer accepted")
        raise errors.AuditError("checkpoint record has the wrong fields")
    if document["v"] != CHECKPOINT_RECORD_VERSION or document["kind"] != "checkpoint":
        raise errors.AuditError(f"checkpoint record is not version {CHECKPOINT_RECORD_VERSION}")
    first, through = document["from"], document["through"]
    if not _is_index(first) or not _is_index(through):
        raise errors.AuditError("checkpoint record 'from' and 'through' are not indices")
    leaves = _leaves(document["leaves"])
    refused = _refused(document["refused"], through)
    if len(leaves) + len(refused) > MAX_ENTRIES_PER_CHECKPOINT:
        raise errors.AuditError("checkpoint record lists too many leaves and refusals")
    note = document["note"]
    if not isinstance(note, str):
        raise errors.AuditError("checkpoint record 'note' is a string")
    try:
        note_bytes = note.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate such as "\ud800" has no UTF-8 form
        raise errors.AuditError("checkpoint record note is not valid Unicode") from exc
    record = CheckpointRecord(note_bytes, first, leaves, refused, through)
    encoded = encode_checkpoint_record(
        note_bytes, first=first, leaves=leaves, refused=refused, through=through
    )
    if encoded != value:
        raise errors.AuditError("checkpoint record is not in canonical form")
    return record


def _is_index(value: object) -> bool:
    return type(value) is int and 0 <= value < 1 << 63


def _leaves(text: object) -> tuple[bytes, ...]:
    if not isinstance(text, str):
        raise errors.AuditError("checkpoint record 'leaves' is a string")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or text that is not even ASCII
        raise errors.AuditError("checkpoint record leaves are not base64") from exc
    if len(raw) % HASH_SIZE:
        raise errors.AuditError("checkpoint record leaves are not whole hashes")
    return tuple(raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE))


def _refused(items: Any, through: int) -> tuple[tuple[int, Refusal], ...]:
    if not isinstance(items, list):
        raise errors.AuditError("checkpoint record 'refused' is a list")
    refused: list[tuple[int, Refusal]] = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 2 and _is_index(item[0])):
            raise errors.AuditError("a refusal is [offset, reason]")
        try:
            reason = Refusal(item[1])
        except ValueError:
            raise errors.AuditError(f"unknown refusal reason {item[1]!r}") from None
        if (refused and item[0] <= refused[-1][0]) or item[0] >= through:
            raise errors.AuditError("refused offsets must ascend and come before 'through'")
        refused.append((item[0], reason))
    return tuple(refused)
