"""KEM keys and single-shot HPKE (RFC 9180 base mode) for one recipient.

classic: DHKEM(X25519, HKDF-SHA256); pq-hybrid: ML-KEM-768+X25519 (X-Wing). Both with
HKDF-SHA256 and ChaCha20-Poly1305. Context is bound through ``info``; the installed HPKE API
has no ``aad`` argument.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from broker import errors
from broker.crypto._pem import dump_private, load_private_blocks
from broker.crypto._points import x25519_key_problem
from broker.crypto._signing import key_id_of
from broker.crypto._suite import Suite
from broker.ids import KeyId

__all__ = ["DecryptionKey", "EncryptionKey", "hpke_open", "hpke_seal"]

_X25519_PUBLIC = 32
_MLKEM768_PUBLIC = 1184

_HPKE_SUITES = {
    Suite.CLASSIC: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305),
    Suite.PQ_HYBRID: hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
    ),
}
#: encapsulated-key length + Poly1305 tag: the smallest possible sealed output per suite
_MIN_SEALED = {
    Suite.CLASSIC: hpke.KEM.X25519.enc_length() + 16,
    Suite.PQ_HYBRID: hpke.KEM.MLKEM768_X25519.enc_length() + 16,
}


class EncryptionKey:
    """A recipient's public KEM key.

    Its X25519 part is never of low order nor non-canonically encoded: such a key is refused
    with KeyTrustError when the object is made (sealing to it would share a known secret).
    """

    __slots__ = ("_hpke_key", "_raw", "_suite")

    def __init__(
        self, suite: Suite, x: x25519.X25519PublicKey, ml: mlkem.MLKEM768PublicKey | None
    ) -> None:
        problem = x25519_key_problem(x.public_bytes_raw())
        if problem is not None:
            raise errors.KeyTrustError(f"the X25519 public key {problem}")
        self._suite = suite
        self._hpke_key: x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
        if ml is None:
            self._hpke_key = x
            self._raw = x.public_bytes_raw()
        else:
            self._hpke_key = hpke.MLKEM768X25519PublicKey(ml, x)
            self._raw = ml.public_bytes_raw() + x.public_bytes_raw()

    @property
    def suite(self) -> Suite:
        """The suite this key belongs to."""
        return self._suite

    @property
    def key_id(self) -> KeyId:
        """The key's id: hex SHA-256 of :meth:`to_bytes`, first 32 characters."""
        return key_id_of(self._raw)

    def to_bytes(self) -> bytes:
        """Raw X25519 key (32 B); for pq-hybrid, ML-KEM-768 (1184 B) then X25519 (32 B)."""
        return self._raw

    @classmethod
    def from_bytes(cls, suite: Suite, data: bytes) -> EncryptionKey:
        """Decode :meth:`to_bytes` output; a wrong length or bad key is a KeyTrustError."""
        ml_len = _MLKEM768_PUBLIC if suite is Suite.PQ_HYBRID else 0
        if len(data) != ml_len + _X25519_PUBLIC:
            raise errors.KeyTrustError(
                f"a {suite} encryption key is {ml_len + _X25519_PUBLIC} bytes, got {len(data)}"
            )
        try:
            ml = mlkem.MLKEM768PublicKey.from_public_bytes(data[:ml_len]) if ml_len else None
            x = x25519.X25519PublicKey.from_public_bytes(data[ml_len:])
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise errors.KeyTrustError(f"not a valid {suite} encryption key") from exc
        return cls(suite, x, ml)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EncryptionKey):
            return NotImplemented
        return self._suite is other._suite and self._raw == other._raw

    def __hash__(self) -> int:
        return hash((self._suite, self._raw))

    def __repr__(self) -> str:
        return f"EncryptionKey({self._suite}, key_id={self.key_id})"


