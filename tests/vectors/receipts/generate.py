"""Regenerate the batch receipt vector: ``python tests/vectors/receipts/generate.py``.

Every input is fixed (ids, digests, time, salt): the message, the digest of its ``body.items``
and the ``xb-acknowledges`` header value come out the same on every run. Regenerate only for a
deliberate format change (docs/PROTOCOL.md, section 11).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from broker import strictjson
from broker.envelope._header import field_digest
from broker.pipeline.revealed import revealed_header
from broker.schema import message_bytes, parse_message

HERE = Path(__file__).parent
SALT = bytes(range(16, 32))

MESSAGE: dict[str, Any] = {
    "type": "receipt",
    "schema_version": 2,
    "classification": "OFFICIAL-SENSITIVE",
    "tlp": "AMBER",
    "handling": "H2",
    "purposes": ["people-smuggling"],
    "body": {
        "received_at": "2026-12-06T12:00:00Z",
        "items": [
            {
                "receipt_for": "019af3a2-6c00-7000-8000-000000000001",
                "status": "accepted",
                "content_sha256": "11" * 32,
                "envelope_sha256": "21" * 32,
            },
            {
                "receipt_for": "019af3a2-6c00-7000-8000-000000000002",
                "status": "rejected",
                "content_sha256": "12" * 32,
                "envelope_sha256": "22" * 32,
                "reason": "label_mismatch: the signed labels do not describe the message",
            },
        ],
    },
}


def vector() -> dict[str, Any]:
    message = parse_message(strictjson.canonical(MESSAGE))
    items = json.loads(message_bytes(message))["body"]["items"]
    return {
        "message": MESSAGE,
        "path": "body.items",
        "salt": SALT.hex(),
        "canonical_value": strictjson.canonical(items).decode(),
        "field_digest": field_digest(salt=SALT, path="body.items", value=items).hex(),
        "header": {"name": "xb-acknowledges", "value": revealed_header((SALT, items)).decode()},
        "audit_reason": "acknowledges " + ", ".join(item["receipt_for"] for item in items),
    }


if __name__ == "__main__":
    (HERE / "batch-v2.json").write_text(json.dumps(vector(), indent=2) + "\n")
