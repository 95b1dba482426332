"""The batch signature vector (docs/PROTOCOL.md, sections 1 and 5), checked with hashlib and
``cryptography`` alone by the document's recipe, and reproduced byte for byte by sign_all."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker import crypto
from broker.envelope import Unsigned, sign_all

VECTOR = Path(__file__).resolve().parents[2] / "vectors" / "envelope" / "batch-v2.json"


def _vector() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTOR.read_text())
    return loaded


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def test_the_vector_follows_the_documented_recipe() -> None:
    vector = _vector()
    size = vector["size"]
    leaves = []
    for item in vector["envelopes"]:
        header, ciphertext = item["header"].encode(), bytes.fromhex(item["ciphertext"])
        signing = (
            _lp(b"broker-envelope/v1 signature")
            + _lp(header)
            + _lp(hashlib.sha256(ciphertext).digest())
        )
        assert signing.hex() == item["signing_input"]
        leaves.append(hashlib.sha256(b"\x00" + signing).digest())
        assert leaves[-1].hex() == item["leaf"]
    # three leaves: head = node(node(l0, l1), l2) (RFC 6962: split at 2)
    head = _node(_node(leaves[0], leaves[1]), leaves[2])
    assert [item["path"] for item in vector["envelopes"]] == [
        [leaves[1].hex(), leaves[2].hex()],
        [leaves[0].hex(), leaves[2].hex()],
        [_node(leaves[0], leaves[1]).hex()],
    ]
    signed = _lp(b"broker-envelope/v2 batch") + struct.pack(">I", size) + head
    public = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(vector["public_key"]))
    public.verify(bytes.fromhex(vector["signature"]), signed)
    for item in vector["envelopes"]:
        framed = (
            b"\x89XBE\x02"
            + _lp(item["header"].encode())
            + _lp(bytes.fromhex(item["ciphertext"]))
            + struct.pack(">H", 64)
            + bytes.fromhex(vector["signature"])
            + struct.pack(">IIB", size, item["index"], len(item["path"]))
            + b"".join(bytes.fromhex(node) for node in item["path"])
        )
        assert framed.hex() == item["envelope"]


def test_sign_all_reproduces_the_vector() -> None:
    vector = _vector()
    key = crypto.SigningKey._from_seeds(
        crypto.Suite.CLASSIC, ed25519_seed=bytes.fromhex(vector["ed25519_seed"])
    )
    unsigned = [
        Unsigned(item["header"].encode(), bytes.fromhex(item["ciphertext"]), key, "RS")
        for item in vector["envelopes"]
    ]
    assert [e.hex() for e in sign_all(unsigned)] == [i["envelope"] for i in vector["envelopes"]]
