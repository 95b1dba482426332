"""Encrypted PKCS#8 PEM in and out, shared by signing and KEM keys.

A hybrid key is stored as two PEM blocks in a fixed order; a classic key as one.
"""

from __future__ import annotations

import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from broker import errors

__all__ = ["dump_private", "load_private_blocks"]

_BLOCK_RE = re.compile(
    rb"-----BEGIN ENCRYPTED PRIVATE KEY-----\r?\n.+?\r?\n-----END ENCRYPTED PRIVATE KEY-----",
    re.DOTALL,
)
_MAX_PEM_BYTES = 64 * 1024


def dump_private(key: PrivateKeyTypes, *, passphrase: bytes) -> bytes:
    """One encrypted PKCS#8 PEM block for ``key``; an empty passphrase is refused."""
    if not passphrase:
        raise errors.UsageError("a private key needs a non-empty passphrase")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def load_private_blocks(data: bytes, *, passphrase: bytes) -> list[PrivateKeyTypes]:
    """Decrypt one or two encrypted PKCS#8 blocks; anything else is a KeyTrustError.

    The file must hold complete blocks and nothing else, so a truncated hybrid key cannot
    quietly load as its first, classic half.
    """
    if len(data) > _MAX_PEM_BYTES:
        raise errors.KeyTrustError("private key file is too large")
    blocks = _BLOCK_RE.findall(data)
    if not 1 <= len(blocks) <= 2 or _BLOCK_RE.sub(b"", data).strip():
        raise errors.KeyTrustError("not one or two complete encrypted PKCS#8 PEM blocks")
    keys: list[PrivateKeyTypes] = []
    for block in blocks:
        try:
            keys.append(serialization.load_pem_private_key(block, password=passphrase))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # One sentence for every cause: the wrong passphrase and a corrupt file look alike
            # (and a key in a cipher or algorithm this OpenSSL does not offer is no better).
            raise errors.KeyTrustError(
                "cannot decrypt private key (wrong passphrase or corrupt file)"
            ) from exc
    return keys
