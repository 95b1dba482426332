"""What the audit topic holds: signed audit records (the Merkle log's leaves) and checkpoints.

A checkpoint travels on the same topic as the records it covers, so one dump of the topic is a
complete, self-verifying bundle. Its value is canonical JSON (sorted keys, no whitespace)::

    {"from":F,"kind":"checkpoint","leaves":"<base64>","note":"<signed note>","v":1}

``note`` is the gateway-signed checkpoint note of :mod:`broker.audit.checkpoint`; ``leaves`` is
the concatenation of the 32-byte leaf hashes of records ``F .. size-1``. The list is not
trusted on its own: a verifier recomputes the tree head over it and accepts it only if it
equals the signed root, and then knows exactly which leaf hashes were signed, so a damaged
copy can be compared entry by entry and its first bad index named.

Canonical JSON puts ``"from"`` first, and an audit record starts with ``{"accord_digest"``, so
the first bytes tell the two kinds apart without parsing; every other value is a leaf.
"""

from __future__ import annotations

import base64
import dataclasses
import json

from broker import errors, strictjson
from broker.audit import HASH_SIZE, Checkpoint, verify_log_signature
from broker.crypto import VerifyKey

__all__ = [
    "CHECKPOINT_PREFIX",
    "MAX_LEAVES_PER_CHECKPOINT",
    "CheckpointRecord",
    "encode_checkpoint_record",
    "is_checkpoint_record",
    "parse_checkpoint_record",
]

CHECKPOINT_PREFIX = b'{"from":'
#: keeps a checkpoint record under Kafka's default 1 MiB message limit (44 base64 bytes a leaf)
MAX_LEAVES_PER_CHECKPOINT = 4096
_MAX_RECORD = 512 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A checkpoint record as read from the topic: the note and the leaf hashes it lists."""

    note: bytes
    first: int
    leaves: tuple[bytes, ...]

    def checkpoint(self, *, gateway_keys: list[VerifyKey]) -> Checkpoint:
        """The checkpoint once a trusted gateway signature over the note verifies."""
        checkpoint = verify_log_signature(self.note, gateway_keys=gateway_keys)
        if self.first + len(self.leaves) != checkpoint.size:
            raise errors.AuditError(
                f"checkpoint of size {checkpoint.size} lists leaves {self.first} to "
                f"{self.first + len(self.leaves) - 1}, not up to its size"
            )
        return checkpoint


def is_checkpoint_record(value: bytes) -> bool:
    """Whether a topic value is a checkpoint record (otherwise it is a leaf)."""
    return value.startswith(CHECKPOINT_PREFIX)


def encode_checkpoint_record(note: bytes, *, first: int, leaves: list[bytes]) -> bytes:
    """The canonical JSON value of a checkpoint record."""
    if len(leaves) > MAX_LEAVES_PER_CHECKPOINT:
        raise errors.UsageError(
            f"a checkpoint record lists at most {MAX_LEAVES_PER_CHECKPOINT} leaves"
        )
    document = {
        "from": first,
        "kind": "checkpoint",
        "leaves": base64.b64encode(b"".join(leaves)).decode("ascii"),
        "note": note.decode("utf-8"),
        "v": 1,
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
    if not isinstance(document, dict) or set(document) != {"from", "kind", "leaves", "note", "v"}:
        raise errors.AuditError("checkpoint record has the wrong fields")
    first, leaves_b64, note = document["from"], document["leaves"], document["note"]
    if document["v"] != 1 or document["kind"] != "checkpoint":
        raise errors.AuditError("checkpoint record is not version 1")
    if type(first) is not int or first < 0:
        raise errors.AuditError("checkpoint record 'from' is not a leaf index")
    if not isinstance(leaves_b64, str) or not isinstance(note, str):
        raise errors.AuditError("checkpoint record 'leaves' and 'note' are strings")
    try:
        raw = base64.b64decode(leaves_b64, validate=True)
    except ValueError as exc:  # binascii.Error, or text that is not even ASCII
        raise errors.AuditError("checkpoint record leaves are not base64") from exc
    if len(raw) % HASH_SIZE:
        raise errors.AuditError("checkpoint record leaves are not whole hashes")
    leaves = tuple(raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE))
    if len(leaves) > MAX_LEAVES_PER_CHECKPOINT:
        raise errors.AuditError("checkpoint record lists too many leaves")
    try:
        note_bytes = note.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate such as "\ud800" has no UTF-8 form
        raise errors.AuditError("checkpoint record note is not valid Unicode") from exc
    record = CheckpointRecord(note=note_bytes, first=first, leaves=leaves)
    if encode_checkpoint_record(record.note, first=first, leaves=list(leaves)) != value:
        raise errors.AuditError("checkpoint record is not in canonical form")
    return record
