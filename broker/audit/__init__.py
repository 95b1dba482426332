"""The audit log's pure core: an RFC 6962 Merkle log, C2SP signed notes, checkpoints and
witness co-signatures, a witness's view of a log, and tamper classification.

Everything here is pure (no I/O, no clock: time is an argument). Whatever fails to verify is an
:class:`~broker.errors.AuditError`; an impossible request (a proof for a leaf the store does not
hold) is a :class:`~broker.errors.UsageError`.
"""

from __future__ import annotations

from broker.audit.checkpoint import (
    Checkpoint,
    add_signatures,
    checkpoint_cosigners,
    cosign_checkpoint,
    open_checkpoint,
    read_checkpoint,
    sign_checkpoint,
)
from broker.audit.note import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    SIGNATURE_COSIGNATURE_V1,
    SIGNATURE_ED25519,
    CosignatureKey,
    Ed25519NoteKey,
    Note,
    NoteKey,
    NoteSignature,
    is_key_name,
    note_key_id,
    open_note,
    parse_note,
)
from broker.audit.tamper import TamperKind, TamperReport, classify_tampering
from broker.audit.witness import LogView, Observation
from broker.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
    inclusion_proofs,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "SIGNATURE_COSIGNATURE_V1",
    "SIGNATURE_ED25519",
    "Checkpoint",
    "CosignatureKey",
    "Ed25519NoteKey",
    "LogView",
    "MerkleLog",
    "Note",
    "NoteKey",
    "NoteSignature",
    "Observation",
    "TamperKind",
    "TamperReport",
    "add_signatures",
    "checkpoint_cosigners",
    "classify_tampering",
    "consistency_proof",
    "cosign_checkpoint",
    "inclusion_proof",
    "inclusion_proofs",
    "is_key_name",
    "leaf_hash",
    "node_hash",
    "note_key_id",
    "open_checkpoint",
    "open_note",
    "parse_note",
    "read_checkpoint",
    "root_from_inclusion",
    "root_hash",
    "sign_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]
