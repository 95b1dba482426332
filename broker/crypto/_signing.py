"""Signing keys: Ed25519 (classic) or Ed25519 + ML-DSA-65 (pq-hybrid, both must verify)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from broker import errors
from broker.crypto._pem import dump_private, load_private_blocks
from broker.crypto._points import ED25519_ORDER, ed25519_key_problem, is_small_order_encoding
from broker.crypto._primitives import sha256
from broker.crypto._suite import Suite
from broker.ids import KeyId

__all__ = ["SigningKey", "VerifyKey"]

_ED25519_PUBLIC = 32
_ED25519_SIGNATURE = 64
_MLDSA65_PUBLIC = 1952
_MLDSA65_SIGNATURE = 3309
# ML-DSA's context string ties its half of a hybrid signature to this combination, so the
# ML-DSA half cannot be lifted out and presented as a standalone signature elsewhere.
_MLDSA_CONTEXT = b"broker hybrid signature: Ed25519 + ML-DSA-65"


def key_id_of(public_bytes: bytes) -> KeyId:
    """Lowercase hex SHA-256 of the encoded public key, first 32 characters."""
    return KeyId(sha256(public_bytes).hex()[:32])


class VerifyKey:
    """A public signing key; :meth:`verify` raises the opaque VerificationError on any failure.

    Its Ed25519 half is always the canonical encoding of a point of prime order: a weak key
    (small-order, not in the subgroup, non-canonical) is refused with KeyTrustError when the
    object is made, whichever way it is made (``broker.crypto._points`` says why).
    """

    __slots__ = ("_ed", "_mldsa", "_raw", "_suite")

    def __init__(
        self,
        suite: Suite,
        ed: ed25519.Ed25519PublicKey,
        ml: mldsa.MLDSA65PublicKey | None,
    ) -> None:
        raw = ed.public_bytes_raw()
        problem = ed25519_key_problem(raw)
        if problem is not None:
            raise errors.KeyTrustError(f"the Ed25519 public key {problem}")
        self._suite = suite
        self._ed = ed
        self._mldsa = ml
        if ml is not None:
            raw += ml.public_bytes_raw()
        self._raw = raw

    @property
    def suite(self) -> Suite:
        """The suite this key belongs to."""
        return self._suite

    @property
    def key_id(self) -> KeyId:
        """The key's id: hex SHA-256 of :meth:`to_bytes`, first 32 characters."""
        return key_id_of(self._raw)

    def to_bytes(self) -> bytes:
        """Raw Ed25519 public key (32 B), followed for pq-hybrid by the ML-DSA-65 key (1952 B)."""
        return self._raw

    @classmethod
    def from_bytes(cls, suite: Suite, data: bytes) -> VerifyKey:
        """Decode :meth:`to_bytes` output; a wrong length or invalid point is a KeyTrustError."""
        expected = _ED25519_PUBLIC + (_MLDSA65_PUBLIC if suite is Suite.PQ_HYBRID else 0)
        if len(data) != expected:
            raise errors.KeyTrustError(f"a {suite} verify key is {expected} bytes, got {len(data)}")
        try:
            ed = ed25519.Ed25519PublicKey.from_public_bytes(data[:_ED25519_PUBLIC])
            ml = (
                mldsa.MLDSA65PublicKey.from_public_bytes(data[_ED25519_PUBLIC:])
                if suite is Suite.PQ_HYBRID
                else None
            )
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise errors.KeyTrustError(f"not a valid {suite} verify key") from exc
        return cls(suite, ed, ml)

    def verify(self, *, signature: bytes, message: bytes) -> None:
        """Return if ``signature`` is valid over ``message``, else raise VerificationError."""
        if not self._signature_is_valid(signature, message):
            raise errors.VerificationError("signature does not verify")

    def ed25519_bytes(self) -> bytes:
        """The 32-byte Ed25519 public key alone (for a pq-hybrid key, its Ed25519 half)."""
        return self._raw[:_ED25519_PUBLIC]

    def verify_ed25519(self, *, signature: bytes, message: bytes) -> None:
        """Check a plain Ed25519 ``signature`` by this key's Ed25519 half, else raise
        VerificationError.

        Only for formats other parties define to be Ed25519 alone (C2SP signed notes and
        cosignatures, docs/AUDIT.md): everything of our own uses :meth:`verify`.
        """
        if len(signature) != _ED25519_SIGNATURE:
            raise errors.VerificationError("signature does not verify")
        try:
            self._ed.verify(signature, message)
        except (InvalidSignature, ValueError):
            raise errors.VerificationError("signature does not verify") from None

    def _signature_is_valid(self, signature: bytes, message: bytes) -> bool:
        expected = _ED25519_SIGNATURE + (0 if self._mldsa is None else _MLDSA65_SIGNATURE)
        if len(signature) != expected:
            return False
        # Defence in depth, whatever OpenSSL accepts: a key or a signature's R that is a
        # small-order point proves nothing (R = identity and S = 0 "verify" under the identity
        # key), and S must be reduced below L (RFC 8032's malleability check).
        if is_small_order_encoding(self._raw[:_ED25519_PUBLIC]) or is_small_order_encoding(
            signature[:32]
        ):
            return False
        if int.from_bytes(signature[32:_ED25519_SIGNATURE], "little") >= ED25519_ORDER:
            return False
        try:
            self._ed.verify(signature[:_ED25519_SIGNATURE], message)
            # Both halves must verify: a hybrid stays secure while either algorithm stands.
            if self._mldsa is not None:
                self._mldsa.verify(signature[_ED25519_SIGNATURE:], message, _MLDSA_CONTEXT)
        except (InvalidSignature, ValueError):
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifyKey):
            return NotImplemented
        return self._suite is other._suite and self._raw == other._raw

    def __hash__(self) -> int:
        return hash((self._suite, self._raw))

    def __repr__(self) -> str:
        return f"VerifyKey({self._suite}, key_id={self.key_id})"


