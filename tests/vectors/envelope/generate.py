"""Regenerate the envelope known-answer vectors: ``python tests/vectors/envelope/generate.py``.

Every input is fixed (keys from seeds, salts, content key, message id, times). HPKE draws its
ephemeral key inside the library, so the ciphertext is recorded once and the test feeds it back
through the injectable HPKE step; everything else must come out byte for byte. Regenerating
changes the ciphertext (and so the signature): do it only for a deliberate format change.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

from broker import crypto
from broker.envelope._content import message_document
from broker.envelope._header import top_level_fields
from broker.envelope._seal import _seal_from_parts
from broker.ids import AccordId, MessageId, PartnerCode
from broker.schema.labels import Labels

HERE = Path(__file__).parent

INPUTS: dict[str, Any] = {
    "sender": "GB",
    "sender_ed25519_seed": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "recipient": "RS",
    "recipient_x25519_private": "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    "accord_id": "gb-rs",
    "accord_digest": "1f" * 32,
    "created": "2026-11-28T12:00:00Z",
    "expires": "2026-12-05T12:00:00Z",
    "message_id": "019acab3-b800-7000-8000-000000000001",
    "case_id": "GB-NCA-2026-0417",
    "content_key": bytes(range(32)).hex(),
    "labels": {
        "message_type": "network.report",
        "schema_version": 1,
        "classification": "OFFICIAL-SENSITIVE",
        "tlp": "AMBER",
        "handling": "H2",
        "purposes": ["people-smuggling"],
        "data_categories": ["identity", "operational"],
    },
    "message": {
        "type": "network.report",
        "schema_version": 1,
        "classification": "OFFICIAL-SENSITIVE",
        "tlp": "AMBER",
        "handling": "H2",
        "purposes": ["people-smuggling"],
        "case_id": "GB-NCA-2026-0417",
        "body": {
            "summary": "Known-answer sample: a network staging crossings near Subotica.",
            "transit_countries": ["MK", "RS"],
            "members": [
                {
                    "ref": "M1",
                    "roles": ["organiser"],
                    "person": {"family_name": "Example", "nationalities": ["AL"]},
                }
            ],
        },
    },
}


def kat_salt(path: str) -> bytes:
    """The fixed salt of ``path`` in the vectors: SHA-256 of a label and the path."""
    return crypto.sha256(b"known-answer salt " + path.encode())[:16]


def _time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def seal_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of _seal_from_parts (without ``hpke``) from a vector's inputs."""
    document = message_document(json.dumps(inputs["message"]).encode())
    sender_key = crypto.SigningKey._from_seeds(
        crypto.Suite.CLASSIC, ed25519_seed=bytes.fromhex(inputs["sender_ed25519_seed"])
    )
    recipient_key = crypto.DecryptionKey._from_seeds(
        crypto.Suite.CLASSIC, x25519_private=bytes.fromhex(inputs["recipient_x25519_private"])
    ).public_key()
    return {
        "document": document,
        "labels": Labels.model_validate_json(json.dumps(inputs["labels"])),
        "sender": PartnerCode(inputs["sender"]),
        "sender_key": sender_key,
        "recipient": PartnerCode(inputs["recipient"]),
        "recipient_key_id": recipient_key.key_id,
        "recipient_key": recipient_key,
        "accord_id": AccordId(inputs["accord_id"]),
        "accord_digest": inputs["accord_digest"],
        "created": _time(inputs["created"]),
        "expires": _time(inputs["expires"]),
        "message_id": MessageId(inputs["message_id"]),
        "case_id": inputs["case_id"],
        "salts": {path: kat_salt(path) for path in top_level_fields(document)},
        "content_key": bytes.fromhex(inputs["content_key"]),
    }


def main() -> None:
    """Seal the fixed inputs for real and write the vector file."""
    recorded: dict[str, bytes] = {}

    def hpke(key: crypto.EncryptionKey, plaintext: bytes, info: bytes) -> bytes:
        recorded["plaintext"], recorded["info"] = plaintext, info
        recorded["ciphertext"] = crypto.hpke_seal(key, plaintext, info=info)
        return recorded["ciphertext"]

    arguments = seal_inputs(INPUTS)
    document = arguments.pop("document")
    sealed = _seal_from_parts(document, **arguments, hpke=hpke)
    vector = {
        "description": "v1 envelope, classic suite, GB to RS; see docs/PROTOCOL.md",
        "inputs": INPUTS,
        "expected": {
            "sender_key_id": arguments["sender_key"].public_key().key_id,
            "recipient_key_id": arguments["recipient_key_id"],
            "hpke_info": recorded["info"].hex(),
            "padded_body_sha256": crypto.sha256(recorded["plaintext"]).hex(),
            "padded_body_length": len(recorded["plaintext"]),
            "hpke_ciphertext": recorded["ciphertext"].hex(),
            "envelope": sealed.hex(),
        },
    }
    (HERE / "classic-v1.json").write_text(json.dumps(vector, indent=2) + "\n")
    # The same envelope and the sender's public key as files, for the OpenSSL recipe.
    (HERE / "classic-v1.envelope").write_bytes(sealed)
    public = arguments["sender_key"].public_key().to_bytes()
    (HERE / "classic-v1-sender.pem").write_text(ed25519_public_pem(public))


def ed25519_public_pem(raw: bytes) -> str:
    """SubjectPublicKeyInfo PEM of a raw Ed25519 key: a fixed 12-byte DER prefix + the key."""
    der = bytes.fromhex("302a300506032b6570032100") + raw
    body = base64.encodebytes(der).decode().strip()
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"


if __name__ == "__main__":
    main()
