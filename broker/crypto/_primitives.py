"""Hashing, MACs, comparison and randomness: the small primitives every layer above uses."""

from __future__ import annotations

import hashlib
import hmac
import os

__all__ = ["constant_time_equal", "hmac_sha256", "random_bytes", "sha256"]


def sha256(data: bytes) -> bytes:
    """The 32-byte SHA-256 digest of ``data``."""
    # hashlib (OpenSSL underneath) costs a third of a cryptography Hash object per call, and
    # envelopes hash a digest per committed field.
    return hashlib.sha256(data).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """The 32-byte HMAC-SHA256 of ``data`` under ``key``."""
    return hmac.new(key, data, hashlib.sha256).digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time that does not depend on where they differ."""
    return hmac.compare_digest(a, b)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the operating system's CSPRNG."""
    if n < 0:
        raise ValueError("n must not be negative")
    return os.urandom(n)
