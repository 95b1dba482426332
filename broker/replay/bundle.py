"""The portable audit bundle: one file an auditor can verify and replay offline.

JSON Lines, UTF-8. The first line is the header; every further line is one record of the audit
topic in offset order, exactly as it was stored::

    {"accords":{"<sha256>":"<accord JSON>"},"exported_at":"...","format":"xb-audit-bundle",
     "registry":"<base64>","topic":"xb.audit","v":1}            (one line in the file)
    {"offset":0,"value":"{\\"accord_digest\\":...}"}
    {"offset":7,"value":"{\\"from\\":0,\\"kind\\":\\"checkpoint\\",...}"}

A value that is not UTF-8 is stored as ``"value_b64"`` instead. The header embeds the partner
registry document (for gateway and witness keys) and, by digest, every accord version the
records name, so replay needs nothing else. Nothing in the header is trusted for being there:
the registry must verify under its own root keys (or match one the auditor pins), and an accord
is used only under the digest of its own canonical bytes.

A line that does not parse is not skipped: it becomes an entry whose bytes are the damaged
line, so verification counts it at its place in the log and names that index.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import pathlib
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from broker import errors
from broker.cosign import accord_bytes, accord_digest
from broker.keys import Registry, load_trusted_registry
from broker.policy import Accord, parse_accord

__all__ = [
    "BUNDLE_FORMAT",
    "BundleHeader",
    "Entry",
    "entry_line",
    "iter_entries",
    "read_header",
    "write_bundle",
]

BUNDLE_FORMAT = "xb-audit-bundle"
_MAX_HEADER = 64 * 1024 * 1024
_MAX_LINE = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class BundleHeader:
    """The bundle's first line: where the log came from, its registry and accord versions."""

    topic: str
    exported_at: str
    registry_bytes: bytes
    accord_texts: Mapping[str, bytes]

    def registry(self) -> Registry:
        """The embedded registry once its own root threshold verifies.

        Its expiry is deliberately not checked: an auditor reads history, and every key is
        checked against its own validity window at the time each record was signed.
        """
        return load_trusted_registry(self.registry_bytes)

    def accords(self) -> dict[str, Accord]:
        """The embedded accords by digest; an accord whose bytes do not match its digest fails."""
        result: dict[str, Accord] = {}
        for digest, text in self.accord_texts.items():
            accord = parse_accord(text, source=f"bundle accord {digest[:16]}")
            if accord_digest(accord) != digest:
                raise errors.AuditError(f"bundle accord {digest[:16]}... does not match its digest")
            result[digest] = accord
        return result

    def to_line(self) -> bytes:
        """The header's JSON line (without the newline)."""
        document = {
            "accords": {d: t.decode("utf-8") for d, t in sorted(self.accord_texts.items())},
            "exported_at": self.exported_at,
            "format": BUNDLE_FORMAT,
            "registry": base64.b64encode(self.registry_bytes).decode("ascii"),
            "topic": self.topic,
            "v": 1,
        }
        return _dumps(document)

    @classmethod
    def build(
        cls, *, topic: str, exported_at: str, registry_bytes: bytes, accords: Iterable[Accord]
    ) -> BundleHeader:
        """A header embedding ``accords`` by digest."""
        texts = {accord_digest(a): accord_bytes(a) for a in accords}
        return cls(topic, exported_at, registry_bytes, texts)


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One record of the topic as the bundle holds it."""

    offset: int
    value: bytes
    #: the line did not parse: ``value`` holds the raw line
    damaged: bool = False


def write_bundle(out: IO[bytes], header: BundleHeader, entries: Iterable[Entry]) -> int:
    """Write a bundle to ``out``; returns how many entries were written."""
    out.write(header.to_line() + b"\n")
    count = 0
    for entry in entries:
        out.write(entry_line(entry) + b"\n")
        count += 1
    return count


def read_header(path: pathlib.Path) -> BundleHeader:
    """The header of the bundle at ``path``; AuditError if it is not a readable bundle."""
    with _open(path) as handle:
        line = handle.readline(_MAX_HEADER)
    try:
        document = json.loads(line)
        if document.get("format") != BUNDLE_FORMAT or document.get("v") != 1:
            raise errors.AuditError(f"{path} is not a version 1 audit bundle")
        accords = {str(d): str(t).encode("utf-8") for d, t in dict(document["accords"]).items()}
        return BundleHeader(
            topic=str(document["topic"]),
            exported_at=str(document["exported_at"]),
            registry_bytes=base64.b64decode(str(document["registry"]), validate=True),
            accord_texts=accords,
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise errors.AuditError(f"{path}: the bundle header is damaged ({exc})") from exc


def iter_entries(path: pathlib.Path) -> Iterator[Entry]:
    """The entries of the bundle at ``path`` in order, one line at a time."""
    with _open(path) as handle:
        handle.readline(_MAX_HEADER)
        offset = -1
        for raw in handle:
            line = raw.rstrip(b"\n")
            entry = _parse_line(line)
            if entry is None:
                # Keep the damaged line in place: its index is what the auditor needs.
                entry = Entry(offset=offset + 1, value=line, damaged=True)
            offset = entry.offset
            yield entry


def _parse_line(line: bytes) -> Entry | None:
    if len(line) > _MAX_LINE:
        return None
    try:
        document: Any = json.loads(line)
    except ValueError:
        return None
    if not isinstance(document, dict) or type(document.get("offset")) is not int:
        return None
    keys = set(document)
    try:
        if keys == {"offset", "value"} and isinstance(document["value"], str):
            value = document["value"].encode("utf-8")
        elif keys == {"offset", "value_b64"} and isinstance(document["value_b64"], str):
            value = base64.b64decode(document["value_b64"], validate=True)
        else:
            return None
    except (UnicodeEncodeError, binascii.Error):
        return None
    entry = Entry(offset=document["offset"], value=value)
    # A line must be the one form the exporter writes; anything else was edited.
    return entry if entry_line(entry) == line else None


def entry_line(entry: Entry) -> bytes:
    """The bundle line of one entry (without the newline): the one form the exporter writes."""
    try:
        return _dumps({"offset": entry.offset, "value": entry.value.decode("utf-8")})
    except UnicodeDecodeError:
        encoded = base64.b64encode(entry.value).decode("ascii")
        return _dumps({"offset": entry.offset, "value_b64": encoded})


def _dumps(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _open(path: pathlib.Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise errors.UsageError(f"cannot read bundle {path}: {exc.strerror}") from exc
