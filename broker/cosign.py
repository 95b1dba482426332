"""Co-signed accords: every party signs the accord's canonical bytes before anyone enforces it.

What is signed is the parsed accord, not its YAML text: :func:`accord_bytes` is the canonical
JSON of the model (sorted keys, sets sorted, no whitespace), so a comment or a reindentation
does not invalidate signatures, while any change of rule does. A signature covers
``ACCORD_SIGNING_CONTEXT || 0x00 || uint64_be(len(c)) || c``; the prefix keeps an accord
signature from ever passing as any other signature made with the same key.

Signatures live beside the accord in ``<accord>.sigs.json`` (detached, so partners sign
asynchronously). :func:`verify_accord` accepts an accord only with a valid signature from a
current policy key of **every** party (counted per party, over distinct parties). Whether the
accord is in force, and which version decides, is :mod:`broker.trust`'s business: an expired
accord keeps valid signatures, and is held so that its flows are refused by name.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import pathlib
from collections.abc import Sequence
from typing import Annotated, NoReturn

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from broker import crypto, errors
from broker.bounded import read_bounded
from broker.ids import KeyId, PartnerCode
from broker.keys import Registry, canonical_json
from broker.policy import Accord

__all__ = [
    "ACCORD_SIGNING_CONTEXT",
    "MAX_SIGNATURE_FILE_BYTES",
    "AccordSignature",
    "SignatureFile",
    "VerifiedAccord",
    "accord_bytes",
    "accord_digest",
    "parse_signature_file",
    "read_signature_file",
    "sign_accord",
    "signature_path",
    "verify_accord",
    "write_signature_file",
]

ACCORD_SIGNING_CONTEXT = b"broker/accord/v1"
#: the largest ``.sigs.json`` file read
MAX_SIGNATURE_FILE_BYTES = 256 * 1024


class AccordSignature(BaseModel):
    """One party's signature over one accord digest."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    partner: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    signature: Annotated[str, Field(min_length=1, max_length=16_384)]  # base64


class SignatureFile(BaseModel):
    """``<accord>.sigs.json``: which accord version and digest the signatures cover."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    accord: str
    version: int
    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    signatures: Annotated[tuple[AccordSignature, ...], Field(max_length=64)] = ()


@dataclasses.dataclass(frozen=True)
class VerifiedAccord:
    """An accord whose co-signatures verified, with who signed and the digest they signed."""

    accord: Accord
    digest: str
    signers: frozenset[PartnerCode]

    def __bool__(self) -> NoReturn:
        raise TypeError("a VerifiedAccord has no truth value; verification raises on failure")


def accord_bytes(accord: Accord) -> bytes:
    """The canonical bytes of the parsed accord (what partners sign): the project's one
    canonical JSON form (docs/KEYS.md)."""
    return canonical_json(accord.model_dump(mode="json", by_alias=True))


def accord_digest(accord: Accord) -> str:
    """Lowercase hex SHA-256 of :func:`accord_bytes`; envelopes carry it as the accord digest."""
    return crypto.sha256(accord_bytes(accord)).hex()


def signature_path(accord_path: pathlib.Path) -> pathlib.Path:
    """``policies/gb-rs.yaml`` -> ``policies/gb-rs.yaml.sigs.json``."""
    return accord_path.with_name(accord_path.name + ".sigs.json")


def _signing_input(accord: Accord) -> bytes:
    canonical = accord_bytes(accord)
    return ACCORD_SIGNING_CONTEXT + b"\x00" + len(canonical).to_bytes(8, "big") + canonical


def sign_accord(
    accord: Accord,
    existing: SignatureFile | None,
    *,
    key: crypto.SigningKey,
    partner: PartnerCode,
) -> SignatureFile:
    """Add ``partner``'s signature; signatures over an older digest are dropped."""
    if partner not in accord.parties:
        raise errors.PolicyError(f"{partner} is not a party to accord {accord.accord}")
    digest = accord_digest(accord)
    key_id = key.public_key().key_id
    kept: Sequence[AccordSignature] = ()
    if existing is not None and existing.digest == digest:
        kept = [s for s in existing.signatures if (s.partner, s.key_id) != (partner, key_id)]
    signature = AccordSignature(
        partner=partner,
        key_id=key_id,
        signature=base64.b64encode(key.sign(_signing_input(accord))).decode("ascii"),
    )
    return SignatureFile(
        accord=accord.accord,
        version=accord.version,
        digest=digest,
        signatures=(*kept, signature),
    )


def verify_accord(
    accord: Accord, signatures: SignatureFile, *, registry: Registry, now: dt.datetime
) -> VerifiedAccord:
    """Require a valid signature from a current policy key of every party; raise PolicyError."""
    digest = accord_digest(accord)
    if (signatures.accord, signatures.version, signatures.digest) != (
        accord.accord,
        accord.version,
        digest,
    ):
        raise errors.PolicyError(
            f"accord {accord.accord} v{accord.version}: the signatures are for "
            f"{signatures.accord} v{signatures.version} with another digest; sign this version"
        )
    message = _signing_input(accord)
    signed: set[PartnerCode] = set()
    for party in accord.party_codes:
        try:
            current = {k.key_id: k for k in registry.policy_keys(party, at=now)}
        except errors.KeyTrustError:
            continue
        for entry in signatures.signatures:
            key = current.get(KeyId(entry.key_id))
            if entry.partner != party or key is None:
                continue
            try:
                key.verify(
                    signature=base64.b64decode(entry.signature, validate=True), message=message
                )
            except (errors.VerificationError, ValueError):
                continue
            signed.add(party)
            break
    missing = sorted(accord.party_codes - signed)
    if missing:
        raise errors.PolicyError(
            f"accord {accord.accord} v{accord.version} lacks a valid signature from a current "
            f"policy key of {', '.join(missing)}; run 'broker policy sign' for each party"
        )
    return VerifiedAccord(accord=accord, digest=digest, signers=frozenset(signed))


def read_signature_file(path: pathlib.Path) -> SignatureFile:
    """Parse ``path`` strictly; a missing or malformed file is a PolicyError."""
    data = read_bounded(
        path,
        limit=MAX_SIGNATURE_FILE_BYTES,
        what="signatures",
        too_large=errors.PolicyError,
        unreadable=errors.PolicyError,
    )
    return parse_signature_file(data, source=str(path))


def parse_signature_file(data: bytes, *, source: str) -> SignatureFile:
    """Parse a signature file's bytes strictly (``source`` names them in errors)."""
    if len(data) > MAX_SIGNATURE_FILE_BYTES:
        raise errors.PolicyError(f"{source}: over {MAX_SIGNATURE_FILE_BYTES} bytes")
    try:
        return SignatureFile.model_validate_json(data, strict=True)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(file)"
        raise errors.PolicyError(f"{source}: {where}: {first['msg']}") from exc


def write_signature_file(path: pathlib.Path, signatures: SignatureFile) -> None:
    """Write ``signatures`` as readable JSON (reviewed in pull requests)."""
    path.write_text(signatures.model_dump_json(indent=2) + "\n", encoding="utf-8")
