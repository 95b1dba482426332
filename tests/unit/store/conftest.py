"""A real AEAD for the inbox store's tests.

broker.crypto does not yet export a symmetric AEAD with caller-supplied keys; until it does,
this is ChaCha20-Poly1305 from the same library broker.crypto wraps, with the nonce prefixed,
satisfying :class:`broker.store.Sealer`.
"""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from broker import errors

_NONCE = 12


class ChaChaSealer:
    """ChaCha20-Poly1305, 96-bit random nonce prefixed to the ciphertext."""

    def seal(self, key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)

    def open(self, key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
        try:
            return ChaCha20Poly1305(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except (InvalidTag, ValueError) as exc:
            raise errors.DecryptionError("a stored message could not be decrypted") from exc


@pytest.fixture
def sealer() -> ChaChaSealer:
    return ChaChaSealer()
