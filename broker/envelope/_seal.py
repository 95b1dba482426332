"""Sealing one message view for one recipient."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pydantic

from broker import crypto, errors
from broker.envelope._batch import Unsigned, sign_all
from broker.envelope._content import (
    CONTENT_KEY_BYTES,
    SALT_BYTES,
    body_bytes,
    compose_message,
    encode_fields,
    message_document,
)
from broker.envelope._format import canonical_json, pad
from broker.envelope._header import (
    EnvelopeHeader,
    Origin,
    encoded_field_digest,
    format_time,
    key_commitment,
    top_level_fields,
)
from broker.ids import AccordId, CaseId, KeyId, MessageId, PartnerCode, new_message_id
from broker.schema import Message
from broker.schema.labels import Labels

__all__ = ["seal", "seal_revealing", "seal_unsigned"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_TTL = dt.timedelta(days=30)

HpkeSeal = Callable[[crypto.EncryptionKey, bytes, bytes], bytes]


def _hpke_seal(recipient: crypto.EncryptionKey, plaintext: bytes, info: bytes) -> bytes:
    return crypto.hpke_seal(recipient, plaintext, info=info)


def seal(
    message: bytes | Message,
    *,
    labels: Labels,
    sender: PartnerCode,
    sender_key: crypto.SigningKey,
    recipient: PartnerCode,
    recipient_key_id: KeyId,
    recipient_key: crypto.EncryptionKey,
    accord_id: AccordId,
    accord_digest: bytes | str,
    now: dt.datetime,
    ttl: dt.timedelta,
    message_id: MessageId | None = None,
    case_id: CaseId | None = None,
    origin: Origin | None = None,
) -> bytes:
    """Seal ``message`` (JSON bytes or a schema Message) for ``recipient`` and sign it.

    The labels, ids and times go into the signed clear header; the message, with fresh salts
    and a fresh content key, is padded and HPKE-sealed to ``recipient_key``. Without
    ``case_id``, the message's own ``case_id`` (if any) threads the envelope. With an
    ``origin`` (the officer who submitted it) the header is version 2 and names it.
    """
    unsigned = _seal_document(
        message_document(message),
        labels=labels,
        sender=sender,
        sender_key=sender_key,
        recipient=recipient,
        recipient_key_id=recipient_key_id,
        recipient_key=recipient_key,
        accord_id=accord_id,
        accord_digest=accord_digest,
        now=now,
        ttl=ttl,
        message_id=message_id,
        case_id=case_id,
        origin=origin,
    )
    return sign_all([unsigned])[0]


def seal_revealing(
    message: bytes | Message, *, reveal: Iterable[str], **sealing: Any
) -> tuple[bytes, dict[str, tuple[bytes, Any]]]:
    """:func:`seal` (same keyword arguments), also returning the salt and value of each of
    the committed paths in ``reveal``: what the sender shows a gateway of its own envelope
    (a receipt names the messages it acknowledges), checked with :func:`check_revealed`."""
    unsigned, revealed = seal_unsigned(message, reveal=reveal, **sealing)
    return sign_all([unsigned])[0], revealed


def seal_unsigned(
    message: bytes | Message, *, reveal: Iterable[str] = (), **sealing: Any
) -> tuple[Unsigned, dict[str, tuple[bytes, Any]]]:
    """:func:`seal_revealing` without the signature: the sealed view waits for
    :func:`sign_all` to sign it with others of its batch under one head."""
    document = message_document(message)
    fields = top_level_fields(document)
    unknown = sorted(set(reveal) - set(fields))
    if unknown:
        raise errors.UsageError(f"no such committed field(s): {', '.join(unknown)}")
    salts = _fresh_salts(fields)
    unsigned = _seal_document(document, salts=salts, **sealing)
    return unsigned, {path: (salts[path], fields[path]) for path in reveal}


def _seal_document(
    document: dict[str, Any],
    *,
    labels: Labels,
    sender: PartnerCode,
    sender_key: crypto.SigningKey,
    recipient: PartnerCode,
    recipient_key_id: KeyId,
    recipient_key: crypto.EncryptionKey,
    accord_id: AccordId,
    accord_digest: bytes | str,
    now: dt.datetime,
    ttl: dt.timedelta,
    message_id: MessageId | None = None,
    case_id: CaseId | None = None,
    origin: Origin | None = None,
    salts: Mapping[str, bytes] | None = None,
) -> Unsigned:
    """:func:`seal` for an already validated JSON document, up to the signature: draws the
    salts (unless given) and the content key."""
    if case_id is None and isinstance(document.get("case_id"), str):
        case_id = CaseId(document["case_id"])
    fields = top_level_fields(document)
    created = now.replace(microsecond=0)
    return _unsigned_from_parts(
        document,
        labels=labels,
        sender=sender,
        sender_key=sender_key,
        recipient=recipient,
        recipient_key_id=recipient_key_id,
        recipient_key=recipient_key,
        accord_id=accord_id,
        accord_digest=accord_digest,
        created=created,
        expires=created + ttl,
        message_id=message_id or new_message_id(unix_ms=int(created.timestamp() * 1000)),
        case_id=case_id,
        origin=origin,
        salts=_fresh_salts(fields) if salts is None else salts,
        content_key=crypto.random_bytes(CONTENT_KEY_BYTES),
    )


def _fresh_salts(paths: Iterable[str]) -> dict[str, bytes]:
    """One fresh random salt per path, drawn from the OS generator in one call."""
    names = list(paths)
    pool = crypto.random_bytes(SALT_BYTES * len(names))
    return {name: pool[i * SALT_BYTES : (i + 1) * SALT_BYTES] for i, name in enumerate(names)}


def _seal_from_parts(document: dict[str, Any], **parts: Any) -> bytes:
    """:func:`_unsigned_from_parts`, signed alone: the known-answer tests' seam."""
    return sign_all([_unsigned_from_parts(document, **parts)])[0]


