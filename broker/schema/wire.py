"""Bytes to :class:`Message` and back: the strict parser and the canonical encoding.

Parsing goes in an order that keeps hostile input cheap to refuse: size first, then UTF-8, then
a standard-library pass that rejects duplicate keys, NaN and Infinity and over-deep nesting
(pydantic's JSON parser would silently keep the last of two duplicate keys), then the model.
Every problem becomes one line of :class:`errors.SchemaError` naming the field path.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pydantic

from broker import errors, strictjson
from broker.schema.labels import MessageType
from broker.schema.message import MESSAGE_MODELS, Message

__all__ = [
    "MAX_DEPTH",
    "MAX_MESSAGE_BYTES",
    "message_bytes",
    "message_object",
    "parse_canonical_message",
    "parse_message",
]

MAX_MESSAGE_BYTES = 1_048_576
"""The default size limit for one message document."""

MAX_DEPTH = 10
"""The deepest nesting of objects and arrays any message type needs, with a margin."""

_MAX_REPORTED = 20


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers the keys it saw more than once."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicates: list[str] = []
        for key, _ in pairs:
            if key in seen:
                duplicates.append(key)
            seen.add(key)
        obj.duplicates = tuple(duplicates)
    return obj


def _reject_constant(name: str) -> float:
    raise _NonFiniteError(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 decodes to inf
        raise _NonFiniteError(text)
    return value


class _NonFiniteError(ValueError):
    pass


def _path(parts: tuple[str | int, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "$"


def _problems(value: Any, parts: tuple[str | int, ...], depth: int, out: list[str]) -> None:
    """Collect duplicate keys and over-deep nesting, each with its path."""
    if not isinstance(value, dict | list):
        return
    if depth > MAX_DEPTH:
        out.append(f"{_path(parts)}: nesting deeper than {MAX_DEPTH} levels")
        return
    if isinstance(value, _Object):
        out.extend(f"{_path((*parts, key))}: duplicate key" for key in value.duplicates)
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        _problems(child, (*parts, key), depth + 1, out)


def _fail(problems: list[str]) -> errors.SchemaError:
    shown = problems[:_MAX_REPORTED]
    if len(problems) > _MAX_REPORTED:
        shown.append(f"... and {len(problems) - _MAX_REPORTED} more problems")
    return errors.SchemaError("\n".join(shown))


def _loc(loc: tuple[str | int, ...]) -> str:
    # Union tags ("uk-3x5x2") and validator names are not fields: field names are identifiers.
    return _path(tuple(p for p in loc if isinstance(p, int) or p.isidentifier()))


def _describe(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field missing"
    return str(error["msg"])


def schema_problems(exc: pydantic.ValidationError) -> list[str]:
    """One ``path: reason`` line per validation error."""
    return [f"{_loc(tuple(e['loc']))}: {_describe(e)}" for e in exc.errors(include_url=False)]


def parse_message(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Parse one message document strictly; ``SchemaError`` names each problem's field path."""
    if len(data) > max_bytes:
        raise errors.SchemaError(
            f"$: message is {len(data)} bytes, over the {max_bytes}-byte limit"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.SchemaError(f"$: not UTF-8 (byte {exc.start})") from None
    try:
        document = json.loads(
            text,
            object_pairs_hook=_object_pairs,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except _NonFiniteError as exc:
        raise errors.SchemaError(f"$: {exc} is not a finite number") from None
    except RecursionError:
        raise errors.SchemaError(f"$: nesting deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise errors.SchemaError(
            f"$: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError:  # an integer literal past Python's int-from-text digit limit
        raise errors.SchemaError("$: a number has too many digits") from None
    if not isinstance(document, dict):
        raise errors.SchemaError("$: a message is a JSON object")
    problems: list[str] = []
    _problems(document, (), 1, problems)
    if problems:
        raise _fail(problems)
    model = _model_for(document)
    try:
        return model.model_validate_json(data)
    except pydantic.ValidationError as exc:
        raise _fail(schema_problems(exc)) from None


def _model_for(document: dict[str, Any]) -> type[Message]:
    kind, version = document.get("type"), document.get("schema_version")
    try:
        message_type = MessageType(str(kind))
    except ValueError:
        known = ", ".join(t.value for t in MessageType)
        raise errors.SchemaError(f"type: {kind!r} is not a message type ({known})") from None
    if not isinstance(version, int) or isinstance(version, bool):
        raise errors.SchemaError("schema_version: required, an integer")
    model = MESSAGE_MODELS.get((message_type, version))
    if model is None:
        known_versions = sorted(v for t, v in MESSAGE_MODELS if t is message_type)
        raise errors.SchemaError(
            f"schema_version: {message_type} version {version} is not supported "
            f"(supported: {', '.join(map(str, known_versions))})"
        )
    return model


# A JSON string, escapes included: what remains outside strings is structure and numbers.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_BRACKET = bytes.maketrans(b"[]", b"{}")
_TYPE_VALUES = frozenset(t.value for t in MessageType)


def _nested_deeper_than(data: bytes, limit: int) -> bool:
    """Whether valid JSON ``data`` nests objects and arrays deeper than ``limit`` levels.

    Each round deletes the innermost (empty) pairs of the bracket skeleton, one level at a
    time (``bytes.replace`` does not rescan what it produced): a skeleton still non-empty
    after ``limit`` rounds nests deeper.
    """
    skeleton = _JSON_STRING.sub(b"", data).translate(_ONE_BRACKET, _NOT_BRACKETS)
    for _ in range(limit):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"{}", b"")
    return bool(skeleton)


def parse_canonical_message(data: bytes, document: dict[str, Any]) -> Message:
    """:func:`parse_message` for bytes whose strictness is already established, faster.

    The caller guarantees that ``data`` is valid UTF-8 JSON with no duplicate key and no
    non-finite number, and that ``document`` is ``data`` decoded, as it is for the exact
    canonical form of ``document``. The remaining checks (size, nesting, type and version,
    the model) run here; the result, and every error with its wording, are those of
    :func:`parse_message`, which still handles anything out of the ordinary.
    """
    kind, version = document.get("type"), document.get("schema_version")
    model = (
        MESSAGE_MODELS.get((MessageType(kind), version))
        if isinstance(kind, str) and kind in _TYPE_VALUES and type(version) is int
        else None
    )
    if model is None or len(data) > MAX_MESSAGE_BYTES or _nested_deeper_than(data, MAX_DEPTH):
        return parse_message(data)
    try:
        return model.model_validate_json(data)
    except pydantic.ValidationError:
        return parse_message(data)  # an invalid message: the full parser words every problem


def message_object(message: Message) -> dict[str, Any]:
    """The JSON object :func:`message_bytes` encodes (plain dicts, lists, strings, numbers)."""
    return message.model_dump(mode="json", exclude_none=True)


def message_bytes(message: Message) -> bytes:
    """The canonical form: UTF-8 JSON, keys sorted, no whitespace, absent fields omitted.

    Parsing the result gives back an equal message, and equal messages give equal bytes.
    """
    return strictjson.canonical(message_object(message), allow_floats=True)