class DecryptionKey:
    """A recipient's private KEM key. Never logged: its repr shows only the suite and key id."""

    __slots__ = ("_hpke_key", "_ml", "_public", "_suite", "_x")

    def __init__(
        self, suite: Suite, x: x25519.X25519PrivateKey, ml: mlkem.MLKEM768PrivateKey | None
    ) -> None:
        if (suite is Suite.PQ_HYBRID) != (ml is not None):
            raise errors.KeyTrustError(f"key material does not match suite {suite}")
        self._suite = suite
        self._x = x
        self._ml = ml
        self._hpke_key: x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey = (
            x if ml is None else hpke.MLKEM768X25519PrivateKey(ml, x)
        )
        self._public = EncryptionKey(suite, x.public_key(), None if ml is None else ml.public_key())

    @classmethod
    def generate(cls, suite: Suite) -> DecryptionKey:
        """A fresh key pair for ``suite``."""
        ml = mlkem.MLKEM768PrivateKey.generate() if suite is Suite.PQ_HYBRID else None
        return cls(suite, x25519.X25519PrivateKey.generate(), ml)

    @classmethod
    def _from_seeds(
        cls, suite: Suite, *, x25519_private: bytes, mlkem_seed: bytes = b""
    ) -> DecryptionKey:
        """Deterministic keys for known-answer tests (32-byte X25519 key, 64-byte ML-KEM seed)."""
        x = x25519.X25519PrivateKey.from_private_bytes(x25519_private)
        ml = (
            mlkem.MLKEM768PrivateKey.from_seed_bytes(mlkem_seed)
            if suite is Suite.PQ_HYBRID
            else None
        )
        return cls(suite, x, ml)

    @property
    def suite(self) -> Suite:
        """The suite this key belongs to."""
        return self._suite

    @property
    def key_id(self) -> KeyId:
        """The id of the matching public key."""
        return self._public.key_id

    def public_key(self) -> EncryptionKey:
        """The matching public key."""
        return self._public

    def to_pem(self, *, passphrase: bytes) -> bytes:
        """Encrypted PKCS#8 PEM: one block (X25519), or two (ML-KEM-768 then X25519)."""
        pem = b"" if self._ml is None else dump_private(self._ml, passphrase=passphrase)
        return pem + dump_private(self._x, passphrase=passphrase)

    @classmethod
    def from_pem(cls, data: bytes, *, passphrase: bytes) -> DecryptionKey:
        """Load :meth:`to_pem` output; a wrong passphrase or garbage is a KeyTrustError."""
        blocks = load_private_blocks(data, passphrase=passphrase)
        if len(blocks) == 1 and isinstance(blocks[0], x25519.X25519PrivateKey):
            return cls(Suite.CLASSIC, blocks[0], None)
        if (
            len(blocks) == 2
            and isinstance(blocks[0], mlkem.MLKEM768PrivateKey)
            and isinstance(blocks[1], x25519.X25519PrivateKey)
        ):
            return cls(Suite.PQ_HYBRID, blocks[1], blocks[0])
        raise errors.KeyTrustError("not a decryption key (X25519, or ML-KEM-768 + X25519)")

    def __repr__(self) -> str:
        return f"DecryptionKey({self._suite}, key_id={self.key_id})"


def hpke_seal(recipient: EncryptionKey, plaintext: bytes, *, info: bytes) -> bytes:
    """HPKE base-mode single-shot seal: encapsulated key || AEAD ciphertext and tag."""
    # The suite's HPKE object is chosen by the key itself, so a caller cannot mix suites.
    try:
        return _HPKE_SUITES[recipient.suite].encrypt(plaintext, recipient._hpke_key, info=info)
    except ValueError as exc:
        # OpenSSL refuses a shared secret of all zeros; EncryptionKey already refuses the keys
        # that make one, so this is defence in depth, and still our error, never a traceback.
        raise errors.KeyTrustError("cannot seal to this encryption key") from exc


def hpke_open(key: DecryptionKey, sealed: bytes, *, info: bytes) -> bytes:
    """Open :func:`hpke_seal` output; any failure is one opaque DecryptionError."""
    if len(sealed) < _MIN_SEALED[key.suite]:
        raise errors.DecryptionError("cannot decrypt")
    try:
        return _HPKE_SUITES[key.suite].decrypt(sealed, key._hpke_key, info=info)
    except (InvalidTag, ValueError, TypeError):
        raise errors.DecryptionError("cannot decrypt") from None
