"""Symmetric sealing under a caller's key: ChaCha20-Poly1305 with a random nonce in front.

Used where the project holds a key of its own, such as the inbox store's per-message keys
(deleting the key is how retention shreds a message). Envelopes never use this: they are
sealed with HPKE to the recipient's public key.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from broker import errors

__all__ = ["AEAD_KEY_BYTES", "AeadSealer", "aead_open", "aead_seal"]

AEAD_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16


def aead_seal(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` (and ``aad``) under a 32-byte ``key``.

    A random 96-bit nonce is prefixed: at the volumes one key sees here (one message per key)
    a collision is out of reach.
    """
    if len(key) != AEAD_KEY_BYTES:
        raise errors.UsageError("an AEAD key is 32 bytes")
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def aead_open(key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
    """Decrypt what :func:`aead_seal` made; any failure is one opaque DecryptionError."""
    if len(key) != AEAD_KEY_BYTES or len(sealed) < _NONCE_BYTES + _TAG_BYTES:
        raise errors.DecryptionError("the sealed data could not be opened")
    try:
        return ChaCha20Poly1305(key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise errors.DecryptionError("the sealed data could not be opened") from None


class AeadSealer:
    """:func:`aead_seal` and :func:`aead_open` as an object, for stores that take a sealer."""

    def seal(self, key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
        """See :func:`aead_seal`."""
        return aead_seal(key, plaintext, aad=aad)

    def open(self, key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
        """See :func:`aead_open`."""
        return aead_open(key, sealed, aad=aad)
