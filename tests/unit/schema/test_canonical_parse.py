"""The quick parse for bytes already in canonical form gives exactly what the full strict
parser gives: the same model for every valid message, the same SchemaError text for every
invalid one; and the message object the envelope commits is what the canonical bytes encode."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import errors
from broker.envelope._format import canonical_json
from broker.schema import MAX_DEPTH, message_bytes, parse_message
from broker.schema.wire import _nested_deeper_than, message_object, parse_canonical_message

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[3] / "schemas/examples").glob("*.json"))


def _example(path: pathlib.Path) -> dict[str, Any]:
    document = json.loads(message_bytes(parse_message(path.read_bytes())))
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_parses_to_the_same_model(path: pathlib.Path) -> None:
    """Each example message type: same model, same canonical bytes, by either parser."""
    document = _example(path)
    data = canonical_json(document)
    quick = parse_canonical_message(data, document)
    assert quick == parse_message(data)
    assert message_bytes(quick) == message_bytes(parse_message(path.read_bytes()))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_message_object_is_what_the_canonical_bytes_encode(path: pathlib.Path) -> None:
    """message_object(m) equals json.loads(message_bytes(m)): nothing lost by skipping the
    encode-and-decode round trip."""
    message = parse_message(path.read_bytes())
    assert message_object(message) == json.loads(message_bytes(message))


def _nest(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def _invalid(name: str) -> dict[str, Any]:
    document = _example(EXAMPLES[0])
    match name:
        case "too-deep":
            document["body"] = {**document["body"], "extra": _nest(MAX_DEPTH)}
        case "unknown-type":
            document["type"] = "no.such.type"
        case "type-not-a-string":
            document["type"] = ["network.report"]
        case "version-a-boolean":
            document["schema_version"] = True
        case "unsupported-version":
            document["schema_version"] = 99
        case "unknown-field":
            document["colour"] = "red"
        case "wrong-value":
            document["tlp"] = "PLAID"
    return document


@pytest.mark.parametrize(
    "name",
    [
        "too-deep",
        "unknown-type",
        "type-not-a-string",
        "version-a-boolean",
        "unsupported-version",
        "unknown-field",
        "wrong-value",
    ],
)
def test_an_invalid_message_gets_the_full_parsers_error(name: str) -> None:
    """Same SchemaError, word for word, as parse_message."""
    document = _invalid(name)
    data = canonical_json(document)
    with pytest.raises(errors.SchemaError) as full:
        parse_message(data)
    with pytest.raises(errors.SchemaError) as quick:
        parse_canonical_message(data, document)
    assert str(quick.value) == str(full.value)


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(alphabet='ab[]{}"\\\n\u00e9', max_size=6),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='k[{"\\', max_size=3), inner, max_size=3)
    ),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(value=JSON_VALUES, limit=st.integers(min_value=0, max_value=12), ascii_only=st.booleans())
def test_the_nesting_check_counts_levels_outside_strings(
    value: Any, limit: int, ascii_only: bool
) -> None:
    """Brackets and escaped quotes inside strings do not count; objects and arrays do."""
    data = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    assert _nested_deeper_than(data, limit) == (_depth(value) > limit)
