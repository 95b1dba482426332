"""The exchange's wire formats, built from the documents alone, as an outsider would build them.

Everything here follows docs/PROTOCOL.md (envelopes), docs/GATEWAY.md (delivery frames and
quarantine records) and docs/KEYS.md (the registry document); the section each piece follows
is named beside it. It uses ``cryptography`` directly and imports nothing from ``broker``: a
test that passes with these builders shows the documents are enough to talk to the exchange,
and a builder that had to guess shows where they are not.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import os
import struct
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

__all__ = [
    "Envelope",
    "Registry",
    "attestation_frame",
    "canonical",
    "committed_fields",
    "envelope_message",
    "load_signing_key",
    "parse_envelope",
    "quarantine_record",
    "seal",
    "signing_input",
    "uuid7",
]

MAGIC = b"\x89XBE"  # PROTOCOL.md section 1
DST_SIGNATURE = b"broker-envelope/v1 signature"  # section 5
DST_BATCH = b"broker-envelope/v2 batch"  # section 5
DST_FIELD = b"broker-envelope/v1 field"  # section 2.3
DST_KEY = b"broker-envelope/v1 key-commitment"  # section 2.3
NOTICE_MAGIC = b"XBN1"
NOTICE_DOMAIN = b"xb-gateway-notice-v1\x00"
DELIVERY_MAGIC = b"XBD1"  # GATEWAY.md, "Records on the wire"
DELIVERY_DOMAIN = b"xb-gateway-decision-v1\x00"
QUARANTINE_DOMAIN = b"xb-quarantine-record-v2\x00"
_HPKE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def canonical(value: Any) -> bytes:
    """PROTOCOL.md section 2.1: sorted keys, no whitespace, UTF-8 with every character written
    as itself but quotes, backslashes and control characters."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def lp(data: bytes) -> bytes:
    """``u32(len(x)) || x`` (PROTOCOL.md notation)."""
    return struct.pack(">I", len(data)) + data


def timestamp(at: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def uuid7() -> str:
    """A UUIDv7 (RFC 9562) in lowercase canonical text: 48 bits of milliseconds, then random."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant 10
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def key_id(public: bytes) -> str:
    """PROTOCOL.md section 3: the first 32 hex characters of SHA-256 of the public key."""
    return hashlib.sha256(public).hexdigest()[:32]


def load_signing_key(pem: Path, passphrase_file: Path) -> ed25519.Ed25519PrivateKey:
    """An encrypted PKCS#8 Ed25519 key (KEYS.md, "Files")."""
    passphrase = passphrase_file.read_bytes().removesuffix(b"\n")
    key = serialization.load_pem_private_key(pem.read_bytes(), password=passphrase)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key


def raw_public(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


@dataclasses.dataclass(frozen=True)
class Registry:
    """What KEYS.md's registry document says about keys, read as plain JSON."""

    document: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> Registry:
        return cls(json.loads(path.read_bytes()))

    def _partner(self, code: str) -> dict[str, Any]:
        return next(p for p in self.document["signed"]["partners"] if p["code"] == code)

    def encryption_key(self, code: str) -> tuple[str, bytes]:
        """The partner's newest classic encryption key: (key id, raw X25519 public key). A key
        without its own ``suite`` has its partner's (KEYS.md)."""
        partner = self._partner(code)
        classic = [
            e for e in partner["encryption_keys"] if e.get("suite", partner["suite"]) == "classic"
        ]
        entry = max(classic, key=lambda e: e["not_before"])
        return entry["key_id"], base64.b64decode(entry["public_key"])

    def units(self, code: str) -> list[dict[str, str]] | None:
        """The units the partner lists, each ``{agency, unit}``; None when it lists none."""
        listed = self._partner(code).get("units")
        return None if listed is None else [dict(u) for u in listed]

    def gateway_key_id(self) -> str:
        return str(self.document["signed"]["gateways"][0]["key_id"])

    def signing_public(self, code: str, key_id: str) -> ed25519.Ed25519PublicKey:
        """The partner's registered classic signing key ``key_id`` (KEYS.md)."""
        entry = next(k for k in self._partner(code)["signing_keys"] if k["key_id"] == key_id)
        raw = base64.b64decode(entry["public_key"])
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)

    def gateway_public(self) -> ed25519.Ed25519PublicKey:
        raw = base64.b64decode(self.document["signed"]["gateways"][0]["public_key"])
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)


