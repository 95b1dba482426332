"""Strict JSON parsing and canonical JSON encoding, done once for every wire format.

:func:`loads` refuses everything that could make two readers see different values: bad
UTF-8, duplicate object keys, floats (or only non-finite ones), nesting deeper than a bound
(measured iteratively, so hostile input cannot overflow the stack) and strings holding a lone
surrogate, which has no UTF-8 form. Every refusal is a :class:`StrictJSONError`, a
``ValueError`` whose ``reason`` lets each caller keep its own error class and wording.

:func:`canonical` is the one encoding: keys sorted by code point, no whitespace (separators
``,`` and ``:``), no NaN or Infinity, UTF-8. ``ascii_only`` chooses ``\\uXXXX`` escapes for
every non-ASCII character (the envelope's form) instead of raw UTF-8 (the registry's and the
records' form); ``allow_floats`` says whether finite floats may appear at all. Both are part of
a format's byte definition, so each caller states them explicitly.
"""

from __future__ import annotations

import json
import json.encoder
import math
from collections.abc import Callable, Iterable
from typing import Any, Literal

__all__ = ["Reason", "StrictJSONError", "canonical", "loads"]

#: why :func:`loads` refused its input
Reason = Literal["utf-8", "syntax", "duplicate", "number", "depth", "unicode"]


class StrictJSONError(ValueError):
    """Input :func:`loads` refuses; ``reason`` classifies it, the message says exactly what."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


def loads(data: bytes, *, max_depth: int, allow_floats: bool) -> Any:
    """Parse UTF-8 JSON ``data`` strictly (see the module docstring), else StrictJSONError.

    ``max_depth`` counts nested arrays and objects (``{"a": [1]}`` is 2 deep, a scalar 0);
    with ``allow_floats`` false every number must be an integer, otherwise only NaN,
    Infinity and numbers too large to be finite (``1e999``) are refused.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrictJSONError("utf-8", f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_float=_float if allow_floats else _no_float,
            parse_constant=_no_constant if allow_floats else _no_float,
        )
    except RecursionError:
        raise StrictJSONError("depth", f"nests deeper than {max_depth} levels") from None
    except StrictJSONError:
        raise
    except ValueError as exc:  # bad syntax, or an integer past the interpreter's digit limit
        raise StrictJSONError("syntax", str(exc)) from None
    # Only a \u escape can put a surrogate into text that decoded from valid UTF-8.
    _check(value, max_depth=max_depth, strings="\\u" in text)
    return value


def canonical(value: object, *, ascii_only: bool = False, allow_floats: bool = False) -> bytes:
    """The canonical JSON bytes of ``value``; TypeError or ValueError if it has none.

    A float when ``allow_floats`` is false, like any other value JSON cannot hold, is a
    TypeError; NaN and Infinity are a ValueError; with ``ascii_only`` false a lone surrogate
    is a UnicodeEncodeError (a ValueError).
    """
    if not allow_floats:
        _refuse_floats(value)
    encode = _ENCODE_ASCII if ascii_only else _ENCODE_UTF8
    if encode is None:  # no C accelerator: the same bytes, more slowly
        encoder = _ASCII_ENCODER if ascii_only else _UTF8_ENCODER
        return encoder.encode(value).encode("utf-8")
    return "".join(encode(value, 0)).encode("utf-8")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise StrictJSONError("duplicate", f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise StrictJSONError("number", f"non-integer number {text}")


def _no_constant(text: str) -> Any:
    raise StrictJSONError("number", f"non-finite number {text}")


def _float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 parses to inf
        raise StrictJSONError("number", f"non-finite number {text}")
    return number


def _check(value: object, *, max_depth: int, strings: bool) -> None:
    # Iterative: json.loads accepts nesting close to the interpreter's recursion limit, so
    # walking it recursively would itself overflow the stack on hostile input.
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level + 1 > max_depth:
                raise StrictJSONError("depth", f"nests deeper than {max_depth} levels")
            if isinstance(item, dict):
                if strings:
                    stack.extend((key, level) for key in item)
                stack.extend((child, level + 1) for child in item.values())
            else:
                stack.extend((child, level + 1) for child in item)
        elif strings and isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise StrictJSONError("unicode", "a string is not valid Unicode") from None


def _refuse_floats(value: object) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            raise TypeError("canonical JSON has no floats")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


_ASCII_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)
_UTF8_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# The C encoder json.dumps itself uses, built once instead of per call (the envelope encodes
# once per committed field). No circular-reference markers: values are decoded JSON or model
# dumps, and a cycle still fails, as RecursionError.
_MAKE_ENCODER: Callable[..., Callable[[Any, int], Iterable[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)
_ENCODE_ASCII = (
    None
    if _MAKE_ENCODER is None
    else _MAKE_ENCODER(
        None, _ASCII_ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",",
        True, False, False,
    )
)  # fmt: skip
_ENCODE_UTF8 = (
    None
    if _MAKE_ENCODER is None
    else _MAKE_ENCODER(
        None, _UTF8_ENCODER.default, json.encoder.encode_basestring, None, ":", ",",
        True, False, False,
    )
)  # fmt: skip
