"""Canonical JSON, strict JSON parsing, timestamps and the registry's signing input.

Canonical JSON (docs/KEYS.md has the same definition): the JSON value serialised with object
keys sorted by code point, no insignificant whitespace (separators ``,`` and ``:``), strings
as UTF-8 with no ``\\uXXXX`` escapes except those JSON requires, integers in plain decimal.
Floats, NaN and Infinity are not allowed anywhere, so every value has exactly one encoding.

A signature covers ``SIGNING_CONTEXT || 0x00 || uint64_be(len(c)) || c`` where ``c`` is the
canonical JSON of ``signed``: the prefix keeps a registry signature from ever being accepted
as any other kind of signature made with the same key.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from broker import errors

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "SIGNING_CONTEXT",
    "canonical_json",
    "describe_validation",
    "format_timestamp",
    "parse_model",
    "parse_timestamp",
    "signing_input",
    "strict_json_loads",
]

SIGNING_CONTEXT = b"broker/partner-registry/v1"
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
_MAX_DEPTH = 16
_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_Model = TypeVar("_Model", bound=BaseModel)


def canonical_json(value: object) -> bytes:
    """The canonical UTF-8 JSON bytes of ``value`` (see the module docstring)."""
    _refuse_floats(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def signing_input(canonical_signed: bytes) -> bytes:
    """The exact bytes a root key signs: domain prefix, a length, then the canonical ``signed``."""
    return SIGNING_CONTEXT + b"\x00" + len(canonical_signed).to_bytes(8, "big") + canonical_signed


def strict_json_loads(data: bytes, *, what: str) -> Any:
    """Parse JSON refusing duplicate keys, floats, NaN/Infinity, over-deep nesting and bad UTF-8."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise errors.RegistryError(
            f"{what} is {len(data)} bytes, over the {MAX_DOCUMENT_BYTES} limit"
        )
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
    except UnicodeDecodeError as exc:
        raise errors.RegistryError(f"{what} is not UTF-8: {exc.reason}") from exc
    except (ValueError, RecursionError) as exc:
        raise errors.RegistryError(f"{what} is not valid JSON: {exc}") from exc
    if _depth(value) > _MAX_DEPTH:
        raise errors.RegistryError(f"{what} nests deeper than {_MAX_DEPTH} levels")
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate such as "\ud800" has no UTF-8 form
        raise errors.RegistryError(f"{what} has a string that is not valid Unicode") from exc
    return value


def parse_model(model: type[_Model], data: bytes, *, what: str) -> tuple[_Model, Any]:
    """Strictly parse ``data`` (see :func:`strict_json_loads`) into ``model``; also the raw value.

    The model is validated in JSON mode from a re-encoding of the already vetted value, so
    arrays become tuples and timestamps parse from text, while duplicate keys and floats were
    refused before pydantic saw anything.
    """
    raw = strict_json_loads(data, what=what)
    try:
        return model.model_validate_json(json.dumps(raw)), raw
    except ValidationError as exc:
        raise errors.RegistryError(f"{what} is malformed: {describe_validation(exc)}") from exc


def describe_validation(exc: ValidationError) -> str:
    """The first validation problem as ``path: message``, and how many there were."""
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{path}: {first['msg']}{more}"


def parse_timestamp(value: object) -> dt.datetime:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds) as an aware datetime; nothing else."""
    if isinstance(value, dt.datetime):
        return _whole_utc(value)
    if not isinstance(value, str) or not _TIMESTAMP_RE.fullmatch(value):
        raise ValueError(f"a timestamp is YYYY-MM-DDTHH:MM:SSZ in UTC, got {value!r}")
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def format_timestamp(value: dt.datetime) -> str:
    """The one text form of a registry timestamp."""
    return _whole_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("a registry timestamp must be timezone-aware")
    if value.microsecond:
        raise ValueError("a registry timestamp has whole seconds only")
    return value.astimezone(dt.UTC)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise ValueError(f"non-integer number {text} (registry numbers are integers)")


def _refuse_floats(value: object) -> None:
    if isinstance(value, float):
        raise TypeError("canonical JSON has no floats")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_floats(item)


def _depth(value: object) -> int:
    # Iterative: json.loads accepts nesting close to the interpreter's recursion limit, so
    # measuring it recursively would itself overflow the stack on hostile input.
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level + 1)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest
