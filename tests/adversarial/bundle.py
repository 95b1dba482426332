"""Disclosure bundles built and checked from docs/PROTOCOL.md section 9 alone.

An outsider's implementation: ``cryptography``, ``hashlib``, ``json`` and ``base64``, and the
registry read as KEYS.md describes it; nothing from ``broker``. A bundle ``broker disclose``
wrote that this module accepts, and one this module built that ``broker disclosure verify``
accepts, show the section is enough to verify disclosures independently; a tampered bundle
both refuse shows neither accepts what the section says to refuse.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import struct
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from . import wire

__all__ = ["BundleError", "build", "split_frame", "verify"]

FORMAT = "broker-disclosure/v1"  # section 9.1
MAX_BYTES = 8_388_608
GATEWAY_DOMAIN = b"xb-gateway-decision-v1\x00"  # GATEWAY.md, "Records on the wire"
GATEWAY_BATCH_DOMAIN = b"xb-gateway-batch-v1\x00"  # GATEWAY.md, "Records on the wire"
SKEW = dt.timedelta(minutes=5)  # section 9.2, step 5
_ATTESTATION_KEYS = {
    "v",
    "message_id",
    "envelope_sha256",
    "sender",
    "recipient",
    "accord_id",
    "accord_version",
    "accord_digest",
    "decision",
    "rule_ids",
    "decided_at",
    "gateway_key_id",
}


class BundleError(Exception):
    """The bundle does not prove what it says; ``step`` is section 9.2's step that failed."""

    def __init__(self, step: int, why: str) -> None:
        super().__init__(f"step {step}: {why}")
        self.step = step


def build(frame: bytes, reveal: dict[str, tuple[bytes, Any]]) -> bytes:
    """Section 9.1: the frame as read from the inbox, and ``path -> (salt, value)``."""
    return wire.canonical(
        {
            "delivery": base64.b64encode(frame).decode("ascii"),
            "fields": {p: {"salt": s.hex(), "value": v} for p, (s, v) in reveal.items()},
            "format": FORMAT,
        }
    )


def split_frame(frame: bytes) -> tuple[bytes, bytes, wire.Proof | None, bytes]:
    """GATEWAY.md's delivery frame: attestation, signature, the batch proof (``XBD2``: the
    attestations of one output batch signed under one head) and the envelope."""
    (a,) = struct.unpack_from(">I", frame, 4)
    (s,) = struct.unpack_from(">I", frame, 8 + a)
    attestation, signature, rest = frame[8 : 8 + a], frame[12 + a : 12 + a + s], frame[12 + a + s :]
    if frame[:4] != b"XBD2":
        return attestation, signature, None, rest
    size, index, count = struct.unpack_from(">IIB", rest)
    path = tuple(rest[9 + 32 * i : 9 + 32 * (i + 1)] for i in range(count))
    return attestation, signature, wire.Proof(size, index, path), rest[9 + 32 * count :]


def _time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _usable(entry: dict[str, Any], at: dt.datetime) -> bool:
    """KEYS.md: ``not_before <= t < not_after`` and, if revoked, ``t < revoked_at``."""
    if not _time(entry["not_before"]) <= at < _time(entry["not_after"]):
        return False
    return "revoked_at" not in entry or at < _time(entry["revoked_at"])


def _ed25519(entry: dict[str, Any]) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"]))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a duplicate key")
    return dict(pairs)


