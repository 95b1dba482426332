"""The portable audit bundle: one file an auditor can verify and replay offline.

JSON Lines, UTF-8. The first line is the header; every further line is one record of the audit
topic in offset order, exactly as it was stored::

    {"accords":{"<sha256>":"<accord JSON>"},"exported_at":"...","format":"xb-audit-bundle",
     "registry":"<base64>","topic":"xb.audit","v":2,"witnessed":["<cosigned note>",...]}
    {"offset":0,"value":"{\\"accord_digest\\":...}"}
    {"offset":7,"value":"{\\"from\\":0,\\"kind\\":\\"checkpoint\\",...}"}

A value that is not UTF-8 is stored as ``"value_b64"`` instead (a record with no value at all
as an empty value). The header embeds the partner registry document (for gateway and
witness keys), by digest every accord version the records name, and the newest checkpoint
notes the witnesses published (cosigned), so verify and replay need nothing else. Nothing in
the header is trusted for being there: the registry must verify under its own root keys (or
match one the auditor pins), an accord is used only under the digest of its own canonical
bytes, and a witnessed note only for the signatures on it that verify. Version 1 bundles
(made before checkpoints were C2SP notes) are refused: docs/AUDIT.md, "Migration".

A line that does not parse is not skipped: it becomes an entry whose bytes are the damaged
line, so verification counts it at its place in the log and names that index.

The **binary form** holds the same header and records without JSON escaping, for speed
(docs/AUDIT.md, "Bundle formats")::

    b"\x89XBAB\x02" || u32(len(header line)) || header line
    then per record: u64(offset) || u32(len(value)) || value

Readers tell the two forms apart by the first bytes. A record cut short or longer than a line
may be becomes one damaged entry holding the rest of the file, at its place, as in the text
form.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from broker import errors, strictjson
from broker.cosign import accord_bytes, accord_digest
from broker.keys import Registry, load_trusted_registry
from broker.policy import Accord, parse_accord

__all__ = [
    "BINARY_MAGIC",
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "BundleHeader",
    "Entry",
    "binary_entry",
    "entry_line",
    "header_bytes",
    "iter_entries",
    "read_header",
    "write_bundle",
]

BUNDLE_FORMAT = "xb-audit-bundle"
BUNDLE_VERSION = 2
_MAX_HEADER = 64 * 1024 * 1024
_MAX_LINE = 8 * 1024 * 1024
#: the binary form's first bytes: a non-ASCII byte (no text bundle starts so), then the version
BINARY_MAGIC = b"\x89XBAB\x02"
_U32 = struct.Struct(">I")
_RECORD = struct.Struct(">QI")


@dataclasses.dataclass(frozen=True)
class BundleHeader:
    """The bundle's first line: where the log came from, its registry, accord versions and
    the checkpoint notes witnesses published."""

    topic: str
    exported_at: str
    registry_bytes: bytes
    accord_texts: Mapping[str, bytes]
    witnessed: tuple[bytes, ...] = ()

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
            "v": BUNDLE_VERSION,
            "witnessed": [note.decode("utf-8") for note in self.witnessed],
        }
        return _dumps(document)

    @classmethod
    def build(
        cls,
        *,
        topic: str,
        exported_at: str,
        registry_bytes: bytes,
        accords: Iterable[Accord],
        witnessed: Iterable[bytes] = (),
    ) -> BundleHeader:
        """A header embedding ``accords`` by digest and the ``witnessed`` notes."""
        texts = {accord_digest(a): accord_bytes(a) for a in accords}
        return cls(topic, exported_at, registry_bytes, texts, tuple(witnessed))


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One record of the topic as the bundle holds it."""

    offset: int
    value: bytes
    #: the line did not parse: ``value`` holds the raw line
    damaged: bool = False


def write_bundle(
    out: IO[bytes], header: BundleHeader, entries: Iterable[Entry], *, binary: bool = False
) -> int:
    """Write a bundle (JSON Lines, or the binary form) to ``out``; returns how many entries
    were written."""
    out.write(header_bytes(header, binary=binary))
    count = 0
    for entry in entries:
        out.write(binary_entry(entry) if binary else entry_line(entry) + b"\n")
        count += 1
    return count


def header_bytes(header: BundleHeader, *, binary: bool) -> bytes:
    """How a bundle of either form begins: its header."""
    line = header.to_line()
    return BINARY_MAGIC + _U32.pack(len(line)) + line if binary else line + b"\n"


def binary_entry(entry: Entry) -> bytes:
    """One record in the binary form: u64 offset, u32 length, the value."""
    return _RECORD.pack(entry.offset, len(entry.value)) + entry.value


def read_header(path: pathlib.Path) -> BundleHeader:
    """The header of the bundle at ``path``; AuditError if it is not a readable bundle."""
    with _open(path) as handle:
        line = _header_line(handle)
    try:
        document = json.loads(line)
        if document.get("format") != BUNDLE_FORMAT:
            raise errors.AuditError(f"{path} is not an audit bundle")
        if document.get("v") != BUNDLE_VERSION:
            raise errors.AuditError(
                f"{path} is an audit bundle of version {document.get('v')!r}; this release reads "
                f"version {BUNDLE_VERSION} (docs/AUDIT.md, Migration)"
            )
        accords = {str(d): str(t).encode("utf-8") for d, t in dict(document["accords"]).items()}
        witnessed = [str(note) for note in list(document["witnessed"])]
        return BundleHeader(
            topic=str(document["topic"]),
            exported_at=str(document["exported_at"]),
            registry_bytes=base64.b64decode(str(document["registry"]), validate=True),
            accord_texts=accords,
            witnessed=tuple(note.encode("utf-8") for note in witnessed),
        )
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise errors.AuditError(f"{path}: the bundle header is damaged ({exc})") from exc


