"""The audit log's pure core: an RFC 6962 Merkle log, signed checkpoints, witness co-signatures
and tamper classification.

Everything here is pure (no I/O, no clock: time is an argument). Whatever fails to verify is an
:class:`~broker.errors.AuditError`; an impossible request (a proof for a leaf the store does not
hold) is a :class:`~broker.errors.UsageError`.
"""

from __future__ import annotations

from broker.audit.checkpoint import (
    CHECKPOINT_CONTEXT,
    COSIGNATURE_CONTEXT,
    Checkpoint,
    Cosignature,
    add_cosignatures,
    sign_checkpoint,
    verify_checkpoint,
    verify_log_signature,
    witness_cosign,
)
from broker.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from broker.audit.tamper import TamperKind, TamperReport, classify_tampering

__all__ = [
    "CHECKPOINT_CONTEXT",
    "COSIGNATURE_CONTEXT",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Checkpoint",
    "Cosignature",
    "MerkleLog",
    "TamperKind",
    "TamperReport",
    "add_cosignatures",
    "classify_tampering",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_log_signature",
    "witness_cosign",
]
