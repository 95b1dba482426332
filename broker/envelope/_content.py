"""The encrypted body: the message, its per-field salts and the content key, canonically encoded.

Messages are validated by :mod:`broker.schema` and committed in the schema's canonical form, so
what a receiver opens is exactly what the schema would produce again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii
from typing import Any

from broker import errors
from broker.envelope._format import canonical_json
from broker.envelope._header import top_level_fields
from broker.schema import Message, parse_message
from broker.schema.wire import message_object, parse_canonical_message

__all__ = [
    "CONTENT_KEY_BYTES",
    "SALT_BYTES",
    "Body",
    "OpenedBody",
    "body_bytes",
    "compose_message",
    "encode_fields",
    "message_document",
    "open_body",
    "schema_parse",
]

CONTENT_KEY_BYTES = 32
SALT_BYTES = 16


def schema_parse(canonical: bytes, document: dict[str, Any]) -> Message:
    """The validated schema model of a committed message: ``canonical`` is the exact
    canonical JSON of ``document``, so the strict pre-parse is already done."""
    return parse_canonical_message(canonical, document)


def message_document(message: bytes | Message) -> dict[str, Any]:
    """The message as a JSON object in the schema's canonical form, after strict validation."""
    model = parse_message(message) if isinstance(message, bytes) else message
    # The object the schema's canonical bytes encode, without encoding and decoding them.
    return message_object(model)


def encode_fields(fields: Mapping[str, Any]) -> dict[str, bytes]:
    """The canonical JSON of each committed field's value, by path."""
    return {path: canonical_json(value) for path, value in fields.items()}


def _key(name: str) -> bytes:
    # Committed names are identifiers (top_level_fields checks), which JSON never escapes.
    return (
        b'"' + name.encode("ascii") + b'":'
        if name.isidentifier() and name.isascii()
        else (encode_basestring_ascii(name).encode("ascii") + b":")
    )


def compose_message(document: Mapping[str, Any], encoded: Mapping[str, bytes]) -> bytes | None:
    """``canonical_json(document)`` assembled from its fields' encodings (see encode_fields)
    instead of encoding everything again; None if the paths do not map one to one onto the
    document's values (a top-level key spelled like a body path)."""
    parts: list[bytes] = []
    used = 0
    try:
        for name in sorted(document):
            value = document[name]
            if name == "body" and isinstance(value, dict) and value:
                inner = [_key(k) + encoded[f"body.{k}"] for k in sorted(value)]
                parts.append(_key(name) + b"{" + b",".join(inner) + b"}")
                used += len(inner)
            else:
                parts.append(_key(name) + encoded[name])
                used += 1
    except KeyError:
        return None
    return b"{" + b",".join(parts) + b"}" if used == len(encoded) else None


def body_bytes(*, content_key: str, message_json: bytes, salts: Mapping[str, str]) -> bytes:
    """The canonical JSON of {"key", "message", "salts"}: ``message_json`` is already the
    message's canonical JSON; the key and salts are lowercase hex."""
    return b"".join(
        (
            b'{"key":',
            canonical_json(content_key),
            b',"message":',
            message_json,
            b',"salts":',
            canonical_json(salts),
            b"}",
        )
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Body:
    """What is encrypted: the message document, one salt per committed field, the content key."""

    message: dict[str, Any]
    salts: Mapping[str, bytes]
    content_key: bytes

    def to_bytes(self) -> bytes:
        """Canonical JSON of {"key", "message", "salts"}, binary values as lowercase hex."""
        return body_bytes(
            content_key=self.content_key.hex(),
            message_json=canonical_json(self.message),
            salts={path: salt.hex() for path, salt in self.salts.items()},
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Body:
        """Parse and check a decrypted body; any defect is the opaque VerificationError."""
        return open_body(data).body


@dataclasses.dataclass(frozen=True, slots=True)
class OpenedBody:
    """A decrypted body in its exact canonical form, with what the commitments need."""

    body: Body
    #: the committed fields by path (see top_level_fields)
    fields: dict[str, Any]
    #: the canonical JSON of each field's value, by path
    encoded: dict[str, bytes]
    #: the canonical JSON of the message
    message_json: bytes


def open_body(data: bytes) -> OpenedBody:
    """Parse a decrypted body and its committed fields; any defect is the opaque
    VerificationError.

    Only the exact canonical form is accepted: one plaintext per meaning, so the commitments
    bind every byte that was encrypted. The form is checked by assembling the canonical bytes
    from the field encodings the commitments need anyway, and comparing. (Nesting depth is
    bounded by the message schema right after.)
    """
    try:
        return _open_body(data)
    except (errors.SchemaError, ValueError, RecursionError):
        raise errors.VerificationError("envelope content does not verify") from None


def _open_body(data: bytes) -> OpenedBody:
    raw = json.loads(data)
    if (
        not isinstance(raw, dict)
        or set(raw) != {"key", "message", "salts"}
        or not isinstance(raw["message"], dict)
        or not isinstance(raw["salts"], dict)
    ):
        raise errors.SchemaError("body structure")
    body = Body(
        message=raw["message"],
        salts={str(p): _hex(s, SALT_BYTES) for p, s in raw["salts"].items()},
        content_key=_hex(raw["key"], CONTENT_KEY_BYTES),
    )
    fields = top_level_fields(body.message)
    encoded = encode_fields(fields)
    message_json = compose_message(body.message, encoded)
    if message_json is None:
        message_json = canonical_json(body.message)
    if body_bytes(content_key=raw["key"], message_json=message_json, salts=raw["salts"]) != data:
        raise errors.SchemaError("body: not in canonical form")
    return OpenedBody(body=body, fields=fields, encoded=encoded, message_json=message_json)


def _hex(value: object, length: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * length or value != value.lower():
        raise errors.SchemaError("body hex value")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise errors.SchemaError("body hex value") from None
