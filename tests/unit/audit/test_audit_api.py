"""The audit package's public surface is pinned: adding or removing a name is a decision."""

from __future__ import annotations

import broker.audit
from broker.audit import checkpoint, merkle, tamper


def test_public_names_are_pinned() -> None:
    """Exactly these names are exported, and each module exports only what it defines."""
    assert sorted(broker.audit.__all__) == sorted(
        [
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
    )
    modules = (checkpoint, merkle, tamper)
    assert sorted(broker.audit.__all__) == sorted(n for m in modules for n in m.__all__)
    for module in modules:
        for name in module.__all__:
            assert getattr(broker.audit, name) is getattr(module, name)
