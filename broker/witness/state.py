"""What a witness keeps across restarts: the newest checkpoint it proved consistent, the right
edge of that tree, where it is in the audit topic, and the last note it cosigned.

One JSON file per log in the state directory, ``<origin with / as _>.json``::

    {"cosigned": "<note>"|null, "edge": ["<base64>", ...], "note": "<note>"|null,
     "offset": N, "published": true, "v": 1}

``note`` is the gateway-signed checkpoint of the view (null before the first), ``edge`` its
tree's right edge, ``offset`` the audit-topic offset to read next, ``cosigned`` the last note
this witness cosigned and ``published`` whether it reached the witness topic. The file is
written atomically (a temporary file, fsync, rename) before a cosignature is published, as
c2sp.org/tlog-witness asks, and re-verified when read: the note must carry a registered
gateway's signature and the edge must give its root, so an edited state file stops the
witness instead of making it cosign anything.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib
import re
from typing import Any

from broker import errors
from broker.audit import LogView, parse_note
from broker.durable import replace_durably
from broker.keys import Registry
from broker.ledger import open_registered_checkpoint

__all__ = ["WitnessState"]

_VERSION = 1
_MAX_STATE = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclasses.dataclass
class WitnessState:
    """A witness's memory of one log (see the module docstring)."""

    view: LogView
    note: bytes | None = None
    offset: int = 0
    cosigned: bytes | None = None
    published: bool = True

    @staticmethod
    def path(directory: pathlib.Path, origin: str) -> pathlib.Path:
        """The state file of ``origin`` in ``directory``."""
        return directory / f"{_UNSAFE.sub('_', origin)}.json"

    @classmethod
    def load(cls, directory: pathlib.Path, *, origin: str, registry: Registry) -> WitnessState:
        """The saved state of ``origin``, verified; a fresh one if none was saved."""
        path = cls.path(directory, origin)
        try:
            with path.open("rb") as handle:
                data = handle.read(_MAX_STATE + 1)
        except FileNotFoundError:
            return cls(LogView(origin))
        except OSError as exc:
            raise errors.UsageError(f"cannot read witness state {path}: {exc.strerror}") from exc
        try:
            return cls._parse(data, origin=origin, registry=registry)
        # ValueError covers bad JSON, bad base64 (binascii.Error) and text with no UTF-8 form.
        except (errors.AuditError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise errors.AuditError(
                f"witness state {path} does not verify ({exc}); refusing to cosign from it"
            ) from exc

    @classmethod
    def _parse(cls, data: bytes, *, origin: str, registry: Registry) -> WitnessState:
        if len(data) > _MAX_STATE:
            raise ValueError("the file is too large")
        document: dict[str, Any] = json.loads(data)
        if document.get("v") != _VERSION:
            raise ValueError(f"not version {_VERSION}")
        note = _note(document["note"])
        offset = document["offset"]
        if type(offset) is not int or offset < 0:
            raise ValueError("offset is not a topic offset")
        if note is None:
            view = LogView(origin)
        else:
            checkpoint = open_registered_checkpoint(note, registry)
            edge = [base64.b64decode(item, validate=True) for item in document["edge"]]
            view = LogView.resume(checkpoint, right_edge=edge)
            if view.origin != origin:
                raise ValueError(f"the state is for log {view.origin!r}")
        cosigned = _note(document["cosigned"])
        if cosigned is not None:
            parse_note(cosigned)
        published = document["published"]
        if type(published) is not bool:
            raise ValueError("published is true or false")
        return cls(view, note, offset, cosigned, published)

    def save(self, directory: pathlib.Path) -> None:
        """Write the state atomically and durably."""
        document = {
            "cosigned": None if self.cosigned is None else self.cosigned.decode("utf-8"),
            "edge": [base64.b64encode(h).decode("ascii") for h in self.view.right_edge],
            "note": None if self.note is None else self.note.decode("utf-8"),
            "offset": self.offset,
            "published": self.published,
            "v": _VERSION,
        }
        path = self.path(directory, self.view.origin)
        try:
            replace_durably(path, json.dumps(document, sort_keys=True).encode("utf-8") + b"\n")
        except OSError as exc:
            raise errors.UsageError(f"cannot write witness state {path}: {exc.strerror}") from exc


def _note(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("a note is a string")
    return value.encode("utf-8")
