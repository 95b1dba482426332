"""broker.strictjson: the one strict JSON parser and canonical encoder under every wire format."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import strictjson

# name -> (bytes, allow_floats, reason loads must give)
REFUSED: dict[str, tuple[bytes, bool, strictjson.Reason]] = {
    "bad UTF-8": (b'{"a":"\xc3"}', True, "utf-8"),
    "not JSON": (b"{not json", True, "syntax"),
    "empty": (b"", True, "syntax"),
    "trailing data": (b"{} {}", True, "syntax"),
    "integer past the digit limit": (b"9" * 5000, True, "syntax"),
    "duplicate key": (b'{"a":1,"a":1}', True, "duplicate"),
    "nested duplicate key": (b'[{"b":{"a":1,"a":2}}]', True, "duplicate"),
    "a float": (b'{"a":1.5}', False, "number"),
    "an exponent": (b"[1e3]", False, "number"),
    "NaN": (b'{"a":NaN}', True, "number"),
    "NaN, integers only": (b'{"a":NaN}', False, "number"),
    "-Infinity": (b"[-Infinity]", True, "number"),
    "a float too large to be finite": (b"[1e999]", True, "number"),
    "too deep": (b"[" * 5 + b"]" * 5, True, "depth"),
    "near the recursion limit": (b"[" * 100_000 + b"]" * 100_000, True, "depth"),
    "lone surrogate value": (b'{"a":"\\ud800"}', True, "unicode"),
    "lone surrogate key": (b'{"\\udfff":1}', True, "unicode"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_loads_refuses_ambiguous_input_with_a_reason(case: str) -> None:
    """Every refusal is a StrictJSONError (a ValueError) that says which rule it broke."""
    data, allow_floats, reason = REFUSED[case]
    with pytest.raises(strictjson.StrictJSONError) as caught:
        strictjson.loads(data, max_depth=4, allow_floats=allow_floats)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


ACCEPTED: dict[str, tuple[bytes, bool, Any]] = {
    "exactly at the depth limit": (b'[[[{"a":1}]]]', False, [[[{"a": 1}]]]),
    "a finite float when allowed": (b'{"a":-1.5e3}', True, {"a": -1500.0}),
    "whitespace and any key order": (b'{ "b" : 1 , "a" : [ ] }', False, {"a": [], "b": 1}),
    "a paired surrogate escape": (b'"\\ud83d\\ude00"', False, "\U0001f600"),
    "a scalar at the top": (b"7", False, 7),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_loads_accepts_unambiguous_input(case: str) -> None:
    """Strictness refuses only ambiguity: plain JSON within the limits parses as usual."""
    data, allow_floats, expected = ACCEPTED[case]
    assert strictjson.loads(data, max_depth=4, allow_floats=allow_floats) == expected


CANONICAL: dict[str, tuple[object, bool, bytes]] = {
    "sorted, compact, UTF-8": (
        {"é": "Đ", "a": [True, None]}, False, '{"a":[true,null],"é":"Đ"}'.encode()
    ),
    "sorted, compact, ASCII": ({"é": "Đ", "a": (1,)}, True, b'{"a":[1],"\\u00e9":"\\u0110"}'),
    "escapes JSON requires": ("x\ny\"\\", False, b'"x\\ny\\"\\\\"'),
    "DEL escaped in ASCII only": ({"\x7f": "\x7f"}, True, b'{"\\u007f":"\\u007f"}'),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CANONICAL))
def test_canonical_known_answers(case: str) -> None:
    """The two spellings differ only in how non-ASCII characters are written."""
    value, ascii_only, expected = CANONICAL[case]
    assert strictjson.canonical(value, ascii_only=ascii_only) == expected


def test_canonical_refuses_what_has_no_single_form() -> None:
    """Floats unless allowed (TypeError), NaN always (ValueError), lone surrogates in UTF-8."""
    with pytest.raises(TypeError, match="no floats"):
        strictjson.canonical({"a": [1.5]})
    assert strictjson.canonical([1.5], allow_floats=True) == b"[1.5]"
    with pytest.raises(ValueError, match="Out of range float"):
        strictjson.canonical([float("nan")], allow_floats=True)
    with pytest.raises(UnicodeEncodeError):
        strictjson.canonical("\ud800")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON, st.booleans())
def test_canonical_matches_json_dumps_and_round_trips(value: object, ascii_only: bool) -> None:
    """Byte for byte what json.dumps gives with the same options; loads inverts it, except
    that a lone surrogate (hypothesis text may hold one) has no UTF-8 form and is refused."""
    options: dict[str, Any] = {"sort_keys": True, "separators": (",", ":")}
    try:
        json.dumps(value, ensure_ascii=False, **options).encode("utf-8")
        lone_surrogate = False
    except UnicodeEncodeError:
        lone_surrogate = True
    if lone_surrogate and not ascii_only:
        with pytest.raises(UnicodeEncodeError):
            strictjson.canonical(value, ascii_only=False)
        return
    encoded = strictjson.canonical(value, ascii_only=ascii_only)
    assert encoded == json.dumps(value, ensure_ascii=ascii_only, **options).encode("utf-8")
    if lone_surrogate:
        with pytest.raises(strictjson.StrictJSONError, match="not valid Unicode"):
            strictjson.loads(encoded, max_depth=64, allow_floats=False)
    else:
        assert strictjson.loads(encoded, max_depth=64, allow_floats=False) == value


# JSON texts as a sender could spell them: any spacing, escapes, duplicate keys, floats,
# integers past 64 bits, NaN, deep nesting, and the colon escape the fast path counts around.
_SPACE = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])
_CHAR = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")).map(
        lambda c: c.replace("\\", "\\\\").replace('"', '\\"')
    ),
    st.sampled_from(["\\u003a", "\\u003A", ":", "\\n", "\\ud83d\\ude00", "\\ud800", "\\/"]),
)
_STRING = st.lists(_CHAR, max_size=6).map(lambda chars: '"' + "".join(chars) + '"')
_NUMBER = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e999", "-1E400", "1e-400", "-0", "0.0", "1.5e3", "NaN", "-Infinity"]),
)


def _container(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    array = st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
    keys = st.sampled_from(['"a"', '"b"', '"a:b"', '"\\u0061"']) | _STRING
    members = st.lists(st.tuples(keys, _SPACE, inner), max_size=4).map(
        lambda pairs: "{" + ",".join(f"{k}{s}:{s}{v}" for k, s, v in pairs) + "}"
    )
    return array | members


_TEXT = st.recursive(
    _STRING | _NUMBER | st.sampled_from(["true", "false", "null"]), _container, max_leaves=12
)


def _outcome(parse: Any, data: bytes, max_depth: int, allow_floats: bool) -> object:
    try:
        return ("value", parse(data, max_depth=max_depth, allow_floats=allow_floats))
    except strictjson.StrictJSONError as exc:
        return ("refused", exc.reason, str(exc))


@given(_TEXT, _SPACE, st.integers(0, 6), st.booleans())
def test_loads_answers_exactly_as_the_standard_library_path(
    text: str, space: str, max_depth: int, allow_floats: bool
) -> None:
    """The orjson fast path never changes an answer: the same value (floats and integers
    exactly, compared by repr), or the same refusal with the same reason and wording."""
    data = (space + text + space).encode("utf-8", "surrogatepass")
    fast = _outcome(strictjson.loads, data, max_depth, allow_floats)
    standard = _outcome(strictjson._standard_loads, data, max_depth, allow_floats)
    assert repr(fast) == repr(standard)


def _values(floats: st.SearchStrategy[float]) -> st.SearchStrategy[object]:
    return st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | floats | st.text(),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.lists(inner, max_size=4).map(tuple)
            | st.dictionaries(st.text(), inner, max_size=4)
        ),
        max_leaves=20,
    )


_VALUE = _values(st.floats())
#: what loads() can return: no NaN, no infinity
_DECODED = _values(st.floats(allow_nan=False, allow_infinity=False))


@given(_VALUE, st.booleans())
def test_canonical_is_byte_identical_to_the_standard_encoder(
    value: object, ascii_only: bool
) -> None:
    """With floats (NaN and infinities too) and integers of any size, both spellings: the
    exact bytes json.dumps gives with the canonical options, or the same refusal."""
    expected: object
    try:
        expected = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only, allow_nan=False
        ).encode("utf-8")
    except ValueError as exc:  # NaN or an infinity; a lone surrogate in the UTF-8 form
        expected = type(exc)
    try:
        encoded: object = strictjson.canonical(value, ascii_only=ascii_only, allow_floats=True)
    except ValueError as exc:
        encoded = type(exc)
    assert encoded == expected


@given(_DECODED)
def test_encode_is_json_that_loads_back_to_the_same_value(value: object) -> None:
    """encode() is for another parser: any valid JSON of the value (floats exactly, integers
    of any size), though not the canonical bytes."""
    try:
        encoded = strictjson.encode(value)
    except (TypeError, UnicodeEncodeError):
        return  # a lone surrogate (hypothesis text may hold one) has no UTF-8 form
    assert repr(json.loads(encoded)) == repr(json.loads(json.dumps(value)))
