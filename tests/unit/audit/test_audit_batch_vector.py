"""The audit batch vector (docs/GATEWAY.md, "Audit record"), checked with hashlib, json and
``cryptography`` alone by the document's recipe, and reproduced byte for byte by the gateway's
own signing."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker import crypto
from broker.pipeline.records import draft_audit_record, sign_audit_records

VECTOR = Path(__file__).resolve().parents[2] / "vectors" / "audit" / "batch-v2.json"


def _vector() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTOR.read_text())
    return loaded


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def test_the_vector_follows_the_documented_recipe() -> None:
    vector_ = _vector()
    public = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(vector_["public_key"]))
    leaves, records = [], []
    for item in vector_["records"]:
        record = json.loads(item["record"])
        records.append(record)
        # the leaf's bytes: the record without signature and batch, canonical JSON
        unsigned = {k: v for k, v in record.items() if k not in {"signature", "batch"}}
        canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
        assert canonical == item["unsigned"].encode()
        signed_form = b"xb-audit-record-v1\x00" + struct.pack(">I", len(canonical)) + canonical
        leaves.append(hashlib.sha256(b"\x00" + signed_form).digest())
    # three leaves: head = node(node(l0, l1), l2) (RFC 6962: split at 2)
    head = _node(_node(leaves[0], leaves[1]), leaves[2])
    assert [r["batch"]["path"] for r in records] == [
        [leaves[1].hex(), leaves[2].hex()],
        [leaves[0].hex(), leaves[2].hex()],
        [_node(leaves[0], leaves[1]).hex()],
    ]
    assert [(r["v"], r["batch"]["index"], r["batch"]["size"]) for r in records] == [
        (2, 0, 3),
        (2, 1, 3),
        (2, 2, 3),
    ]
    (signature,) = {r["signature"] for r in records}
    public.verify(
        base64.b64decode(signature), b"xb-audit-batch-v2\x00" + struct.pack(">I", 3) + head
    )


def test_the_gateway_reproduces_the_vector() -> None:
    vector_ = _vector()
    key = crypto.SigningKey._from_seeds(
        crypto.Suite.CLASSIC, ed25519_seed=bytes.fromhex(vector_["ed25519_seed"])
    )
    drafts = []
    for item in vector_["records"]:
        fields = json.loads(item["unsigned"])
        del fields["gateway_key_id"], fields["v"]
        drafts.append(draft_audit_record(fields, gateway_key_id=key.public_key().key_id))
    signed = sign_audit_records(drafts, gateway_key=key)
    assert [r.to_bytes().decode() for r in signed] == [i["record"] for i in vector_["records"]]
