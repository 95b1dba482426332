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

Both run first through orjson (compiled; several times faster than the standard library
here) and fall back to the standard library's parser and encoder, which define the rules, for
anything the fast path cannot vouch for. So the fast path only ever gives the same answer:
:func:`loads` takes orjson's value only when no key was dropped as a duplicate (counted
through the colons, which a ``\\u003a`` escape could hide, so such input goes the slow way),
no integer was too long for it to keep exact, no nesting comes near ``max_depth`` and, with
``allow_floats`` false, no number has a fraction or exponent; :func:`canonical` takes orjson's
bytes only when they hold no float (orjson spells floats differently, and NaN as null) and
nothing but plain JSON types went in. One difference remains where the standard encoder
refuses: with ``allow_floats``, where no walk of the value checks its types, orjson encodes a
UUID or an enum as a string; every caller passes decoded JSON or a model dumped in JSON mode,
which hold neither. Every refusal, and its wording, comes from the standard-library path.
"""

from __future__ import annotations

import json
import json.encoder
import math
import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

import orjson

__all__ = ["Reason", "StrictJSONError", "canonical", "encode", "loads"]

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
    fast = _fast_loads(data, max_depth=max_depth, allow_floats=allow_floats)
    if fast is not _UNSURE:
        return fast
    return _standard_loads(data, max_depth=max_depth, allow_floats=allow_floats)


def _standard_loads(data: bytes, *, max_depth: int, allow_floats: bool) -> Any:
    """:func:`loads` by the standard library alone: the definition the fast path keeps to."""
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
    if allow_floats:
        # No walk of the value first (it cost more than the encoding it saves): orjson's
        # bytes are taken unless they hold a number with a fraction or an exponent (orjson
        # spells floats otherwise) or a null (where orjson would have written NaN).
        encoded = _fast_canonical(value, ascii_only=ascii_only)
        if encoded is not None and b"null" not in encoded and not _FLOAT_TOKEN.search(encoded):
            return encoded
    else:
        kind = _kind(value)
        if kind == _FLOAT:
            raise TypeError("canonical JSON has no floats")
        if kind == _PLAIN and (encoded := _fast_canonical(value, ascii_only=ascii_only)):
            return encoded
    encode = _ENCODE_ASCII if ascii_only else _ENCODE_UTF8
    if encode is None:  # no C accelerator: the same bytes, more slowly
        encoder = _ASCII_ENCODER if ascii_only else _UTF8_ENCODER
        return encoder.encode(value).encode("utf-8")
    return "".join(encode(value, 0)).encode("utf-8")


def encode(value: object) -> bytes:
    """Some compact JSON encoding of a value :func:`loads` returned, for handing on to another
    parser (pydantic's): not canonical, and not for signing or comparing. Such a value holds
    no NaN or infinity (orjson would write them as null); another type is a TypeError."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # an integer past 64 bits: the standard encoder has it
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _fast_canonical(value: object, *, ascii_only: bool) -> bytes | None:
    """orjson's canonical bytes of ``value``, or None where the standard encoder must decide
    (an integer past 64 bits, a key that is not a string, a datetime, a lone surrogate...)."""
    try:
        # keys sorted by code point (the order of their UTF-8 bytes), compact, raw UTF-8
        encoded = orjson.dumps(value, option=_CANONICAL_OPTIONS)
    except orjson.JSONEncodeError:
        return None
    # the ASCII form also escapes DEL, which orjson writes raw
    if ascii_only and not (encoded.isascii() and b"\x7f" not in encoded):
        return None
    return encoded


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


_PLAIN, _FLOAT, _OTHER = "plain", "float", "other"
_CANONICAL_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
#: a number with a fraction or an exponent in orjson's compact output; a string that looks
#: like one only sends the value the slow way
_FLOAT_TOKEN = re.compile(rb"(?:^|[:,\[])-?[0-9]+[.eE]")


def _kind(value: object) -> str:
    """_FLOAT if ``value`` holds a float; else _OTHER if it holds anything but dicts, lists,
    tuples, strings, integers, booleans and None (orjson would encode some of those, a UUID
    or a datetime, where the standard encoder refuses them); else _PLAIN."""
    kind = _PLAIN
    stack = [value]
    while stack:
        item = stack.pop()
        cls = type(item)
        if cls is str or cls is int or cls is bool or item is None:
            continue  # the common leaves, told apart without isinstance
        if isinstance(item, str | int):
            continue
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, float):
            return _FLOAT
        else:
            kind = _OTHER
    return kind


#: what :func:`_fast_loads` returns when the standard-library path must decide
_UNSURE: Any = object()
#: a number with a fraction or an exponent, in orjson's indented output (numbers follow a
#: space or start a line there); a string that looks like one only sends input the slow way
_FRACTION_OR_EXPONENT = re.compile(rb"(?:^|[ \[])-?[0-9]+[.eE]", re.MULTILINE)
#: an integer orjson would read as a float (past 64 bits), or any long run of digits
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def _fast_loads(data: bytes, *, max_depth: int, allow_floats: bool) -> Any:
    """orjson's reading of ``data`` when it is certainly :func:`loads`' own, else _UNSURE."""
    if b"\\u003" in data or _LONG_DIGITS.search(data):
        return _UNSURE
    try:
        value = orjson.loads(data)  # refuses bad UTF-8, NaN, 1e999 and lone surrogates
        indented = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _UNSURE
    # Each colon outside a string separates a key from its value, and strings keep theirs:
    # fewer colons than the input had means orjson kept only the last of duplicate keys.
    if indented.count(b":") != data.count(b":"):
        return _UNSURE
    # A member nested inside n containers is indented 2n spaces: this also sends the
    # deepest documents allowed the slow way, which is only slower.
    if max_depth < 1 or b"\n" + b" " * (2 * max_depth) in indented:
        return _UNSURE
    if not allow_floats and _FRACTION_OR_EXPONENT.search(indented):
        return _UNSURE
    return value


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
