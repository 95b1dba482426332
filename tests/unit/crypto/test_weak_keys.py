"""Weak public keys never enter, and never verify or seal anything if one somehow did.

The Ed25519 cases are every encoding of the eight points of order dividing 8 (RFC 8032's
curve; the same seven y-values libsodium blocks, with and without the sign bit), encodings
with y >= p, a point off the curve and a point with a small-order component. The X25519 cases
are Wycheproof's (tests/vectors/wycheproof/x25519_test.json): its 14 distinct low-order public
keys, the all-zero key among them, and its non-canonical ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker import crypto, errors
from broker.crypto import _points

WYCHEPROOF = Path(__file__).parents[2] / "vectors" / "wycheproof"
P = 2**255 - 19
IDENTITY = bytes([1]) + bytes(31)
#: the forgery the identity key admits for every message: R = identity, S = 0
IDENTITY_FORGERY = IDENTITY + bytes(32)


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


def _with_sign(encoding: bytes) -> bytes:
    return encoding[:31] + bytes([encoding[31] | 0x80])


SMALL_ORDER_Y = {
    "identity (order 1)": _le(1),
    "order 2": _le(P - 1),
    "order 4": _le(0),
    "order 8, first": bytes.fromhex(
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
    ),
    "order 8, second": bytes.fromhex(
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"
    ),
    "order 4, non-canonical y = p": _le(P),
    "identity, non-canonical y = p + 1": _le(P + 1),
}
WEAK_ED25519 = {
    **SMALL_ORDER_Y,
    **{f"{name}, sign bit set": _with_sign(y) for name, y in SMALL_ORDER_Y.items()},
    "non-canonical y = p + 3": _le(P + 3),
    "non-canonical y = 2^255 - 1": _le(2**255 - 1),
    "not on the curve (y = 2)": _le(2),
}


def _mixed_order_key() -> bytes:
    """A real public key plus an order-8 point: valid-looking, but not in the subgroup."""
    real = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    encoded = int.from_bytes(real, "little")
    y = encoded & (2**255 - 1)
    x = _points._recover_x(y, encoded >> 255)
    torsion_y = int.from_bytes(SMALL_ORDER_Y["order 8, first"], "little")
    torsion_x = _points._recover_x(torsion_y, 0)
    assert x is not None
    assert torsion_x is not None
    mixed = _points._add((x, y, 1, x * y % P), (torsion_x, torsion_y, 1, torsion_x * torsion_y % P))
    z_inverse = pow(mixed[2], P - 2, P)
    mx, my = mixed[0] * z_inverse % P, mixed[1] * z_inverse % P
    return _le(my | (mx & 1) << 255)


def test_openssl_alone_accepts_the_identity_forgery() -> None:
    """Why the checks exist: under the identity key, R = identity and S = 0 verify anything."""
    key = ed25519.Ed25519PublicKey.from_public_bytes(IDENTITY)
    key.verify(IDENTITY_FORGERY, b"any message at all")  # does not raise


@pytest.mark.parametrize("public", WEAK_ED25519.values(), ids=WEAK_ED25519.keys())
def test_a_weak_ed25519_key_is_refused(public: bytes) -> None:
    """Every small-order, non-canonical or off-curve encoding is refused as a verify key."""
    with pytest.raises(errors.KeyTrustError, match="Ed25519 public key"):
        crypto.VerifyKey.from_bytes(crypto.Suite.CLASSIC, public)


def test_a_key_with_a_small_order_component_is_refused() -> None:
    """A point outside the prime-order subgroup would verify differently for different
    verifiers (cofactored or not), so it is refused too."""
    with pytest.raises(errors.KeyTrustError, match="prime-order subgroup"):
        crypto.VerifyKey.from_bytes(crypto.Suite.CLASSIC, _mixed_order_key())


def test_a_weak_hybrid_key_is_refused_by_its_ed25519_half() -> None:
    """The pq-hybrid verify key's Ed25519 half is checked the same way."""
    good = crypto.SigningKey.generate(crypto.Suite.PQ_HYBRID).public_key().to_bytes()
    with pytest.raises(errors.KeyTrustError, match="small-order"):
        crypto.VerifyKey.from_bytes(crypto.Suite.PQ_HYBRID, IDENTITY + good[32:])


