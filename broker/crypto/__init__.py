"""The only package that imports ``cryptography``: keys, signatures, HPKE and hashing.

Two suites (:class:`Suite`), no negotiation. Every verification or decryption failure is one
opaque error (:class:`broker.errors.VerificationError`, :class:`broker.errors.DecryptionError`)
whose text says nothing about which check failed; key files that cannot be read raise
:class:`broker.errors.KeyTrustError`.
"""

from __future__ import annotations

from broker.crypto._aead import AEAD_KEY_BYTES, AeadSealer, aead_open, aead_seal
from broker.crypto._batch import MAX_BATCH, MAX_PATH, BatchProof, sign_batch, verify_member
from broker.crypto._kem import DecryptionKey, EncryptionKey, hpke_open, hpke_seal
from broker.crypto._memo import VerifiedSignatures
from broker.crypto._primitives import constant_time_equal, hmac_sha256, random_bytes, sha256
from broker.crypto._signing import SigningKey, VerifyKey
from broker.crypto._suite import Suite
from broker.crypto._x509 import CertificateValidity, certificate_validity

__all__ = [
    "AEAD_KEY_BYTES",
    "MAX_BATCH",
    "MAX_PATH",
    "AeadSealer",
    "BatchProof",
    "CertificateValidity",
    "DecryptionKey",
    "EncryptionKey",
    "SigningKey",
    "Suite",
    "VerifiedSignatures",
    "VerifyKey",
    "aead_open",
    "aead_seal",
    "certificate_validity",
    "constant_time_equal",
    "hmac_sha256",
    "hpke_open",
    "hpke_seal",
    "random_bytes",
    "sha256",
    "sign_batch",
    "verify_member",
]