def verify(data: bytes, registry: dict[str, Any]) -> dict[str, Any]:
    """Section 9.2 step by step; the revealed ``path -> value``, or :class:`BundleError`."""
    # 1. the object
    if len(data) > MAX_BYTES:
        raise BundleError(1, "too large")
    try:
        bundle = json.loads(data, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise BundleError(1, f"not JSON: {exc}") from None
    if not isinstance(bundle, dict) or set(bundle) != {"delivery", "fields", "format"}:
        raise BundleError(1, "not the three members")
    if bundle["format"] != FORMAT or not isinstance(bundle["fields"], dict):
        raise BundleError(1, "format or fields")
    revealed: dict[str, tuple[bytes, Any]] = {}
    for path, item in bundle["fields"].items():
        if not isinstance(item, dict) or set(item) != {"salt", "value"}:
            raise BundleError(1, f"field {path}")
        if not isinstance(item["salt"], str) or not re.fullmatch(r"([0-9a-f]{2})*", item["salt"]):
            raise BundleError(1, f"salt of {path}")
        revealed[path] = (bytes.fromhex(item["salt"]), item["value"])
    # 2. the frame
    try:
        frame = base64.b64decode(bundle["delivery"], validate=True)
    except (ValueError, TypeError):
        raise BundleError(2, "delivery is not base64") from None
    if frame[:4] not in (b"XBD1", b"XBD2"):
        raise BundleError(2, "neither XBD1 nor XBD2")
    attestation_bytes, gateway_signature, proof, envelope = split_frame(frame)
    attestation = json.loads(attestation_bytes)
    if set(attestation) != _ATTESTATION_KEYS or wire.canonical(attestation) != attestation_bytes:
        raise BundleError(2, "the attestation is not canonical or has other members")
    # 3. the gateway's key at decided_at, and its signature
    decided = _time(attestation["decided_at"])
    gateways = [
        g
        for g in registry["signed"]["gateways"]
        if g["key_id"] == attestation["gateway_key_id"] and _usable(g, decided)
    ]
    if not gateways:
        raise BundleError(3, "no registered gateway key at decided_at")
    try:
        signed = GATEWAY_DOMAIN + wire.lp(attestation_bytes)
        if proof is not None:
            head = wire.head_from_path(hashlib.sha256(b"\x00" + signed).digest(), proof)
            signed = GATEWAY_BATCH_DOMAIN + struct.pack(">I", proof.size) + head
        _ed25519(gateways[0]).verify(gateway_signature, signed)
    except (InvalidSignature, AssertionError):
        raise BundleError(3, "the gateway's signature") from None
    # 4. the attested envelope
    if hashlib.sha256(envelope).hexdigest() != attestation["envelope_sha256"]:
        raise BundleError(4, "envelope digest")
    # 5. the envelope names what was attested
    parts = wire.parse_envelope(envelope)
    header = parts.header_fields
    for name in ("message_id", "sender", "recipient", "accord_id"):
        if header[name] != attestation[name]:
            raise BundleError(5, f"{name} differs")
    created = _time(header["created"])
    if decided < created - SKEW:
        raise BundleError(5, "decided before it was sealed")
    # 6. the sender's key at created, and its signature
    partner = next(
        (p for p in registry["signed"]["partners"] if p["code"] == header["sender"]), None
    )
    keys = [
        k
        for k in (partner or {}).get("signing_keys", [])
        if k["key_id"] == header["sender_key_id"] and _usable(k, created)
    ]
    if not keys or header["suite"] != "classic":
        raise BundleError(6, "no registered signing key of the sender at created")
    try:
        _ed25519(keys[0]).verify(parts.signature, wire.signed_message(parts))
    except (InvalidSignature, AssertionError):
        raise BundleError(6, "the sender's signature") from None
    # 7. each revealed field against its commitment
    committed = header["commitment"]["fields"]
    values: dict[str, Any] = {}
    for path, (salt, value) in revealed.items():
        digest = hashlib.sha256(
            wire.lp(wire.DST_FIELD)
            + wire.lp(salt)
            + wire.lp(path.encode("ascii"))
            + wire.lp(_canonical_value(value))
        ).hexdigest()
        if committed.get(path) != digest:
            raise BundleError(7, f"{path} does not match its commitment")
        values[path] = value
    return values


def _canonical_value(value: Any) -> bytes:
    """Section 2.1 with characters as themselves (not ``wire.canonical``'s ASCII escapes): a
    value is committed in exactly this form, and a name may hold any letter."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