class SigningKey:
    """A private signing key. Never logged: its repr shows only the suite and key id."""

    __slots__ = ("_ed", "_mldsa", "_public", "_suite")

    def __init__(
        self,
        suite: Suite,
        ed: ed25519.Ed25519PrivateKey,
        ml: mldsa.MLDSA65PrivateKey | None,
    ) -> None:
        if (suite is Suite.PQ_HYBRID) != (ml is not None):
            raise errors.KeyTrustError(f"key material does not match suite {suite}")
        self._suite = suite
        self._ed = ed
        self._mldsa = ml
        self._public = VerifyKey(suite, ed.public_key(), None if ml is None else ml.public_key())

    @classmethod
    def generate(cls, suite: Suite) -> SigningKey:
        """A fresh key pair for ``suite``."""
        ml = mldsa.MLDSA65PrivateKey.generate() if suite is Suite.PQ_HYBRID else None
        return cls(suite, ed25519.Ed25519PrivateKey.generate(), ml)

    @classmethod
    def _from_seeds(
        cls, suite: Suite, *, ed25519_seed: bytes, mldsa_seed: bytes = b""
    ) -> SigningKey:
        """Deterministic keys for known-answer tests (32-byte seeds)."""
        ed = ed25519.Ed25519PrivateKey.from_private_bytes(ed25519_seed)
        ml = (
            mldsa.MLDSA65PrivateKey.from_seed_bytes(mldsa_seed)
            if suite is Suite.PQ_HYBRID
            else None
        )
        return cls(suite, ed, ml)

    @property
    def suite(self) -> Suite:
        """The suite this key belongs to."""
        return self._suite

    @property
    def signature_size(self) -> int:
        """The length of every signature this key makes: 64 (classic) or 64 + 3,309 bytes."""
        return _ED25519_SIGNATURE + (0 if self.suite is Suite.CLASSIC else _MLDSA65_SIGNATURE)

    def public_key(self) -> VerifyKey:
        """The matching public key."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 B), followed for pq-hybrid by ML-DSA-65's (3309 B)."""
        signature = self._ed.sign(message)
        if self._mldsa is not None:
            signature += self._mldsa.sign(message, _MLDSA_CONTEXT)
        return signature

    def sign_ed25519(self, message: bytes) -> bytes:
        """A plain Ed25519 signature (64 B) by this key's Ed25519 half; see
        :meth:`VerifyKey.verify_ed25519` for where this and only this is used."""
        return self._ed.sign(message)

    def to_pem(self, *, passphrase: bytes) -> bytes:
        """Encrypted PKCS#8 PEM: one block (Ed25519), or two (Ed25519 then ML-DSA-65)."""
        pem = dump_private(self._ed, passphrase=passphrase)
        if self._mldsa is not None:
            pem += dump_private(self._mldsa, passphrase=passphrase)
        return pem

    @classmethod
    def from_pem(cls, data: bytes, *, passphrase: bytes) -> SigningKey:
        """Load :meth:`to_pem` output; a wrong passphrase or garbage is a KeyTrustError."""
        blocks = load_private_blocks(data, passphrase=passphrase)
        if len(blocks) == 1 and isinstance(blocks[0], ed25519.Ed25519PrivateKey):
            return cls(Suite.CLASSIC, blocks[0], None)
        if (
            len(blocks) == 2
            and isinstance(blocks[0], ed25519.Ed25519PrivateKey)
            and isinstance(blocks[1], mldsa.MLDSA65PrivateKey)
        ):
            return cls(Suite.PQ_HYBRID, blocks[0], blocks[1])
        raise errors.KeyTrustError("not a signing key (Ed25519, or Ed25519 + ML-DSA-65)")

    def __repr__(self) -> str:
        return f"SigningKey({self._suite}, key_id={self._public.key_id})"
