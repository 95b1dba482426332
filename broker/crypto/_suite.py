"""The algorithm suites an envelope can name; there is no negotiation and no third option."""

from __future__ import annotations

import enum

__all__ = ["Suite"]


class Suite(enum.StrEnum):
    """A fixed bundle of algorithms, chosen per accord.

    ``classic``: HPKE(DHKEM X25519, HKDF-SHA256, ChaCha20-Poly1305) and Ed25519 signatures.
    ``pq-hybrid``: HPKE(ML-KEM-768+X25519, HKDF-SHA256, ChaCha20-Poly1305) and Ed25519 plus
    ML-DSA-65 signatures, both of which must verify.
    """

    CLASSIC = "classic"
    PQ_HYBRID = "pq-hybrid"
