"""Regenerate the audit batch vector: ``python tests/vectors/audit/generate_batch.py``.

Three audit records with fixed fields are signed as one batch (version 2, docs/GATEWAY.md
"Audit record") by a fixed Ed25519 seed, whose signatures are deterministic: every signed
form, leaf, path, the head, the signed bytes, the signature and each record come out the same
on every run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from broker import crypto
from broker.pipeline.records import AuditKind, draft_audit_record, sign_audit_records

HERE = Path(__file__).parent
SEED = bytes(range(64, 96))


def _fields(n: int) -> dict[str, Any]:
    return {
        "kind": AuditKind.REFUSAL,
        "message_id": f"019a0000-0000-7000-8000-00000000000{n}",
        "sender": "GB",
        "recipient": "RS",
        "labels": None,
        "envelope_sha256": hashlib.sha256(b"envelope %d" % n).hexdigest(),
        "decision": "deny",
        "reason_code": "no_accord",
        "rule_ids": (),
        "reasons": (f"vector record {n}",),
        "accord_id": None,
        "accord_version": None,
        "accord_digest": None,
        "justification": None,
        "decided_at": "2026-12-06T12:00:00Z",
    }


def vector() -> dict[str, Any]:
    key = crypto.SigningKey._from_seeds(crypto.Suite.CLASSIC, ed25519_seed=SEED)
    key_id = key.public_key().key_id
    drafts = [draft_audit_record(_fields(n), gateway_key_id=key_id) for n in range(3)]
    records = sign_audit_records(drafts, gateway_key=key)
    return {
        "ed25519_seed": SEED.hex(),
        "public_key": key.public_key().to_bytes().hex(),
        "records": [
            {"unsigned": r.unsigned_bytes().decode(), "record": r.to_bytes().decode()}
            for r in records
        ],
    }


if __name__ == "__main__":
    (HERE / "batch-v2.json").write_text(json.dumps(vector(), indent=2) + "\n")
