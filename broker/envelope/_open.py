"""Parsing, verifying and opening envelopes: results are built only from verified bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Protocol

from broker import crypto, errors
from broker.envelope._batch import check_sender_signature
from broker.envelope._content import OpenedBody, open_body, schema_parse
from broker.envelope._format import BatchProof, decode_frame, unpad
from broker.envelope._header import (
    EnvelopeHeader,
    Origin,
    encoded_field_digest,
    key_commitment,
    parse_header,
    parse_time,
)
from broker.envelope._seal import MAX_TTL
from broker.ids import AccordId, CaseId, KeyId, MessageId, PartnerCode
from broker.schema import Message
from broker.schema.labels import Labels

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_SKEW",
    "KeyRegistry",
    "OpenedEnvelope",
    "ParsedEnvelope",
    "VerifiedHeader",
    "open_envelope",
    "parse",
    "verify",
]

DEFAULT_MAX_AGE = dt.timedelta(hours=24)
DEFAULT_MAX_SKEW = dt.timedelta(minutes=5)


class KeyRegistry(Protocol):
    """The two registry lookups envelopes need; ``broker.keys.Registry`` satisfies it."""

    def signing_key(
        self, partner: PartnerCode, key_id: KeyId, *, at: dt.datetime
    ) -> crypto.VerifyKey:
        """The sender's verify key valid at ``at``, or raise KeyTrustError."""
        ...

    def encryption_key(
        self, partner: PartnerCode, key_id: KeyId, *, at: dt.datetime
    ) -> crypto.EncryptionKey:
        """The recipient's encryption key valid at ``at``, or raise KeyTrustError."""
        ...


def _no_truth(self: object) -> NoReturn:
    raise TypeError(f"{type(self).__name__} has no truth value; verification raises on failure")


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedEnvelope:
    """An envelope split into its parts. Structure only: NOTHING here has been verified."""

    header: EnvelopeHeader
    header_bytes: bytes
    ciphertext: bytes
    signature: bytes
    #: the whole envelope these parts were split from
    data: bytes = dataclasses.field(repr=False)
    #: where it sits in the batch its signature covers (framing version 2), else None
    proof: BatchProof | None = None

    __bool__ = _no_truth


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedHeader:
    """The header of an envelope whose signature, keys, version, suite and times all checked."""

    suite: crypto.Suite
    message_id: MessageId
    case_id: CaseId | None
    sender: PartnerCode
    sender_key_id: KeyId
    recipient: PartnerCode
    recipient_key_id: KeyId
    created: dt.datetime
    expires: dt.datetime
    labels: Labels
    accord_id: AccordId
    accord_digest: str
    field_digests: Mapping[str, bytes]
    content_key_commitment: bytes
    #: the exact signed header bytes, the ciphertext digest and the signature, for disclosures
    header_bytes: bytes
    ciphertext_digest: bytes
    signature: bytes
    #: SHA-256 of the whole envelope: what replay detection compares
    envelope_digest: bytes
    #: where it sits in the batch its signature covers, for disclosures; None if signed alone
    proof: BatchProof | None = None
    #: the sender's officer who submitted the view (header version 2), else None
    origin: Origin | None = None

    __bool__ = _no_truth


@dataclasses.dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """A verified, decrypted envelope whose content matched every signed commitment."""

    header: VerifiedHeader
    #: canonical JSON of the message, exactly as committed
    message_bytes: bytes
    #: the validated schema model (None only from format-level test seams)
    message: Message | None
    fields: Mapping[str, Any] = dataclasses.field(repr=False)
    salts: Mapping[str, bytes] = dataclasses.field(repr=False)

    __bool__ = _no_truth


def parse(data: bytes) -> ParsedEnvelope:
    """Split and structurally check ``data`` (size first); raises EnvelopeError."""
    frame = decode_frame(data)
    return ParsedEnvelope(
        header=parse_header(frame.header),
        header_bytes=frame.header,
        ciphertext=frame.ciphertext,
        signature=frame.signature,
        data=data,
        proof=frame.proof,
    )


def verify(
    data: bytes | ParsedEnvelope,
    *,
    registry: KeyRegistry,
    now: dt.datetime,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    max_skew: dt.timedelta = DEFAULT_MAX_SKEW,
) -> VerifiedHeader:
    """Check everything checkable without decrypting: for gateways and auditors.

    The sender's and recipient's keys must be valid both at the envelope's ``created`` time
    and at ``now``, and ``created`` must lie in ``[now - max_age, now + max_skew]``. Live
    daemons pass the current time; an auditor judging an old envelope passes its ``created``.

    Raises EnvelopeError (malformed, oversized, unknown version or suite), KeyTrustError
    (sender or recipient key not valid then or now), VerificationError (signature) or
    ReplayError (outside the time window). ``data`` may be what :func:`parse` returned for the
    envelope, so that a caller that looked inside first does not parse it twice.
    """
    return _verify(data, registry=registry, now=now, max_age=max_age, max_skew=max_skew)[0]