def _unsigned_from_parts(
    document: dict[str, Any],
    *,
    labels: Labels,
    sender: PartnerCode,
    sender_key: crypto.SigningKey,
    recipient: PartnerCode,
    recipient_key_id: KeyId,
    recipient_key: crypto.EncryptionKey,
    accord_id: AccordId,
    accord_digest: bytes | str,
    created: dt.datetime,
    expires: dt.datetime,
    message_id: MessageId,
    case_id: CaseId | None,
    salts: Mapping[str, bytes],
    origin: Origin | None = None,
    content_key: bytes,
    hpke: HpkeSeal = _hpke_seal,
) -> Unsigned:
    """The deterministic core of :func:`seal` up to the signature: every random input is an
    argument.

    Known-answer tests pass fixed salts and content key, and an ``hpke`` that returns a
    recorded ciphertext (HPKE's ephemeral key cannot be fixed through the library).
    """
    if sender_key.suite is not recipient_key.suite:
        raise errors.UsageError("sender and recipient keys belong to different suites")
    if recipient_key.key_id != recipient_key_id:
        raise errors.UsageError("recipient_key_id does not match recipient_key")
    if not dt.timedelta(0) < expires - created <= MAX_TTL:
        raise errors.UsageError(f"ttl must be positive and at most {MAX_TTL}")
    digest_hex = accord_digest.hex() if isinstance(accord_digest, bytes) else accord_digest
    if not _HEX64.fullmatch(digest_hex):
        raise errors.UsageError("accord_digest must be a SHA-256 digest")
    fields = top_level_fields(document)
    if set(salts) != set(fields):
        raise errors.UsageError("one salt per committed field is required")
    # Each field is encoded once: for its commitment, and to assemble the body from.
    encoded = encode_fields(fields)
    commitment = {
        "fields": {
            path: encoded_field_digest(salt=salts[path], path=path, encoded=value).hex()
            for path, value in encoded.items()
        },
        "key": key_commitment(content_key=content_key, message_id=message_id).hex(),
    }
    header_doc: dict[str, Any] = {
        "version": 1 if origin is None else 2,
        "suite": str(sender_key.suite),
        "message_id": message_id,
        "case_id": case_id,
        "sender": sender,
        "sender_key_id": sender_key.public_key().key_id,
        "recipient": recipient,
        "recipient_key_id": recipient_key_id,
        "created": format_time(created),
        "expires": format_time(expires),
        "labels": labels.model_dump(mode="json"),
        "accord_id": accord_id,
        "accord_digest": digest_hex,
        "commitment": commitment,
    }
    if origin is not None:
        header_doc["origin"] = origin.model_dump()
    header = canonical_json(header_doc)
    # Validate what we are about to sign with the same strict model receivers use.
    try:
        EnvelopeHeader.model_validate_json(header)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise errors.UsageError(f"cannot seal: header field {where}: {first['msg']}") from None
    message_json = compose_message(document, encoded)
    if message_json is None:
        message_json = canonical_json(document)
    body = pad(
        body_bytes(
            content_key=content_key.hex(),
            message_json=message_json,
            salts={path: salt.hex() for path, salt in salts.items()},
        )
    )
    ciphertext = hpke(recipient_key, body, crypto.sha256(header))
    return Unsigned(header, ciphertext, sender_key, recipient)
