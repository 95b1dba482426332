"""Which public keys are refused before they are ever used: weak or ambiguous curve points.

OpenSSL (under ``cryptography``) takes any 32 bytes as an Ed25519 or X25519 public key. Some of
them are dangerous:

* An Ed25519 key that is a **small-order point** (order 1, 2, 4 or 8; the identity
  ``01 00..00`` among them) lets anyone forge signatures: with the identity as the key,
  ``01 00..00 || 00..00`` verifies for every message. A key with a small-order component
  (not in the prime-order subgroup) verifies differently under cofactored and cofactorless
  verifiers, so one signature could be valid for one auditor and not for another.
* An X25519 key of **low order** makes the shared secret all-zero (or one of a handful of
  values) whatever the sender's ephemeral key: nothing would be secret.
* A **non-canonical encoding** (a coordinate at or above p = 2^255 - 19, or a sign bit that
  is meaningless) names the same point as another string of bytes, so one key would have two
  key ids.

So a key enters only if it is the canonical encoding of a point of prime order L (Ed25519),
or a canonical u-coordinate that is not of low order (X25519; twist points are fine, since
X25519 clamps its scalars to multiples of the cofactor). Signatures are also refused when
their ``R`` is a small-order point, whatever the key. The arithmetic is RFC 8032's and
RFC 7748's, in Python integers: it runs when a key is decoded, never per message, except the
constant-time-irrelevant table lookup on ``R``.
"""

from __future__ import annotations

import functools

__all__ = [
    "ED25519_ORDER",
    "ed25519_key_problem",
    "is_small_order_encoding",
    "x25519_key_problem",
]

_P = 2**255 - 19
#: the order of the prime-order subgroup (RFC 8032 section 5.1)
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_SIGN_BIT = 1 << 255

# The y-coordinates of the eight points of order dividing 8, with the sign bit cleared: 1
# (the identity), p-1 (order 2), 0 (order 4), the two order-8 values, and the non-canonical
# p and p+1 that decode to 0 and 1. With the sign bit cleared, every encoding of every
# small-order point is one of these seven (libsodium's blocklist is the same seven).
_SMALL_ORDER_Y = frozenset(
    y.to_bytes(32, "little")
    for y in (
        1,
        _P - 1,
        0,
        0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7,
        0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826,
        _P,
        _P + 1,
    )
)

# X25519 u-coordinates of low order (RFC 7748 section 7 and Wycheproof's LowOrderPublic
# cases): 0, 1, p-1 and the two points of order 8. Any other encoding of these is either
# non-canonical (u >= p) or has the unused top bit set, both refused before this check.
_LOW_ORDER_U = frozenset(
    (
        0,
        1,
        _P - 1,
        0x00B8495F16056286FDB1329CEB8D09DA6AC49FF1FAE35616AEB8413B7C7AEBE0,
        0x57119FD0DD4E22D8868E1C58C45C44045BEF839C55B1D0B1248C50A3BC959C5F,
    )
)


def is_small_order_encoding(point: bytes) -> bool:
    """Whether 32 bytes encode (canonically or not) an Ed25519 point of order dividing 8."""
    if len(point) != 32:
        return False
    return bytes((*point[:31], point[31] & 0x7F)) in _SMALL_ORDER_Y


@functools.lru_cache(maxsize=1024)
def ed25519_key_problem(public: bytes) -> str | None:
    """Why ``public`` cannot be an Ed25519 verify key, or None if it is a sound one.

    Sound: 32 bytes, the canonical encoding of a point on the curve whose order is L. (Cached:
    the subgroup check is a scalar multiplication in Python, a millisecond or two, and the
    same few registry keys are decoded again on every reload.)
    """
    if len(public) != 32:
        return f"is {len(public)} bytes, not 32"
    if is_small_order_encoding(public):
        return "is a small-order point"
    encoded = int.from_bytes(public, "little")
    y, sign = encoded & (_SIGN_BIT - 1), encoded >> 255
    if y >= _P:
        return "is not a canonical encoding (y >= p)"
    x = _recover_x(y, sign)
    if x is None:
        return "is not a point on the curve"
    if not _is_identity(_scalar_multiple((x, y, 1, x * y % _P), ED25519_ORDER)):
        return "is not in the prime-order subgroup (it has a small-order component)"
    return None


def x25519_key_problem(public: bytes) -> str | None:
    """Why ``public`` cannot be an X25519 public key, or None if it is a sound one.

    Sound: 32 bytes, top bit clear, u < p, and u not of low order.
    """
    if len(public) != 32:
        return f"is {len(public)} bytes, not 32"
    u = int.from_bytes(public, "little")
    if u >= _SIGN_BIT or u >= _P:
        return "is not a canonical encoding (u >= p, or the top bit set)"
    if u in _LOW_ORDER_U:
        return "is a low-order point"
    return None


def _recover_x(y: int, sign: int) -> int | None:
    """RFC 8032 section 5.1.3 step 2-4: x from y and its sign bit, or None if none exists."""
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    vxx = v * x * x % _P
    if vxx == (-u) % _P:
        x = x * _SQRT_M1 % _P
    elif vxx != u:
        return None
    if x == 0 and sign:
        return None  # "negative zero": a second encoding of a point with x = 0
    return _P - x if x & 1 != sign else x


_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z


def _add(a: _Point, b: _Point) -> _Point:
    # RFC 8032 section 5.1.4, "add-2008-hwcd-3"
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = 2 * t1 * t2 * _D % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _scalar_multiple(point: _Point, scalar: int) -> _Point:
    result: _Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _is_identity(point: _Point) -> bool:
    x, y, z, _ = point
    return x % _P == 0 and (y - z) % _P == 0
