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
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from broker import errors, strictjson
from broker.clock import format_instant, parse_instant

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
_Model = TypeVar("_Model", bound=BaseModel)
# how each refusal reads after "<what> "; {0} is strictjson's own description
_WORDING: dict[strictjson.Reason, str] = {
    "utf-8": "is {0}",
    "syntax": "is not valid JSON: {0}",
    "duplicate": "is not valid JSON: {0}",
    "number": "is not valid JSON: {0} (registry numbers are integers)",
    "depth": f"nests deeper than {_MAX_DEPTH} levels",
    "unicode": "has a string that is not valid Unicode",
}


def canonical_json(value: object) -> bytes:
    """The canonical UTF-8 JSON bytes of ``value`` (see the module docstring)."""
    return strictjson.canonical(value, ascii_only=False, allow_floats=False)


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
        return strictjson.loads(data, max_depth=_MAX_DEPTH, allow_floats=False)
    except strictjson.StrictJSONError as exc:
        raise errors.RegistryError(f"{what} {_WORDING[exc.reason].format(exc)}") from exc


def parse_model(model: type[_Model], data: bytes, *, what: str) -> tuple[_Model, Any]:
    """Strictly parse ``data`` (see :func:`strict_json_loads`) into ``model``; also the raw value.

    The model is validated in JSON mode from a re-encoding of the already vetted value, so
    arrays become tuples and timestamps parse from text, while duplicate keys and floats were
    refused before pydantic saw anything.
    """
    raw = strict_json_loads(data, what=what)
    try:
        return model.model_validate_json(strictjson.encode(raw)), raw
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
    if not isinstance(value, str):  # a validator: pydantic reports ValueError, not TypeError
        raise ValueError(f"a timestamp is YYYY-MM-DDTHH:MM:SSZ in UTC, got {value!r}")  # noqa: TRY004
    return parse_instant(value)


def format_timestamp(value: dt.datetime) -> str:
    """:func:`broker.clock.format_instant` of a whole-second instant (a registry has no
    fractions, so one is refused rather than dropped)."""
    return format_instant(_whole_utc(value))


def _whole_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("a registry timestamp must be timezone-aware")
    if value.microsecond:
        raise ValueError("a registry timestamp has whole seconds only")
    return value.astimezone(dt.UTC)