def _verify(
    data: bytes | ParsedEnvelope,
    *,
    registry: KeyRegistry,
    now: dt.datetime,
    max_age: dt.timedelta,
    max_skew: dt.timedelta,
) -> tuple[VerifiedHeader, ParsedEnvelope]:
    parsed = data if isinstance(data, ParsedEnvelope) else parse(data)
    header = parsed.header
    created, expires = parse_time(header.created), parse_time(header.expires)
    sender, recipient = PartnerCode(header.sender), PartnerCode(header.recipient)
    # Keys must be valid when the envelope says it was sealed AND now: ``created`` is the
    # sender's word, so a key revoked an hour ago must not sign an envelope dated a second
    # before its revocation. An auditor judging history passes now=created.
    for at in (created, now) if now != created else (created,):
        sender_key = registry.signing_key(sender, KeyId(header.sender_key_id), at=at)
        recipient_key = registry.encryption_key(recipient, KeyId(header.recipient_key_id), at=at)
    # The suite is fixed by the registry, never by the envelope: no downgrade by relabelling.
    if sender_key.suite is not header.suite or recipient_key.suite is not header.suite:
        raise errors.KeyTrustError(f"registered keys do not use suite {header.suite}")
    ciphertext_digest = crypto.sha256(parsed.ciphertext)
    check_sender_signature(
        sender_key,
        header=parsed.header_bytes,
        ciphertext_digest=ciphertext_digest,
        signature=parsed.signature,
        proof=parsed.proof,
    )
    _check_times(created=created, expires=expires, now=now, max_age=max_age, max_skew=max_skew)
    verified = VerifiedHeader(
        suite=header.suite,
        message_id=MessageId(header.message_id),
        case_id=None if header.case_id is None else CaseId(header.case_id),
        sender=PartnerCode(header.sender),
        sender_key_id=KeyId(header.sender_key_id),
        recipient=PartnerCode(header.recipient),
        recipient_key_id=KeyId(header.recipient_key_id),
        created=created,
        expires=expires,
        labels=header.labels,
        accord_id=AccordId(header.accord_id),
        accord_digest=header.accord_digest,
        field_digests={p: bytes.fromhex(d) for p, d in header.commitment.fields.items()},
        content_key_commitment=bytes.fromhex(header.commitment.key),
        header_bytes=parsed.header_bytes,
        ciphertext_digest=ciphertext_digest,
        signature=parsed.signature,
        envelope_digest=crypto.sha256(parsed.data),
        proof=parsed.proof,
        origin=header.origin,
    )
    return verified, parsed


def _check_times(
    *,
    created: dt.datetime,
    expires: dt.datetime,
    now: dt.datetime,
    max_age: dt.timedelta,
    max_skew: dt.timedelta,
) -> None:
    if not dt.timedelta(0) < expires - created <= MAX_TTL:
        raise errors.EnvelopeError("envelope lifetime is out of range")
    if created > now + max_skew:
        raise errors.ReplayError("envelope is dated in the future")
    if now - created > max_age:
        raise errors.ReplayError("envelope is too old")
    if now >= expires:
        raise errors.ReplayError("envelope has expired")


def open_envelope(
    data: bytes | ParsedEnvelope,
    *,
    registry: KeyRegistry,
    recipient: PartnerCode,
    decryption_keys: Mapping[KeyId, crypto.DecryptionKey],
    now: dt.datetime,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    max_skew: dt.timedelta = DEFAULT_MAX_SKEW,
) -> OpenedEnvelope:
    """Verify, decrypt, check the commitments, validate the message; return only verified data.

    Besides :func:`verify`'s errors: EnvelopeError if addressed to someone else, KeyTrustError
    if we hold no key for the recipient key id, DecryptionError, VerificationError when the
    content does not match its commitments, SchemaError when the message is invalid. Like
    :func:`verify`, it takes the envelope's bytes or their :func:`parse`.
    """
    return _open_with(
        data,
        registry=registry,
        recipient=recipient,
        decryption_keys=decryption_keys,
        now=now,
        max_age=max_age,
        max_skew=max_skew,
        validate=schema_parse,
    )


def _open_with(
    data: bytes | ParsedEnvelope,
    *,
    registry: KeyRegistry,
    recipient: PartnerCode,
    decryption_keys: Mapping[KeyId, crypto.DecryptionKey],
    now: dt.datetime,
    max_age: dt.timedelta,
    max_skew: dt.timedelta,
    validate: Callable[[bytes, dict[str, Any]], Message | None],
) -> OpenedEnvelope:
    """:func:`open_envelope` with the content validator as a seam for format-level tests."""
    header, parsed = _verify(data, registry=registry, now=now, max_age=max_age, max_skew=max_skew)
    if header.recipient != recipient:
        raise errors.EnvelopeError(f"envelope is addressed to {header.recipient}, not {recipient}")
    key = decryption_keys.get(header.recipient_key_id)
    if key is None:
        raise errors.KeyTrustError(f"no decryption key for key id {header.recipient_key_id}")
    if key.suite is not header.suite or key.key_id != header.recipient_key_id:
        raise errors.KeyTrustError("decryption key does not match the envelope's key id")
    plaintext = crypto.hpke_open(key, parsed.ciphertext, info=crypto.sha256(parsed.header_bytes))
    opened = open_body(unpad(plaintext))
    _check_commitments(header, opened)
    body = opened.body
    return OpenedEnvelope(
        header=header,
        message_bytes=opened.message_json,
        message=validate(opened.message_json, body.message),
        fields=opened.fields,
        salts=body.salts,
    )


def _check_commitments(header: VerifiedHeader, opened: OpenedBody) -> None:
    """Every committed field present with a matching digest, and nothing uncommitted."""
    body = opened.body
    expected_key = key_commitment(content_key=body.content_key, message_id=header.message_id)
    committed = header.field_digests
    ok = crypto.constant_time_equal(expected_key, header.content_key_commitment) and (
        set(opened.encoded) == set(committed) == set(body.salts)
    )
    if ok:
        # One constant-time comparison over every digest, in one fixed (path) order.
        paths = sorted(committed)
        computed = b"".join(
            encoded_field_digest(salt=body.salts[path], path=path, encoded=opened.encoded[path])
            for path in paths
        )
        ok = crypto.constant_time_equal(computed, b"".join(committed[path] for path in paths))
    if not ok:
        raise errors.VerificationError("envelope content does not verify")
