"""Where a checkpointer's last checkpoint left the audit log, kept across restarts, so that a
restarted checkpointer resumes there instead of reading the log again from its first record
(which took time and memory in proportion to the whole log on every start).

One JSON file beside the gateway's store, ``audit-checkpointer.json``::

    {"edge": ["<base64>", ...], "first": [N, "<hex>"], "note": "<note>", "offset": N,
     "through": N, "v": 1}

``note`` is the last checkpoint this gateway wrote, ``edge`` the right edge of its tree,
``through`` the audit-topic offset after the last record it covers or lists as refused,
``offset`` where that checkpoint record itself is on the topic, and ``first`` the offset and
SHA-256 of the first record of the log as it was read. The file is written atomically after
the checkpoint is acknowledged. It is checked when read (the note must carry a registered
gateway key's signature and the edge must give its root) and again against the topic: the
log's first record must still be the one in ``first`` (a recreated topic is another log), and
the resumed checkpointer reads from ``through`` and must find at ``offset`` that very
checkpoint record, listing through ``through``. Anything else (an edited file, a topic
recreated, a file from another log) drops the saved position, and the log is read from its
first record as before: a wrong position can cost time, never a wrong root.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

from broker import errors, merkle
from broker.audit import Checkpoint, LogView
from broker.bounded import read_bounded
from broker.durable import replace_durably
from broker.keys import Registry
from broker.ledger.registered import open_registered_checkpoint

__all__ = ["POSITION_FILE", "PositionMismatch", "SavedPosition"]

#: the file's name, in the directory of the gateway's store
POSITION_FILE = "audit-checkpointer.json"
_VERSION = 1
_MAX_BYTES = 64 * 1024


class PositionMismatch(errors.AuditError):
    """The audit topic does not hold the saved checkpoint where the position says: read the
    log from its first record instead."""


@dataclasses.dataclass(frozen=True, slots=True)
class SavedPosition:
    """A checkpointer's last checkpoint: its note, its tree's right edge, the offset after the
    last record it judged, and the offset of the checkpoint record itself."""

    checkpoint: Checkpoint
    note: bytes
    edge: tuple[bytes, ...]
    through: int
    offset: int
    first: tuple[int, bytes]

    def log(self) -> merkle.MerkleLog:
        """The Merkle log as it stood at the checkpoint, to append to."""
        return merkle.MerkleLog.resume(size=self.checkpoint.size, right_edge=self.edge)

    def to_bytes(self) -> bytes:
        """The file's bytes."""
        document = {
            "edge": [base64.b64encode(h).decode("ascii") for h in self.edge],
            "first": [self.first[0], self.first[1].hex()],
            "note": self.note.decode("utf-8"),
            "offset": self.offset,
            "through": self.through,
            "v": _VERSION,
        }
        return json.dumps(document, sort_keys=True).encode("utf-8") + b"\n"

    def save(self, path: Path) -> None:
        """Write the file atomically and durably; UsageError if it cannot be written."""
        try:
            replace_durably(path, self.to_bytes())
        except OSError as exc:
            raise errors.UsageError(
                f"cannot write the checkpointer's position {path}: {exc.strerror}"
            ) from exc

    @classmethod
    def load(cls, path: Path, *, origin: str, registry: Registry) -> SavedPosition | None:
        """The position saved at ``path`` for the log ``origin``, verified; None if there is
        none. AuditError if the file is there but does not verify."""
        if not path.exists():
            return None
        data = read_bounded(
            path,
            limit=_MAX_BYTES,
            what="the checkpointer's position",
            too_large=errors.AuditError,
            unreadable=errors.AuditError,
        )
        try:
            return cls._parse(data, origin=origin, registry=registry)
        # ValueError covers bad JSON, bad base64 (binascii.Error) and text with no UTF-8 form.
        except (errors.BrokerError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise errors.AuditError(
                f"the checkpointer's position {path} does not verify ({exc})"
            ) from exc

    @classmethod
    def _parse(cls, data: bytes, *, origin: str, registry: Registry) -> SavedPosition:
        document: dict[str, Any] = json.loads(data)
        if document.get("v") != _VERSION:
            raise ValueError(f"not version {_VERSION}")
        through, offset = document["through"], document["offset"]
        if type(through) is not int or type(offset) is not int or not 0 < through <= offset:
            raise ValueError("through and offset are not the offsets of a checkpoint")
        first_offset, first_digest = document["first"]
        if type(first_offset) is not int or not 0 <= first_offset < through:
            raise ValueError("first is not the offset of a record before through")
        first = (first_offset, bytes.fromhex(first_digest))
        if len(first[1]) != 32:
            raise ValueError("first does not hold a SHA-256 digest")
        note = document["note"].encode("utf-8")
        checkpoint = open_registered_checkpoint(note, registry)
        if checkpoint.origin != origin:
            raise ValueError(f"it is for log {checkpoint.origin!r}")
        edge = tuple(base64.b64decode(h, validate=True) for h in document["edge"])
        LogView.resume(checkpoint, right_edge=edge)  # the edge must give the checkpoint's root
        return cls(checkpoint, note, edge, through, offset, first)