def _header_line(handle: IO[bytes]) -> bytes:
    """The header line of either form, leaving ``handle`` at the first record."""
    start = handle.read(len(BINARY_MAGIC))
    if start == BINARY_MAGIC:
        (length,) = _U32.unpack(handle.read(_U32.size).rjust(_U32.size, b"\xff"))
        return handle.read(min(length, _MAX_HEADER))
    return start + handle.readline(_MAX_HEADER)


def iter_entries(path: pathlib.Path) -> Iterator[Entry]:
    """The entries of the bundle at ``path`` in order, one record at a time."""
    with _open(path) as handle:
        binary = handle.read(len(BINARY_MAGIC)) == BINARY_MAGIC
        handle.seek(0)
        _header_line(handle)
        if binary:
            yield from _binary_entries(handle)
            return
        offset = -1
        for raw in handle:
            line = raw.rstrip(b"\n")
            entry = _parse_line(line)
            if entry is None:
                # Keep the damaged line in place: its index is what the auditor needs.
                entry = Entry(offset=min(offset + 1, _MAX_OFFSET), value=line, damaged=True)
            offset = entry.offset
            yield entry


def _binary_entries(handle: IO[bytes]) -> Iterator[Entry]:
    offset = -1
    while prefix := handle.read(_RECORD.size):
        length = _RECORD.unpack(prefix)[1] if len(prefix) == _RECORD.size else -1
        value = handle.read(length) if 0 <= length <= _MAX_LINE else b""
        if len(prefix) < _RECORD.size or not 0 <= length <= _MAX_LINE or len(value) < length:
            # cut short or oversized: the rest of the file is one damaged entry at its place
            rest = prefix + value + handle.read(_MAX_LINE)
            yield Entry(offset=min(offset + 1, _MAX_OFFSET), value=rest, damaged=True)
            return
        offset = _RECORD.unpack(prefix)[0]
        if offset > _MAX_OFFSET:
            yield Entry(offset=_MAX_OFFSET, value=prefix + value, damaged=True)
            return
        yield Entry(offset=offset, value=value)


#: the largest offset Kafka can give a record (a signed 64-bit number)
_MAX_OFFSET = 2**63 - 1
_LINE_START = b'{"offset":'
_VALUE_START = b',"value":"'
_LINE_END = b'"}'
#: printable ASCII: besides ``"`` and ``\\``, what ``json.dumps(ensure_ascii=True)`` never escapes
_PRINTABLE = bytes(range(0x20, 0x7F))


def _parse_line(line: bytes) -> Entry | None:
    if len(line) > _MAX_LINE:
        return None
    entry = _parse_plain_line(line)
    return entry if entry is not None else _parse_any_line(line)


def _parse_plain_line(line: bytes) -> Entry | None:
    """The common line, without a JSON parser: ``{"offset":N,"value":"E"}`` whose string E
    holds printable ASCII and no escape but ``\\"``.

    For such a line the JSON value is E with each ``\\"`` read as ``"``, and encoding that
    value again gives E back, so the line is in the exporter's one form. Any other line
    (None here) goes to the full parser, which decides it.
    """
    if not line.startswith(_LINE_START) or not line.endswith(_LINE_END):
        return None
    value_at = line.find(_VALUE_START, len(_LINE_START))
    digits = line[len(_LINE_START) : value_at]
    if (
        value_at < 0
        or value_at + len(_VALUE_START) > len(line) - len(_LINE_END)
        or not 0 < len(digits) <= 18
        or not digits.isdigit()
        or (digits[0] == 0x30 and len(digits) > 1)
    ):
        return None
    escaped = line[value_at + len(_VALUE_START) : -len(_LINE_END)]
    if escaped.translate(None, _PRINTABLE):
        return None  # a byte json.dumps would have escaped
    value = escaped.replace(b'\\"', b'"')
    pairs = len(escaped) - len(value)
    # Every backslash and every quote belongs to one of the replaced pairs: no other escape,
    # and no bare quote (which would have ended the string).
    if escaped.count(b"\\") != pairs or escaped.count(b'"') != pairs:
        return None
    return Entry(offset=int(digits), value=value)


def _parse_any_line(line: bytes) -> Entry | None:
    try:
        document: Any = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or type(document.get("offset")) is not int:
        return None
    if not 0 <= document["offset"] <= _MAX_OFFSET:
        return None  # a Kafka offset is a signed 64-bit number, never negative
    keys = set(document)
    try:
        if keys == {"offset", "value"} and isinstance(document["value"], str):
            value = document["value"].encode("utf-8")
        elif keys == {"offset", "value_b64"} and isinstance(document["value_b64"], str):
            value = base64.b64decode(document["value_b64"], validate=True)
        else:
            return None
    except ValueError:  # binascii.Error, or base64 text that is not even ASCII
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
    return strictjson.canonical(document, ascii_only=True, allow_floats=False)


def _open(path: pathlib.Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise errors.UsageError(f"cannot read bundle {path}: {exc.strerror}") from exc
