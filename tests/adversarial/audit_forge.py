"""An attacker's toolkit for the audit topic, written from docs/AUDIT.md and docs/GATEWAY.md.

It imports nothing of ``broker.pipeline``, ``broker.audit`` or ``broker.ledger``: records,
signatures, Merkle hashes, checkpoint notes and checkpoint records are built here from the
documented bytes, with ``cryptography`` and ``aiokafka`` directly, as an outsider with write
access to the embedded broker (which has no ACLs) would build them. What it can sign with is
whatever key it is given: its own, or, for the tests of a compromised gateway, a gateway key
taken from the federation's files.

- audit record (docs/GATEWAY.md): canonical JSON (sorted keys, no whitespace); the gateway
  signs ``b"xb-audit-record-v1\\x00" || u32be(len(c)) || c`` where ``c`` is the record without
  its ``signature`` field; ``gateway_key_id`` is the first 32 hex digits of SHA-256 of the raw
  public key; the records of one gateway batch (``"v": 2``) share one signature over
  ``b"xb-audit-batch-v2\\x00" || u32be(n) || head``, the head of the leaves
  ``SHA-256(0x00 || b"xb-audit-record-v1\\x00" || u32be(len(c)) || c)`` with ``c`` the record
  without ``signature`` and ``batch``, and each carries ``batch``: size, index and inclusion
  path;
- Merkle tree (docs/AUDIT.md, RFC 6962): leaf ``SHA-256(0x00 || record)``, node
  ``SHA-256(0x01 || left || right)``, split at the largest power of two below the size;
- checkpoint note (docs/AUDIT.md, C2SP): ``origin\\nsize\\nbase64(root)\\ntime T\\n``, a blank
  line, ``— <origin> base64(key ID || Ed25519(body))``, key ID
  ``SHA-256(origin || 0x0A || 0x01 || public key)[:4]``;
- checkpoint record (docs/AUDIT.md): canonical JSON ``from``, ``kind``, ``leaves``, ``note``,
  ``refused``, ``through``, ``v`` = 2.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiokafka
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tests.adversarial.wire import Proof, head_from_path, inclusion_path

__all__ = [
    "batch_signed",
    "canonical",
    "checkpoint_note",
    "checkpoint_record",
    "gateway_signed",
    "key_id_of",
    "leaf",
    "load_ed25519",
    "resigned",
    "root",
    "write",
    "write_undecodable_header",
]

AUDIT_DOMAIN = b"xb-audit-record-v1\x00"
AUDIT_BATCH_DOMAIN = b"xb-audit-batch-v2\x00"


def canonical(document: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id_of(key: Ed25519PrivateKey) -> str:
    """A registry key id: the first 32 hex digits of SHA-256 of the raw public key."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def resigned(
    genuine: bytes, key: Ed25519PrivateKey, *, key_id: str | None = None, **changes: Any
) -> bytes:
    """A genuine audit record with ``changes`` applied, signed by ``key`` under ``key_id``
    (default: ``key``'s own id): a forgery that parses like the real thing."""
    record = json.loads(genuine)
    record.update(changes)
    record["gateway_key_id"] = key_id or key_id_of(key)
    record.pop("signature")
    unsigned = canonical(record)
    signature = key.sign(AUDIT_DOMAIN + len(unsigned).to_bytes(4, "big") + unsigned)
    record["signature"] = base64.b64encode(signature).decode()
    return canonical(record)


def _signed_form(record: dict[str, Any]) -> bytes:
    unsigned = canonical({k: v for k, v in record.items() if k not in {"signature", "batch"}})
    return AUDIT_DOMAIN + len(unsigned).to_bytes(4, "big") + unsigned


def gateway_signed(value: bytes, gateway: Ed25519PublicKey) -> bool:
    """Whether ``gateway`` signed the audit record ``value``, alone or in its batch."""
    record = json.loads(value)
    message = _signed_form(record)
    batch = record.get("batch")
    if batch is not None:
        path = tuple(bytes.fromhex(h) for h in batch["path"])
        head = head_from_path(leaf(message), Proof(batch["size"], batch["index"], path))
        message = AUDIT_BATCH_DOMAIN + int(batch["size"]).to_bytes(4, "big") + head
    try:
        gateway.verify(base64.b64decode(record["signature"]), message)
    except InvalidSignature:
        return False
    return True


