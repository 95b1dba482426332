"""What a recipient keeps of each view to prove it later, and the disclosure bundles built from it.

Kafka forgets: once a topic's retention has passed, nothing but the recipient's own copy says
what it received. So a receiving adapter keeps, beside each stored view, its **evidence**:
the delivery frame exactly as read from ``inbox.<R>`` (the gateway's signed attestation around
the sender's signed envelope) and the salts of the view's field commitments. The inbox seals
it under the view's own key, so it is shredded with the view.

From the evidence and the view's content the recipient builds a **disclosure bundle** that
reveals chosen fields to a third party (an auditor, a court), who checks it offline with the
partner registry alone: the sender signed the header that commits to every field, each
revealed value and salt reproduces its commitment, and a registered gateway attested that it
delivered this exact envelope to this recipient under the named accord. The bundle's bytes
are in docs/PROTOCOL.md, section 9::

    {"delivery": base64(frame), "fields": {path: {"salt": hex, "value": value}, ...},
     "format": "broker-disclosure/v1"}

It carries the envelope's ciphertext (the attestation binds the whole envelope): sealed to
the recipient alone, it tells the third party nothing, but whoever later held the recipient's
decryption key could read the undisclosed fields in it (docs/THREAT-MODEL.md).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, Protocol

from broker import crypto, envelope, errors, limits, strictjson
from broker.envelope import Disclosure, EnvelopeHeader, KeyRegistry
from broker.pipeline.delivery import Attestation, verify_attested
from broker.pipeline.records import GatewayKeys
from broker.schema import MAX_DEPTH

__all__ = [
    "BUNDLE_FORMAT",
    "Evidence",
    "VerifiedBundle",
    "disclosure_bundle",
    "verify_bundle",
]

BUNDLE_FORMAT = "broker-disclosure/v1"
_MAX_BYTES = limits.DISCLOSURE_BUNDLE_MAX_BYTES
_HEX = re.compile(r"(?:[0-9a-f]{2})*")
#: a message's own nesting, inside ``fields.<path>.value``
_MAX_BUNDLE_DEPTH = MAX_DEPTH + 3


class _Registry(KeyRegistry, GatewayKeys, Protocol):
    """The lookups a bundle needs: the sender's signing key and the gateway's key."""


def _no_truth(self: object) -> NoReturn:
    raise TypeError(f"{type(self).__name__} has no truth value; verification raises on failure")


@dataclasses.dataclass(frozen=True, slots=True)
class Evidence:
    """The delivery frame of one view as received, and the salts of its committed fields."""

    frame: bytes = dataclasses.field(repr=False)
    salts: Mapping[str, bytes] = dataclasses.field(repr=False)

    def to_bytes(self) -> bytes:
        """Canonical JSON: ``{"delivery": base64, "salts": {path: hex}}``."""
        return strictjson.canonical(
            {
                "delivery": base64.b64encode(self.frame).decode("ascii"),
                "salts": {path: salt.hex() for path, salt in sorted(self.salts.items())},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Evidence:
        """Invert :meth:`to_bytes`; anything else is an :class:`errors.EnvelopeError`."""
        raw = _object(data, what="the kept evidence")
        if set(raw) != {"delivery", "salts"} or not isinstance(raw["salts"], dict):
            raise errors.EnvelopeError("the kept evidence is malformed")
        salts = {path: _hex(salt, what="a kept salt") for path, salt in raw["salts"].items()}
        return cls(_base64(raw["delivery"], what="the kept delivery"), salts)


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedBundle:
    """A disclosure bundle whose every signature and commitment checked: what it proves."""

    #: the sender-signed header (labels, times, accord, every committed path)
    header: EnvelopeHeader
    #: the registered gateway's signed decision to deliver this envelope
    attestation: Attestation
    #: exactly the revealed fields, path -> value
    fields: Mapping[str, Any]

    __bool__ = _no_truth

    @property
    def withheld(self) -> tuple[str, ...]:
        """The committed paths not revealed: they exist, their values stay hidden."""
        return tuple(sorted(set(self.header.commitment.fields) - set(self.fields)))


def disclosure_bundle(
    evidence: Evidence,
    *,
    message_json: bytes,
    fields: Iterable[str],
    registry: _Registry,
) -> bytes:
    """The bundle revealing ``fields`` of a kept view (``message_json``: its canonical JSON).

    It is verified before it is returned, as its reader will verify it: a recipient never
    hands out a bundle that does not prove what it says. Raises :class:`errors.UsageError`
    for a path the view does not commit, and our integrity errors for evidence that does not
    verify.
    """
    delivered = verify_attested(evidence.frame, registry=registry)
    disclosure = envelope.disclose_kept(
        delivered.envelope_bytes,
        message_json=message_json,
        salts=evidence.salts,
        fields=fields,
    )
    bundle = strictjson.canonical(
        {
            "delivery": base64.b64encode(evidence.frame).decode("ascii"),
            "fields": {
                path: {"salt": salt.hex(), "value": value}
                for path, (salt, value) in disclosure.revealed.items()
            },
            "format": BUNDLE_FORMAT,
        },
        allow_floats=True,
    )
    verify_bundle(bundle, registry=registry)
    return bundle


def verify_bundle(data: bytes, *, registry: _Registry) -> VerifiedBundle:
    """Check a disclosure bundle offline; return only what it proves.

    In order: the size and shape; the gateway's attestation (a gateway key registered at its
    ``decided_at``, over this exact envelope, naming the envelope's message, sender, recipient
    and accord); the sender's signature (a key registered at the envelope's ``created``); each
    revealed field against its signed commitment. The envelope's expiry is not checked: a
    disclosure is read long after delivery. Raises :class:`errors.EnvelopeError` for a
    malformed bundle, :class:`errors.KeyTrustError` for a key the registry does not vouch
    for, :class:`errors.VerificationError` for a signature or commitment that fails.
    """
    if len(data) > _MAX_BYTES:
        raise errors.EnvelopeError(f"a disclosure bundle is at most {_MAX_BYTES} bytes")
    raw = _object(data, what="the disclosure bundle")
    if set(raw) != {"delivery", "fields", "format"}:
        raise errors.EnvelopeError(
            'a disclosure bundle has exactly the members "delivery", "fields" and "format"'
        )
    if raw["format"] != BUNDLE_FORMAT:
        raise errors.EnvelopeError(f"not a disclosure bundle of format {BUNDLE_FORMAT}")
    fields = raw["fields"]
    if not isinstance(fields, dict):
        raise errors.EnvelopeError('the bundle\'s "fields" is not an object')
    revealed: dict[str, tuple[bytes, Any]] = {}
    for path, item in fields.items():
        if not isinstance(item, dict) or set(item) != {"salt", "value"}:
            raise errors.EnvelopeError(f'field {path!r} needs exactly "salt" and "value"')
        revealed[path] = (_hex(item["salt"], what=f"the salt of {path!r}"), item["value"])
    delivered = verify_attested(_base64(raw["delivery"], what="the delivery"), registry=registry)
    parsed = delivered.envelope  # parsed once, by the attestation check
    values = envelope.verify_disclosure(
        Disclosure(
            header_bytes=parsed.header_bytes,
            ciphertext_digest=crypto.sha256(parsed.ciphertext),
            signature=parsed.signature,
            revealed=revealed,
            proof=parsed.proof,
        ),
        registry=registry,
    )
    return VerifiedBundle(header=parsed.header, attestation=delivered.attestation, fields=values)


def _object(data: bytes, *, what: str) -> dict[str, Any]:
    try:
        value = strictjson.loads(data, max_depth=_MAX_BUNDLE_DEPTH, allow_floats=True)
    except strictjson.StrictJSONError as exc:
        raise errors.EnvelopeError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise errors.EnvelopeError(f"{what} is not a JSON object")
    return value


def _base64(value: object, *, what: str) -> bytes:
    if isinstance(value, str) and value.isascii():
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            pass
    raise errors.EnvelopeError(f"{what} is not base64")


def _hex(value: object, *, what: str) -> bytes:
    # lowercase pairs only: bytes.fromhex would also take spaces and capitals
    if isinstance(value, str) and _HEX.fullmatch(value):
        return bytes.fromhex(value)
    raise errors.EnvelopeError(f"{what} is not lowercase hex")
