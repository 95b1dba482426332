"""The body's canonical bytes are assembled from the committed fields' encodings, on both
sides: the assembly equals a full canonical encoding, and opening still accepts only the one
exact canonical form."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import errors
from broker.envelope._content import Body, compose_message, encode_fields, open_body
from broker.envelope._format import canonical_json
from broker.envelope._header import top_level_fields

NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(NAMES, VALUES, max_size=5).flatmap(
    lambda top: st.one_of(
        st.just(top),
        st.dictionaries(NAMES, VALUES, max_size=5).map(lambda body: {**top, "body": body}),
    )
)


@given(document=DOCUMENTS)
def test_the_assembled_message_is_its_canonical_json(document: dict[str, Any]) -> None:
    """Assembling from per-field encodings gives canonical_json(document) byte for byte."""
    encoded = encode_fields(top_level_fields(document))
    assert compose_message(document, encoded) == canonical_json(document)


def test_a_top_level_key_spelled_like_a_body_path_is_not_assembled() -> None:
    """``body.x`` at the top and ``x`` in body share one path: no assembly (the caller then
    encodes the whole message)."""
    document = {"body": {"x": 1}, "body.x": 2}
    assert compose_message(document, encode_fields(top_level_fields(document))) is None


def _body() -> Body:
    message = {"type": "t", "body": {"a": [1, "é"], "b": {"c": None}}}
    salts = {path: bytes([i]) * 16 for i, path in enumerate(top_level_fields(message))}
    return Body(message=message, salts=salts, content_key=b"\x07" * 32)


def test_a_canonical_body_opens_with_its_fields_and_message_bytes() -> None:
    """The exact bytes Body.to_bytes writes open to the same body, fields and message JSON."""
    body = _body()
    opened = open_body(body.to_bytes())
    assert opened.body == body
    assert opened.fields == top_level_fields(body.message)
    assert opened.message_json == canonical_json(body.message)


@pytest.mark.parametrize(
    "edit",
    [
        lambda b: b.replace(b'"key":', b'"key": ', 1),  # whitespace
        lambda b: b.replace(b'"a":[1,', b'"a":[1e0,', 1),  # another spelling of a number
        lambda b: b.replace("é".encode(), b"\\u00e9", 1),  # an escape for a character
        lambda b: b.replace(b'{"a":', b'{"a":0,"a":', 1),  # a duplicate key
        lambda b: b.replace(b'"b":{"c":null}', b'"b":{"c":NaN}', 1),  # NaN
        lambda b: b[:-1] + b',"zz":1}',  # an extra top-level member
        lambda b: b.replace(b"0707", b"0707".upper().replace(b"07", b"0A"), 1),  # hex case
    ],
    ids=["whitespace", "number", "escaped", "duplicate", "nan", "extra", "hex"],
)
def test_any_other_spelling_of_a_body_is_refused(edit: Any) -> None:
    """Anything but the one canonical form is the opaque VerificationError."""
    data = _body().to_bytes()
    edited = edit(data)
    assert edited != data
    with pytest.raises(errors.VerificationError):
        open_body(edited)