def test_a_weak_key_cannot_be_made_by_the_constructor_either() -> None:
    """Not only from_bytes: the constructor itself refuses, so no weak VerifyKey can exist."""
    weak = ed25519.Ed25519PublicKey.from_public_bytes(IDENTITY)
    with pytest.raises(errors.KeyTrustError):
        crypto.VerifyKey(crypto.Suite.CLASSIC, weak, None)


@pytest.mark.parametrize("r", SMALL_ORDER_Y.values(), ids=SMALL_ORDER_Y.keys())
def test_a_signature_whose_r_is_small_order_never_verifies(r: bytes) -> None:
    """Defence in depth at verification: R of small order with S = 0, for a sound key."""
    key = crypto.SigningKey.generate(crypto.Suite.CLASSIC).public_key()
    with pytest.raises(errors.VerificationError):
        key.verify(signature=r + bytes(32), message=b"forged")


def test_a_signature_with_s_not_reduced_is_refused() -> None:
    """S + L is the same signature to a lax verifier; ours refuses it (RFC 8032 section 5.1.7)."""
    signing = crypto.SigningKey.generate(crypto.Suite.CLASSIC)
    good = signing.sign(b"message")
    s = int.from_bytes(good[32:], "little") + _points.ED25519_ORDER
    malleated = good[:32] + s.to_bytes(32, "little")
    signing.public_key().verify(signature=good, message=b"message")
    with pytest.raises(errors.VerificationError):
        signing.public_key().verify(signature=malleated, message=b"message")


def _x25519_cases() -> list[dict[str, Any]]:
    document = json.loads((WYCHEPROOF / "x25519_test.json").read_text())
    return [test for group in document["testGroups"] for test in group["tests"]]


_REFUSED_FLAGS = {"LowOrderPublic", "NonCanonicalPublic", "ZeroSharedSecret"}
X25519_REFUSED = sorted({t["public"] for t in _x25519_cases() if _REFUSED_FLAGS & set(t["flags"])})
X25519_LOW_ORDER = sorted({t["public"] for t in _x25519_cases() if "LowOrderPublic" in t["flags"]})
X25519_KEPT = sorted({t["public"] for t in _x25519_cases() if not _REFUSED_FLAGS & set(t["flags"])})


def test_wycheproof_lists_fourteen_low_order_x25519_keys_including_all_zero() -> None:
    """The table below is the one the issue names: 14 keys, the all-zero one among them."""
    assert len(X25519_LOW_ORDER) == 14
    assert bytes(32).hex() in X25519_LOW_ORDER


@pytest.mark.parametrize("public", X25519_REFUSED)
def test_wycheproof_low_order_and_non_canonical_x25519_keys_are_refused(public: str) -> None:
    """Low-order, all-zero-secret and non-canonical public keys never become encryption keys."""
    with pytest.raises(errors.KeyTrustError, match="X25519 public key"):
        crypto.EncryptionKey.from_bytes(crypto.Suite.CLASSIC, bytes.fromhex(public))


def test_every_other_wycheproof_x25519_key_is_accepted() -> None:
    """The checks refuse nothing else: valid keys and twist points (harmless under clamping)."""
    for public in X25519_KEPT:
        crypto.EncryptionKey.from_bytes(crypto.Suite.CLASSIC, bytes.fromhex(public))
    assert len(X25519_KEPT) > 400


def test_a_hybrid_encryption_key_with_a_low_order_x25519_half_is_refused() -> None:
    """pq-hybrid keys carry X25519 last; that half is checked like a classic key."""
    good = crypto.DecryptionKey.generate(crypto.Suite.PQ_HYBRID).public_key().to_bytes()
    with pytest.raises(errors.KeyTrustError, match="low-order"):
        crypto.EncryptionKey.from_bytes(crypto.Suite.PQ_HYBRID, good[:-32] + bytes(32))


def test_sealing_to_a_low_order_key_that_slipped_in_is_our_error() -> None:
    """Defence in depth: were a low-order key ever made (bypassing its constructor), sealing
    to it raises KeyTrustError, never OpenSSL's bare ValueError."""
    from cryptography.hazmat.primitives.asymmetric import x25519

    weak = object.__new__(crypto.EncryptionKey)
    weak._suite = crypto.Suite.CLASSIC
    weak._hpke_key = x25519.X25519PublicKey.from_public_bytes(bytes(32))
    weak._raw = bytes(32)
    with pytest.raises(errors.KeyTrustError, match="cannot seal"):
        crypto.hpke_seal(weak, b"secret", info=b"header digest")
