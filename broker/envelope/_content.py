"""The encrypted body: the message, its per-field salts and the content key, canonically encoded.

Messages are validated by :mod:`broker.schema` and committed in the schema's canonical form, so
what a receiver opens is exactly what the schema would produce again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from broker import errors
from broker.envelope._format import canonical_json, canonical_loads
from broker.schema import Message, message_bytes, parse_message

__all__ = ["CONTENT_KEY_BYTES", "SALT_BYTES", "Body", "message_document", "schema_parse"]

CONTENT_KEY_BYTES = 32
SALT_BYTES = 16


def schema_parse(canonical: bytes) -> Message:
    """The validated schema model of a committed message."""
    return parse_message(canonical)


def message_document(message: bytes | Message) -> dict[str, Any]:
    """The message as a JSON object in the schema's canonical form, after strict validation."""
    model = parse_message(message) if isinstance(message, bytes) else message
    # The schema's own canonical output: already strict, so a plain parse suffices.
    document = json.loads(message_bytes(model))
    if not isinstance(document, dict):
        raise errors.SchemaError("message: the top level must be a JSON object")
    return document


@dataclasses.dataclass(frozen=True, slots=True)
class Body:
    """What is encrypted: the message document, one salt per committed field, the content key."""

    message: dict[str, Any]
    salts: Mapping[str, bytes]
    content_key: bytes

    def to_bytes(self) -> bytes:
        """Canonical JSON of {"key", "message", "salts"}, binary values as lowercase hex."""
        return canonical_json(
            {
                "key": self.content_key.hex(),
                "message": self.message,
                "salts": {path: salt.hex() for path, salt in self.salts.items()},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Body:
        """Parse and check a decrypted body; any defect is the opaque VerificationError."""
        try:
            return _parse_body(data)
        except errors.SchemaError:
            raise errors.VerificationError("envelope content does not verify") from None


def _parse_body(data: bytes) -> Body:
    # The exact canonical form only: one plaintext per meaning, so the commitments bind every
    # byte that was encrypted. (Nesting depth is bounded by the message schema right after.)
    raw = canonical_loads(data, what="body")
    if (
        not isinstance(raw, dict)
        or set(raw) != {"key", "message", "salts"}
        or not isinstance(raw["message"], dict)
        or not isinstance(raw["salts"], dict)
    ):
        raise errors.SchemaError("body structure")
    return Body(
        message=raw["message"],
        salts={str(p): _hex(s, SALT_BYTES) for p, s in raw["salts"].items()},
        content_key=_hex(raw["key"], CONTENT_KEY_BYTES),
    )


def _hex(value: object, length: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * length or value != value.lower():
        raise errors.SchemaError("body hex value")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise errors.SchemaError("body hex value") from None
