"""The byte-level encodings: canonical JSON, length prefixes, signing input, framing, padding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import errors
from broker.envelope._format import (
    DST_SIGNATURE,
    MAX_BODY_BYTES,
    Frame,
    bucket_size,
    canonical_json,
    decode_frame,
    encode_frame,
    pad,
    signing_input,
    strict_json_loads,
    unpad,
)

DIGESTS = st.binary(min_size=32, max_size=32)


@given(h1=st.binary(max_size=200), d1=DIGESTS, h2=st.binary(max_size=200), d2=DIGESTS)
def test_the_signing_input_is_injective(h1: bytes, d1: bytes, h2: bytes, d2: bytes) -> None:
    """Different (header, ciphertext digest) pairs never give the same bytes to sign."""
    if (h1, d1) != (h2, d2):
        assert signing_input(h1, d1) != signing_input(h2, d2)


@given(header=st.binary(max_size=200), digest=DIGESTS)
def test_the_signing_input_layout(header: bytes, digest: bytes) -> None:
    """lp(DST) || lp(header) || lp(digest), each length a 4-byte big-endian integer."""
    expected = (
        len(DST_SIGNATURE).to_bytes(4, "big")
        + DST_SIGNATURE
        + len(header).to_bytes(4, "big")
        + header
        + (32).to_bytes(4, "big")
        + digest
    )
    assert signing_input(header, digest) == expected


@given(
    header=st.binary(max_size=300),
    ciphertext=st.binary(max_size=300),
    signature=st.binary(max_size=100),
)
def test_framing_round_trips(header: bytes, ciphertext: bytes, signature: bytes) -> None:
    """decode_frame inverts encode_frame exactly."""
    frame = Frame(header=header, ciphertext=ciphertext, signature=signature)
    assert decode_frame(encode_frame(frame)) == frame


@given(body=st.binary(max_size=5000))
def test_padding_round_trips_into_a_power_of_two(body: bytes) -> None:
    """pad() gives a power-of-two length of at least 512 that unpad() inverts."""
    padded = pad(body)
    assert len(padded) >= 512
    assert len(padded) & (len(padded) - 1) == 0
    assert unpad(padded) == body


@pytest.mark.parametrize(
    ("name", "padded"),
    [
        ("non-zero fill", pad(b"abc")[:-1] + b"\x01"),
        ("length beyond the buffer", (600).to_bytes(4, "big") + bytes(508)),
        ("bigger bucket than needed", (3).to_bytes(4, "big") + b"abc" + bytes(1024 - 7)),
        ("too short", b"\x00\x00"),
    ],
)
def test_non_canonical_padding_is_refused(name: str, padded: bytes) -> None:
    """Exactly one padded form per body; anything else is the opaque VerificationError."""
    with pytest.raises(errors.VerificationError):
        unpad(padded)


def test_a_body_beyond_the_largest_bucket_is_refused() -> None:
    """Bodies must fit the largest bucket."""
    assert bucket_size(MAX_BODY_BYTES - 4) == MAX_BODY_BYTES
    with pytest.raises(errors.EnvelopeError):
        pad(bytes(MAX_BODY_BYTES))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, None]}, b'{"a":[true,null],"b":1}'),
        ({"name": "Đorđević"}, '{"name":"Đorđević"}'.encode()),
        ("x\ny", b'"x\\ny"'),
    ],
)
def test_canonical_json(value: object, expected: bytes) -> None:
    """Sorted keys, no whitespace, ASCII with \\u escapes."""
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "data", [b'{"a":1,"a":1}', b'{"a":NaN}', b'{"a":-Infinity}', b"[" * 40 + b"]" * 40, b"\xc3"]
)
def test_strict_json_refuses_ambiguous_input(data: bytes) -> None:
    """Duplicate keys, non-finite numbers, deep nesting and bad UTF-8 are SchemaErrors."""
    with pytest.raises(errors.SchemaError):
        strict_json_loads(data, what="test")
