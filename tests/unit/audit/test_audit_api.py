"""The audit package's public surface is pinned: adding or removing a name is a decision."""

from __future__ import annotations

import broker.audit
from broker import merkle
from broker.audit import checkpoint, note, tamper, witness


def test_public_names_are_pinned() -> None:
    """Exactly these names are exported, and each module exports only what it defines."""
    assert sorted(broker.audit.__all__) == sorted(
        [
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
            "is_key_name",
            "leaf_hash",
            "node_hash",
            "note_key_id",
            "open_checkpoint",
            "open_note",
            "parse_note",
            "read_checkpoint",
            "inclusion_proofs",
            "root_from_inclusion",
            "root_hash",
            "sign_checkpoint",
            "verify_consistency",
            "verify_inclusion",
        ]
    )
    modules = (checkpoint, merkle, note, tamper, witness)
    assert sorted(broker.audit.__all__) == sorted(n for m in modules for n in m.__all__)
    for module in modules:
        for name in module.__all__:
            assert getattr(broker.audit, name) is getattr(module, name)
