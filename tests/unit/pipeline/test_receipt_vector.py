"""The batch receipt vector (docs/PROTOCOL.md, section 11): the field digest by the document's
recipe with ``hashlib`` alone, and the implementation agreeing with it byte for byte."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from broker import strictjson
from broker.envelope._header import field_digest
from broker.pipeline.revealed import acknowledged, revealed_header
from broker.schema import message_bytes, parse_message

VECTOR = Path(__file__).resolve().parents[2] / "vectors" / "receipts" / "batch-v2.json"


def _vector() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTOR.read_text())
    return loaded


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_the_field_digest_follows_the_documented_recipe() -> None:
    """PROTOCOL.md 2.1 and 2.3 by hand: sorted keys, no spaces, then the length-prefixed hash."""
    vector = _vector()
    items = vector["message"]["body"]["items"]
    canonical = json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical == vector["canonical_value"]
    digest = hashlib.sha256(
        _lp(b"broker-envelope/v1 field")
        + _lp(bytes.fromhex(vector["salt"]))
        + _lp(vector["path"].encode("ascii"))
        + _lp(canonical.encode())
    ).hexdigest()
    assert digest == vector["field_digest"]
    header = json.loads(vector["header"]["value"])
    assert header == {"salt": vector["salt"], "value": items}


def test_the_implementation_reproduces_the_vector() -> None:
    vector = _vector()
    message = parse_message(strictjson.canonical(vector["message"]))
    items = json.loads(message_bytes(message))["body"]["items"]
    salt = bytes.fromhex(vector["salt"])
    assert field_digest(salt=salt, path="body.items", value=items).hex() == vector["field_digest"]
    assert revealed_header((salt, items)).decode() == vector["header"]["value"]
    assert "acknowledges " + ", ".join(acknowledged(items, 2)) == vector["audit_reason"]
