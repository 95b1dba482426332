"""Symmetric sealing under a caller's key: round trip, binding to aad, opaque failures."""

from __future__ import annotations

import pytest

from broker import crypto, errors

KEY = bytes(range(32))


def test_round_trip_and_fresh_nonce_each_time() -> None:
    """What is sealed opens again; sealing twice never repeats the ciphertext."""
    first = crypto.aead_seal(KEY, b"report", aad=b"id-1")
    second = crypto.aead_seal(KEY, b"report", aad=b"id-1")
    assert first != second
    assert crypto.aead_open(KEY, first, aad=b"id-1") == b"report"


@pytest.mark.parametrize(
    ("key", "aad", "mutate"),
    [
        pytest.param(bytes(32), b"id-1", lambda s: s, id="wrong key"),
        pytest.param(KEY, b"id-2", lambda s: s, id="other aad: rows cannot be swapped"),
        pytest.param(KEY, b"id-1", lambda s: s[:-1], id="truncated"),
        pytest.param(KEY, b"id-1", lambda s: s[:5], id="shorter than nonce and tag"),
        pytest.param(KEY, b"id-1", lambda s: bytes([s[0] ^ 1]) + s[1:], id="nonce bit flipped"),
    ],
)
def test_every_failure_is_one_opaque_error(key: bytes, aad: bytes, mutate: object) -> None:
    """Wrong key, wrong aad and damaged bytes all raise DecryptionError with the same text."""
    sealed = crypto.aead_seal(KEY, b"report", aad=b"id-1")
    assert callable(mutate)
    with pytest.raises(errors.DecryptionError, match=r"^the sealed data could not be opened$"):
        crypto.aead_open(key, mutate(sealed), aad=aad)


def test_a_key_of_the_wrong_length_is_refused() -> None:
    """A short key is a programming error, not something to pad."""
    with pytest.raises(errors.UsageError, match="32 bytes"):
        crypto.aead_seal(b"short", b"x", aad=b"")
