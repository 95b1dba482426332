"""Selective disclosure: reveal chosen fields of an opened envelope, provably from its sender.

A disclosure carries the signed header bytes, the ciphertext digest and the signature (so the
originator's signature verifies without the ciphertext; for an envelope signed in a batch, also
its place in the batch), and for each revealed field its salt and value. Unrevealed fields stay
hidden behind their salted digests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from broker import crypto, errors
from broker.envelope._batch import check_sender_signature
from broker.envelope._format import MAX_BATCH, BatchProof, canonical_json, strict_json_loads
from broker.envelope._header import (
    field_digest,
    parse_header,
    parse_time,
    top_level_fields,
)
from broker.envelope._open import DEFAULT_MAX_SKEW, KeyRegistry, OpenedEnvelope, parse
from broker.ids import KeyId, PartnerCode

__all__ = ["Disclosure", "check_revealed", "disclose", "disclose_kept", "verify_disclosure"]

_MAX_DISCLOSURE_BYTES = 4 * 1024 * 1024
_DISCLOSURE_KEYS = frozenset({"header", "ciphertext_digest", "signature", "fields"})
_BATCH_KEYS = frozenset({"size", "index", "path"})
_HASH_HEX = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True, slots=True)
class Disclosure:
    """Revealed fields of one envelope with what a third party needs to check them."""

    header_bytes: bytes
    ciphertext_digest: bytes
    signature: bytes
    #: field path -> (salt, value)
    revealed: Mapping[str, tuple[bytes, Any]]
    #: the envelope's place in the batch its signature covers; None if it was signed alone
    proof: BatchProof | None = None

    def to_document(self) -> dict[str, Any]:
        """The JSON object: the header as its exact (UTF-8) text, binary values as hex."""
        document: dict[str, Any] = {
            "header": self.header_bytes.decode("utf-8"),
            "ciphertext_digest": self.ciphertext_digest.hex(),
            "signature": self.signature.hex(),
            "fields": {
                path: {"salt": salt.hex(), "value": value}
                for path, (salt, value) in self.revealed.items()
            },
        }
        if self.proof is not None:
            document["batch"] = {
                "size": self.proof.size,
                "index": self.proof.index,
                "path": [node.hex() for node in self.proof.path],
            }
        return document

    def to_json(self) -> bytes:
        """:meth:`to_document` as canonical JSON."""
        return canonical_json(self.to_document())

    @classmethod
    def from_json(cls, data: bytes) -> Disclosure:
        """Parse :meth:`to_json` output strictly; any defect is an EnvelopeError."""
        if len(data) > _MAX_DISCLOSURE_BYTES:
            raise errors.EnvelopeError("disclosure too large")
        try:
            return _parse_disclosure(data)
        except (errors.SchemaError, ValueError, TypeError, AttributeError) as exc:
            raise errors.EnvelopeError(f"malformed disclosure: {exc}") from None


def _parse_disclosure(data: bytes) -> Disclosure:
    raw = strict_json_loads(data, what="disclosure")
    if not isinstance(raw, dict) or set(raw) - {"batch"} != _DISCLOSURE_KEYS:
        raise errors.SchemaError("unexpected top-level keys")
    revealed: dict[str, tuple[bytes, Any]] = {}
    for path, item in raw["fields"].items():
        if not isinstance(item, dict) or set(item) != {"salt", "value"}:
            raise errors.SchemaError(f"field {path!r}")
        revealed[path] = (bytes.fromhex(item["salt"]), item["value"])
    return Disclosure(
        header_bytes=str(raw["header"]).encode("utf-8"),
        ciphertext_digest=bytes.fromhex(raw["ciphertext_digest"]),
        signature=bytes.fromhex(raw["signature"]),
        revealed=revealed,
        proof=None if "batch" not in raw else _parse_batch(raw["batch"]),
    )


def _parse_batch(raw: Any) -> BatchProof:
    if not isinstance(raw, dict) or set(raw) != _BATCH_KEYS:
        raise errors.SchemaError("batch: unexpected keys")
    size, index, path = raw["size"], raw["index"], raw["path"]
    if type(size) is not int or type(index) is not int or not 0 <= index < size <= MAX_BATCH:
        raise errors.SchemaError("batch: size or index out of range")
    if not isinstance(path, list) or len(path) > (MAX_BATCH - 1).bit_length():
        raise errors.SchemaError("batch: path")
    if not all(isinstance(node, str) and _HASH_HEX.fullmatch(node) for node in path):
        raise errors.SchemaError("batch: a path hash is not 64 lowercase hex digits")
    return BatchProof(size=size, index=index, path=tuple(bytes.fromhex(n) for n in path))


def disclose(opened: OpenedEnvelope, fields: Iterable[str]) -> Disclosure:
    """Reveal ``fields`` (committed paths such as ``body.members``) of ``opened``."""
    chosen = sorted(set(fields))
    unknown = [path for path in chosen if path not in opened.fields]
    if unknown:
        raise errors.UsageError(f"no such committed field(s): {', '.join(unknown)}")
    header = opened.header
    return Disclosure(
        header_bytes=header.header_bytes,
        ciphertext_digest=header.ciphertext_digest,
        signature=header.signature,
        revealed={path: (opened.salts[path], opened.fields[path]) for path in chosen},
        proof=header.proof,
    )


def disclose_kept(
    envelope_bytes: bytes,
    *,
    message_json: bytes,
    salts: Mapping[str, bytes],
    fields: Iterable[str],
) -> Disclosure:
    """Reveal ``fields`` of a view its recipient kept: the envelope as received, the
    message's canonical JSON (as :attr:`OpenedEnvelope.message_bytes`) and the salts.

    Each revealed field is checked against the envelope's signed commitment before it is
    returned, so a store that kept something else is caught here, not by the third party.
    Raises :class:`errors.UsageError` for a path that is not committed (naming those that
    are) and :class:`errors.VerificationError` when the kept evidence does not match.
    """
    parsed = parse(envelope_bytes)
    committed = parsed.header.commitment.fields
    chosen = sorted(set(fields))
    unknown = [path for path in chosen if path not in committed]
    if unknown:
        raise errors.UsageError(
            f"no such committed field(s): {', '.join(unknown)}; the message commits "
            f"{', '.join(sorted(committed))}"
        )
    values = top_level_fields(strict_json_loads(message_json, what="kept message"))
    revealed: dict[str, tuple[bytes, Any]] = {}
    for path in chosen:
        salt = salts.get(path)
        if salt is None or path not in values:
            raise errors.VerificationError("the kept evidence does not match its commitments")
        actual = field_digest(salt=salt, path=path, value=values[path])
        if not crypto.constant_time_equal(actual, bytes.fromhex(committed[path])):
            raise errors.VerificationError("the kept evidence does not match its commitments")
        revealed[path] = (salt, values[path])
    return Disclosure(
        header_bytes=parsed.header_bytes,
        ciphertext_digest=crypto.sha256(parsed.ciphertext),
        signature=parsed.signature,
        revealed=revealed,
        proof=parsed.proof,
    )


def check_revealed(
    committed: Mapping[str, bytes], revealed: Mapping[str, tuple[bytes, Any]]
) -> dict[str, Any]:
    """Each revealed field against ``committed`` (path -> field digest) of a header whose
    signature the caller has verified already (a gateway, for the envelope it just checked:
    :attr:`VerifiedHeader.field_digests`); return path -> value. Raises
    :class:`errors.VerificationError` for a path not committed or a value that does not
    reproduce its digest."""
    result: dict[str, Any] = {}
    for path, (salt, value) in revealed.items():
        expected = committed.get(path)
        try:
            actual = field_digest(salt=salt, path=path, value=value)
        except (TypeError, ValueError) as exc:  # a value with no canonical form
            raise errors.VerificationError(f"revealed field {path!r}: {exc}") from None
        if expected is None or not crypto.constant_time_equal(actual, expected):
            raise errors.VerificationError(f"revealed field {path!r} does not match its commitment")
        result[path] = value
    return result


def verify_disclosure(
    disclosure: Disclosure,
    *,
    registry: KeyRegistry,
    now: dt.datetime | None = None,
    max_skew: dt.timedelta = DEFAULT_MAX_SKEW,
) -> dict[str, Any]:
    """Check the originator's signature and each revealed field; return path -> value.

    Expiry is deliberately not checked: auditors verify disclosures long after delivery. With
    ``now``, a header dated in the future is refused.
    """
    header = parse_header(disclosure.header_bytes)
    created = parse_time(header.created)
    if now is not None and created > now + max_skew:
        raise errors.ReplayError("disclosed envelope is dated in the future")
    sender_key = registry.signing_key(
        PartnerCode(header.sender), KeyId(header.sender_key_id), at=created
    )
    if sender_key.suite is not header.suite:
        raise errors.KeyTrustError(f"registered key does not use suite {header.suite}")
    if len(disclosure.ciphertext_digest) != 32:
        raise errors.VerificationError("disclosure does not verify")
    check_sender_signature(
        sender_key,
        header=disclosure.header_bytes,
        ciphertext_digest=disclosure.ciphertext_digest,
        signature=disclosure.signature,
        proof=disclosure.proof,
    )
    committed = {path: bytes.fromhex(digest) for path, digest in header.commitment.fields.items()}
    try:
        return check_revealed(committed, disclosure.revealed)
    except errors.VerificationError:
        raise errors.VerificationError("disclosure does not verify") from None