@dataclasses.dataclass(frozen=True)
class Proof:
    """An envelope's place in the batch its signature covers (PROTOCOL.md section 1, version
    2): leaf ``index`` of ``size``, and the inclusion path from its leaf to the signed head."""

    size: int
    index: int
    path: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        return struct.pack(">IIB", self.size, self.index, len(self.path)) + b"".join(self.path)


@dataclasses.dataclass(frozen=True)
class Envelope:
    """An envelope's parts (PROTOCOL.md section 1); ``proof`` for framing version 2."""

    header: bytes
    ciphertext: bytes
    signature: bytes
    proof: Proof | None = None

    def to_bytes(self) -> bytes:
        return (
            MAGIC
            + (b"\x01" if self.proof is None else b"\x02")
            + lp(self.header)
            + lp(self.ciphertext)
            + struct.pack(">H", len(self.signature))
            + self.signature
            + (b"" if self.proof is None else self.proof.to_bytes())
        )

    @property
    def header_fields(self) -> dict[str, Any]:
        return dict(json.loads(self.header))

    def with_header(self, fields: dict[str, Any]) -> Envelope:
        """The same ciphertext and signature under another header (no longer valid)."""
        return dataclasses.replace(self, header=canonical(fields))

    def resigned(self, key: ed25519.Ed25519PrivateKey) -> Envelope:
        return dataclasses.replace(self, signature=key.sign(signing_input(self)), proof=None)


