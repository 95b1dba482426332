"""Strict YAML 1.2 reading: one document of plain maps, lists and scalars, with positions.

Accords are signed agreements, so the reader refuses everything YAML offers beyond plain data:
tags (``!!python/object`` and friends), anchors and aliases (alias bombs), ``%YAML`` directives
(a ``%YAML 1.1`` header would turn the country code ``NO`` into ``false``), several documents,
duplicate keys, and files over a size limit, which is checked before any parsing.

The result is a plain tree (``dict``/``list``/``str``/``int``/``float``/``bool``/``None``) and a
position index from each field path to its ``(line, column)`` (1-based), so that a later
validation error can name the exact place in the file. Timestamps stay text: the model parses
dates, so a bad date is reported like any other bad field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import TypeAlias

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    ScalarEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from broker.errors import PolicyError

__all__ = ["DEFAULT_MAX_BYTES", "Path", "PlainTree", "YamlDocument", "format_path", "read_yaml"]

#: accords are a few kilobytes; anything near this is a mistake or an attack
DEFAULT_MAX_BYTES = 256 * 1024

PlainTree: TypeAlias = "dict[str, PlainTree] | list[PlainTree] | str | int | float | bool | None"
Path: TypeAlias = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
#: an accord nests four levels; deeper input is refused on the event stream, because the
#: YAML scanner slows down quadratically and the composer recurses with nesting depth
_MAX_DEPTH = 32
#: an accord's numbers are versions, days and rates; anything wider is refused
_MAX_INT_BITS = 64


@dataclasses.dataclass(frozen=True)
class YamlDocument:
    """One parsed document: the plain data and where each field path sits in the file."""

    source: str
    data: PlainTree
    positions: dict[Path, tuple[int, int]]
    key_positions: dict[Path, tuple[int, int]]

    def where(self, path: Path, *, key: bool = False) -> str:
        """``source:line:column`` of the deepest part of ``path`` present in the file.

        With ``key``, the position of the field's name rather than its value.
        """
        if key and path in self.key_positions:
            line, column = self.key_positions[path]
            return f"{self.source}:{line}:{column}"
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.positions:
                line, column = self.positions[path[:cut]]
                return f"{self.source}:{line}:{column}"
        return f"{self.source}:1:1"


def format_path(path: Path) -> str:
    """``('flows', 0, 'max_tlp')`` as ``flows[0].max_tlp``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(document)"


def read_yaml(data: bytes, *, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> YamlDocument:
    """Parse ``data`` as one strict YAML 1.2 document; every refusal is a :class:`PolicyError`."""
    if len(data) > max_bytes:
        raise PolicyError(
            f"{source}: file is over the {max_bytes}-byte limit; "
            "an accord is a few kilobytes, so check that this is the right file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"{source}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from exc
    yaml = YAML(typ="rt", pure=True)
    yaml.version = (1, 2)
    try:
        _refuse_unsafe_events(yaml.parse(text), source)
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "malformed YAML"
        raise PolicyError(
            f"{where}: malformed YAML: {problem}; check indentation and quoting"
        ) from exc
    except YAMLError as exc:
        raise PolicyError(f"{source}: malformed YAML: {exc}") from exc
    if root is None:
        raise PolicyError(f"{source}:1:1: the file is empty; an accord starts with 'accord: <id>'")
    positions: dict[Path, tuple[int, int]] = {}
    key_positions: dict[Path, tuple[int, int]] = {}
    plain = _plain(root, (), source, (positions, key_positions))
    return YamlDocument(source=source, data=plain, positions=positions, key_positions=key_positions)


def _where(event_or_node: Event | Node, source: str) -> str:
    mark = event_or_node.start_mark
    return f"{source}:{mark.line + 1}:{mark.column + 1}"


def _refuse_unsafe_events(events: Iterator[Event], source: str) -> None:
    # Checked on the event stream, before any node is built, so an alias bomb never expands.
    documents = depth = 0
    for event in events:
        if isinstance(event, CollectionEndEvent):
            depth -= 1
        elif isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > _MAX_DEPTH:
                raise PolicyError(
                    f"{_where(event, source)}: nested deeper than {_MAX_DEPTH} levels; "
                    "an accord is a few levels of plain maps and lists"
                )
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise PolicyError(
                    f"{_where(event, source)}: more than one YAML document; "
                    "put each accord in its own file"
                )
            if event.version is not None or event.tags:
                raise PolicyError(
                    f"{_where(event, source)}: YAML directives are not allowed; "
                    "remove the '%YAML'/'%TAG' line (accords are always read as YAML 1.2)"
                )
        elif isinstance(event, AliasEvent):
            raise PolicyError(
                f"{_where(event, source)}: aliases ('*{event.anchor}') are not allowed; "
                "write the value out in full"
            )
        elif isinstance(event, ScalarEvent | CollectionStartEvent):
            if event.anchor is not None:
                raise PolicyError(
                    f"{_where(event, source)}: anchors ('&{event.anchor}') are not allowed; "
                    "write each value out in full"
                )
            if event.tag is not None:
                raise PolicyError(
                    f"{_where(event, source)}: YAML tags ('{event.tag}') are not allowed; "
                    "remove the tag and write plain values"
                )


_Index: TypeAlias = tuple[dict[Path, tuple[int, int]], dict[Path, tuple[int, int]]]


def _plain(node: Node, path: Path, source: str, index: _Index) -> PlainTree:
    index[0][path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, MappingNode):
        mapping: dict[str, PlainTree] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != _CORE + "str":
                raise PolicyError(
                    f"{_where(key_node, source)}: {_describe(path)}: keys must be plain text; "
                    "quote the key"
                )
            key = str(key_node.value)
            if key in mapping:
                raise PolicyError(
                    f"{_where(key_node, source)}: {format_path((*path, key))}: duplicate key "
                    f"{key!r}; each field may appear once, so merge or remove one"
                )
            index[1][(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            mapping[key] = _plain(value_node, (*path, key), source, index)
        return mapping
    if isinstance(node, SequenceNode):
        return [
            _plain(item, (*path, number), source, index) for number, item in enumerate(node.value)
        ]
    if isinstance(node, ScalarNode):
        return _scalar(node, path, source)
    raise PolicyError(f"{_where(node, source)}: {_describe(path)}: unsupported YAML node")


def _describe(path: Path) -> str:
    return format_path(path)


def _scalar(node: ScalarNode, path: Path, source: str) -> PlainTree:
    value = str(node.value)
    tag = node.tag
    if tag == _CORE + "null":
        return None
    if tag == _CORE + "bool":
        return value.lower() == "true"
    if tag == _CORE + "int":
        try:
            integer = int(value, 0) if value[:2].lower() in ("0o", "0x") else int(value, 10)
        except ValueError:
            return value
        if integer.bit_length() > _MAX_INT_BITS:
            raise PolicyError(
                f"{_where(node, source)}: {_describe(path)}: integer {value[:24]!r} is out of range"
            )
        return integer
    if tag == _CORE + "float":
        number = math.nan if value.lstrip("+-").lower() in (".inf", ".nan") else float(value)
        if not math.isfinite(number):
            raise PolicyError(
                f"{_where(node, source)}: {_describe(path)}: {value!r} is not a finite number"
            )
        return number
    # str, and timestamps: kept as text so the model parses (and reports) dates itself
    return value