def batch_signed(
    genuine: Sequence[bytes], key: Ed25519PrivateKey, *, key_id: str, **changes: Any
) -> list[bytes]:
    """Genuine audit records with ``changes`` applied, signed by ``key`` under ``key_id`` as
    one version 2 batch, by the document's recipe."""
    records = []
    for value in genuine:
        record = {**json.loads(value), **changes, "v": 2, "gateway_key_id": key_id}
        record.pop("batch", None)
        records.append(record)
    leaves = [leaf(_signed_form(r)) for r in records]
    signature = key.sign(AUDIT_BATCH_DOMAIN + len(leaves).to_bytes(4, "big") + root(leaves))
    return [
        canonical(
            {
                **r,
                "signature": base64.b64encode(signature).decode(),
                "batch": {
                    "size": len(leaves),
                    "index": i,
                    "path": [h.hex() for h in inclusion_path(leaves, i)],
                },
            }
        )
        for i, r in enumerate(records)
    ]


def leaf(data: bytes) -> bytes:
    """The RFC 6962 leaf hash."""
    return hashlib.sha256(b"\x00" + data).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 6962 tree head of leaf hashes, by its recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + root(leaves[:split]) + root(leaves[split:])).digest()


def checkpoint_note(
    origin: str, size: int, head: bytes, when: dt.datetime, key: Ed25519PrivateKey
) -> bytes:
    """A C2SP checkpoint note signed by ``key`` under the origin as key name."""
    stamp = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = f"{origin}\n{size}\n{base64.b64encode(head).decode()}\ntime {stamp}\n".encode()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key_id = hashlib.sha256(origin.encode() + b"\n\x01" + public).digest()[:4]
    signature = base64.b64encode(key_id + key.sign(body)).decode()
    return body + b"\n" + f"\u2014 {origin} {signature}\n".encode()


def checkpoint_record(note: bytes, *, first: int, leaves: Sequence[bytes], through: int) -> bytes:
    """A version 2 checkpoint record listing ``leaves`` from leaf ``first``, refusing nothing."""
    return canonical(
        {
            "from": first,
            "kind": "checkpoint",
            "leaves": base64.b64encode(b"".join(leaves)).decode(),
            "note": note.decode(),
            "refused": [],
            "through": through,
            "v": 2,
        }
    )


def load_ed25519(pem: Path, passphrase: bytes) -> Ed25519PrivateKey:
    """A daemon's Ed25519 signing key from its encrypted PKCS#8 file (a classic key)."""
    key = serialization.load_pem_private_key(pem.read_bytes(), password=passphrase)
    assert isinstance(key, Ed25519PrivateKey)
    return key


async def write(
    bootstrap: str,
    topic: str,
    value: bytes | None,
    *,
    headers: Sequence[tuple[str, bytes]] = (),
) -> int:
    """Append one record (``None``: no value at all, a tombstone, which needs a key) as
    anyone may; its offset."""
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        key = b"tombstone" if value is None else None
        sent = await producer.send_and_wait(topic, value, key=key, headers=list(headers) or None)
    finally:
        await producer.stop()
    return int(sent.offset)


async def write_undecodable_header(bootstrap: str, topic: str, value: bytes) -> None:
    """Append one record whose header key is not UTF-8 (``\\xff``), which no client library
    will build: the batch is built with a one-letter key, that byte is replaced and the
    batch's CRC-32C recomputed, and it is sent in a raw Produce request."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    builder.append(0, timestamp=None, key=None, value=value, headers=[("X", b"hostile")])
    batch = bytearray(builder.build())
    at = batch.index(b"X\x0ehostile")  # the key, then the value's length as a varint
    batch[at] = 0xFF
    # the CRC (bytes 17..20) covers everything from the attributes (byte 21) on
    batch[17:21] = calc_crc32c(bytes(batch[21:])).to_bytes(4, "big")
    client = aiokafka.AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        await client._wait_on_metadata(topic)
        leader = client.cluster.leader_for_partition(aiokafka.TopicPartition(topic, 0))
        request = ProduceRequest(
            transactional_id=None,
            required_acks=-1,
            timeout=30_000,
            topics=[(topic, [(0, bytes(batch))])],
        )
        response = await client.send(leader, request)
        ((_, partitions),) = response.topics
        error_code = partitions[0][1]
        assert error_code == 0, f"the broker refused the batch: error {error_code}"
    finally:
        await client.close()