def parse_envelope(data: bytes) -> Envelope:
    """Split framed bytes into their parts (PROTOCOL.md section 1), trusting nothing else."""
    assert data[:4] == MAGIC
    assert data[4] in (1, 2)
    (h,) = struct.unpack_from(">I", data, 5)
    header = data[9 : 9 + h]
    (c,) = struct.unpack_from(">I", data, 9 + h)
    ciphertext = data[13 + h : 13 + h + c]
    (s,) = struct.unpack_from(">H", data, 13 + h + c)
    end = 15 + h + c + s
    if data[4] == 1:
        assert end == len(data)
        return Envelope(header, ciphertext, data[15 + h + c : end])
    size, index, count = struct.unpack_from(">IIB", data, end)
    path = tuple(data[end + 9 + 32 * i : end + 9 + 32 * (i + 1)] for i in range(count))
    assert end + 9 + 32 * count == len(data)
    return Envelope(header, ciphertext, data[15 + h + c : end], Proof(size, index, path))


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _head(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1: split at the largest power of two smaller than n."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return _node(_head(leaves[:k]), _head(leaves[k:]))


def inclusion_path(leaves: list[bytes], index: int) -> list[bytes]:
    """RFC 6962 section 2.1.1, PATH(m, D[n]): the siblings from the leaf up."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < k:
        return [*inclusion_path(leaves[:k], index), _head(leaves[k:])]
    return [*inclusion_path(leaves[k:], index - k), _head(leaves[:k])]


def head_from_path(leaf: bytes, proof: Proof) -> bytes:
    """RFC 9162 section 2.1.3.2, as PROTOCOL.md section 5 cites it: the head ``proof`` leads
    to from ``leaf``; a path of the wrong length is an AssertionError."""
    fn, sn, result = proof.index, proof.size - 1, leaf
    for sibling in proof.path:
        assert sn != 0
        if fn & 1 or fn == sn:
            result = _node(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = _node(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0
    return result


def signed_message(envelope: Envelope) -> bytes:
    """What the sender's signature covers (PROTOCOL.md section 5): the signing input, or for a
    batch ``lp(DST_BATCH) || u32(size) || head``."""
    if envelope.proof is None:
        return signing_input(envelope)
    head = head_from_path(_leaf(signing_input(envelope)), envelope.proof)
    return lp(DST_BATCH) + struct.pack(">I", envelope.proof.size) + head


def batch_signed(envelopes: list[Envelope], key: ed25519.Ed25519PrivateKey) -> list[Envelope]:
    """The envelopes signed as one batch (framing version 2), by the document's recipe."""
    leaves = [_leaf(signing_input(e)) for e in envelopes]
    head = _head(leaves)
    signature = key.sign(lp(DST_BATCH) + struct.pack(">I", len(leaves)) + head)
    return [
        dataclasses.replace(
            e, signature=signature, proof=Proof(len(leaves), i, tuple(inclusion_path(leaves, i)))
        )
        for i, e in enumerate(envelopes)
    ]


def signing_input(envelope: Envelope) -> bytes:
    """PROTOCOL.md section 5."""
    return (
        lp(DST_SIGNATURE) + lp(envelope.header) + lp(hashlib.sha256(envelope.ciphertext).digest())
    )


def envelope_message(
    *, case_id: str, tlp: str = "GREEN", summary: str = "A crossing at night, reported."
) -> dict[str, Any]:
    """A small network report every accord of the exchange lets GB and its partners send."""
    return {
        "body": {"summary": summary},
        "case_id": case_id,
        "classification": "OFFICIAL",
        "handling": "H0",
        "purposes": ["people-smuggling"],
        "schema_version": 1,
        "tlp": tlp,
        "type": "network.report",
    }


def labels_of(message: dict[str, Any], **override: Any) -> dict[str, Any]:
    """The signed labels of section 2.2 for ``message`` (its only field is operational)."""
    labels = {
        "classification": message["classification"],
        "data_categories": ["operational"],
        "handling": message["handling"],
        "message_type": message["type"],
        "purposes": sorted(message["purposes"]),
        "schema_version": message["schema_version"],
        "tlp": message["tlp"],
    }
    return {**labels, **override}


def committed_fields(message: dict[str, Any]) -> dict[str, Any]:
    """Section 2.3: top-level members, each member of a non-empty ``body`` on its own."""
    fields: dict[str, Any] = {}
    for name, value in message.items():
        if name == "body" and isinstance(value, dict) and value:
            fields.update({f"body.{inner}": v for inner, v in value.items()})
        else:
            fields[name] = value
    return fields


def _padded(body: bytes) -> bytes:
    """Section 4: u32 length, the body, zeros to the smallest power of two (at least 512)."""
    size = 512
    while size < 4 + len(body):
        size *= 2
    return struct.pack(">I", len(body)) + body + bytes(size - 4 - len(body))


def seal(
    *,
    message: dict[str, Any],
    labels: dict[str, Any],
    sender: str,
    sender_key: ed25519.Ed25519PrivateKey,
    recipient: str,
    registry: Registry,
    accord_id: str,
    accord_digest: str,
    suite: str = "classic",
    message_id: str | None = None,
    created: dt.datetime | None = None,
    ttl: dt.timedelta = dt.timedelta(days=1),
    salts: dict[str, bytes] | None = None,
    origin: dict[str, str] | None = None,
) -> Envelope:
    """A v1 envelope, every byte as PROTOCOL.md sections 1 to 5 define it; ``salts`` (one per
    committed path, default random) lets its sender disclose fields of it later. With an
    ``origin`` (the submitting officer, section 2.2) the header is version 2 and names it."""
    created = created or dt.datetime.now(dt.UTC)
    message_id = message_id or uuid7()
    recipient_key_id, recipient_public = registry.encryption_key(recipient)
    content_key = os.urandom(32)
    if salts is None:
        salts = {path: os.urandom(16) for path in committed_fields(message)}
    digests = {
        path: hashlib.sha256(
            lp(DST_FIELD) + lp(salts[path]) + lp(path.encode("ascii")) + lp(canonical(value))
        ).hexdigest()
        for path, value in committed_fields(message).items()
    }
    key_commitment = hashlib.sha256(lp(DST_KEY) + lp(content_key) + lp(message_id.encode("ascii")))
    fields: dict[str, Any] = {
        "accord_digest": accord_digest,
        "accord_id": accord_id,
        "case_id": message.get("case_id"),
        "commitment": {"fields": digests, "key": key_commitment.hexdigest()},
        "created": timestamp(created),
        "expires": timestamp(created + ttl),
        "labels": labels,
        "message_id": message_id,
        "recipient": recipient,
        "recipient_key_id": recipient_key_id,
        "sender": sender,
        "sender_key_id": key_id(raw_public(sender_key)),
        "suite": suite,
        "version": 1,
    }
    if origin is not None:
        fields.update(origin=origin, version=2)
    header = canonical(fields)
    body = canonical(
        {
            "key": content_key.hex(),
            "message": message,
            "salts": {path: salt.hex() for path, salt in salts.items()},
        }
    )
    public = x25519.X25519PublicKey.from_public_bytes(recipient_public)
    ciphertext = _HPKE.encrypt(_padded(body), public, info=hashlib.sha256(header).digest())
    unsigned = Envelope(header, ciphertext, b"")
    return unsigned.resigned(sender_key)


def attestation_frame(
    envelope: bytes,
    *,
    signer: ed25519.Ed25519PrivateKey,
    gateway_key_id: str,
    message_id: str,
    sender: str,
    recipient: str,
    accord_id: str,
    accord_digest: str,
    accord_version: int = 1,
    decided_at: dt.datetime | None = None,
) -> bytes:
    """A delivery frame (GATEWAY.md): ``XBD1 | u32 len | attestation | u32 len | sig | env``,
    the attestation signed by ``signer`` over ``DELIVERY_DOMAIN | u32 len | attestation``."""
    attestation = canonical(
        {
            "accord_digest": accord_digest,
            "accord_id": accord_id,
            "accord_version": accord_version,
            "decided_at": timestamp(decided_at or dt.datetime.now(dt.UTC)),
            "decision": "allow",
            "envelope_sha256": hashlib.sha256(envelope).hexdigest(),
            "gateway_key_id": gateway_key_id,
            "message_id": message_id,
            "recipient": recipient,
            "rule_ids": [],
            "sender": sender,
            "v": 1,
        }
    )
    signature = signer.sign(DELIVERY_DOMAIN + lp(attestation))
    return DELIVERY_MAGIC + lp(attestation) + lp(signature) + envelope


def notice_frame(
    *,
    signer: ed25519.Ed25519PrivateKey,
    gateway_key_id: str,
    message_id: str,
    sender: str,
    recipient: str,
    reason_code: str,
    reason: str,
    decided_at: dt.datetime | None = None,
) -> bytes:
    """A quarantine notice (GATEWAY.md): ``XBN1 | u32 len | notice | u32 len | sig``, the
    notice signed by ``signer`` over ``NOTICE_DOMAIN | u32 len | notice``."""
    notice = canonical(
        {
            "decided_at": timestamp(decided_at or dt.datetime.now(dt.UTC)),
            "envelope_sha256": "00" * 32,
            "gateway_key_id": gateway_key_id,
            "kind": "quarantined",
            "message_id": message_id,
            "reason": reason,
            "reason_code": reason_code,
            "recipient": recipient,
            "sender": sender,
            "source": {"offset": 0, "partition": 0, "topic": f"xb.outbox.{sender}"},
            "v": 1,
        }
    )
    return NOTICE_MAGIC + lp(notice) + lp(signer.sign(NOTICE_DOMAIN + lp(notice)))


def quarantine_record(
    *,
    source: tuple[str, int, int],
    value: bytes,
    signer: ed25519.Ed25519PrivateKey | None,
    gateway_key_id: str,
    reason_code: str = "policy_denied",
    reason: str = "refused",
    at: dt.datetime | None = None,
) -> bytes:
    """A quarantine record (GATEWAY.md, "Quarantine record"), signed by ``signer`` over
    ``QUARANTINE_DOMAIN | u32 len | record without signature``, or unsigned when None."""
    topic, partition, offset = source
    fields: dict[str, Any] = {
        "decision": None,
        "gateway_key_id": gateway_key_id,
        "id": f"{topic}/{partition}/{offset}",
        "message_id": None,
        "quarantined_at": timestamp(at or dt.datetime.now(dt.UTC)),
        "reason": reason,
        "reason_code": reason_code,
        "recipient": None,
        "sender": None,
        "source": {"offset": offset, "partition": partition, "topic": topic},
        "v": 2,
        "value_prefix_b64": base64.b64encode(value[:16384]).decode("ascii"),
        "value_sha256": hashlib.sha256(value).hexdigest(),
        "value_size": len(value),
    }
    if signer is None:
        return canonical(fields)
    unsigned = canonical(fields)
    signature = signer.sign(QUARANTINE_DOMAIN + lp(unsigned))
    return canonical({**fields, "signature": base64.b64encode(signature).decode("ascii")})


def disclosure(envelope: Envelope, fields: dict[str, tuple[bytes, Any]]) -> dict[str, Any]:
    """PROTOCOL.md section 7: the header text, the ciphertext digest, the signature, and
    ``fields`` (path -> (salt, value)) revealed."""
    return {
        "ciphertext_digest": hashlib.sha256(envelope.ciphertext).hexdigest(),
        "fields": {
            path: {"salt": salt.hex(), "value": value} for path, (salt, value) in fields.items()
        },
        "header": envelope.header.decode("utf-8"),
        "signature": envelope.signature.hex(),
    }


def revealed(salt: bytes, value: Any) -> bytes:
    """PROTOCOL.md section 10: what a forward shows the gateway of its ``body.grant``."""
    return canonical({"salt": salt.hex(), "value": value})
