"""The operator's view of the quarantine topic: list, show, and release for re-evaluation.

Anybody who can write to the quarantine topic can put a record there, so nothing on it is
believed unless the gateway's signature over it verifies with a gateway key of the partner
registry (:func:`broker.pipeline.verify_quarantine_record`). Every record read is listed with
its :class:`Verification`: ``verified``, ``forged`` (the signature or its key does not check),
``unsigned`` (no signature at all), ``unreadable`` (not a quarantine record: any bytes at
all, listed by their position) or ``unverified`` (the registry could not be loaded).

Reading uses a throwaway consumer group that never commits, from the earliest offset, and
stops when a fetch brings nothing within a short idle time: ``end_offsets()`` is never
consulted (the embedded broker answers it wrongly).

Release is never a bypass. It refuses a record that is not verified; it re-produces only to
the outbox of a partner in the registry, only to a topic that already exists (it never
creates one); and it re-produces the ORIGINAL bytes, read back from the outbox position the
record names and checked against the record's signed SHA-256, so the gateway decides on them
again under the accords and keys in force now. A record still refused is quarantined again,
under a new id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import time
import uuid
from pathlib import Path

import structlog

from broker import errors, keys, limits
from broker.clock import SystemClock
from broker.config import GatewayConfig, kafka_client_security, outbox_topic, quarantine_topic
from broker.crypto import sha256
from broker.pipeline import QuarantineRecord, verify_quarantine_record
from broker.pipeline.records import strict_json_object, validate_object
from broker.transport.kafka import (
    ConsumerSettings,
    Delivery,
    ProducerSettings,
    Record,
    open_consumer,
    open_producer,
)
from broker.transport.lookup import read_record_at, topic_exists

__all__ = [
    "RELEASE_HEADER",
    "Listed",
    "Verification",
    "find",
    "list_quarantine",
    "load_registry",
    "read_quarantine",
    "release",
]

#: header on a released envelope: the id of the quarantine record it was released from
RELEASE_HEADER = "xb-released-from"
_NO_KEY = "0" * 32
_log = structlog.get_logger(__name__)


class Verification(enum.StrEnum):
    """Whether a record on the quarantine topic is the gateway's own (see module docstring)."""

    VERIFIED = "verified"
    FORGED = "forged"
    UNSIGNED = "unsigned"
    UNREADABLE = "unreadable"
    UNVERIFIED = "unverified"


@dataclasses.dataclass(frozen=True, slots=True)
class Listed:
    """One record read from the quarantine topic, and whether it is to be believed."""

    #: where it was read: ``<quarantine topic>/<partition>/<offset>``
    position: str
    verification: Verification
    #: the record as it parsed; None when it is unreadable
    record: QuarantineRecord | None
    #: why it is not verified (empty when it is)
    problem: str = ""

    @property
    def id(self) -> str:
        """The record's id, or its position when it has none."""
        return self.position if self.record is None else self.record.id


def load_registry(config: GatewayConfig, *, now: dt.datetime) -> keys.Registry:
    """The partner registry the configuration names, verified against its trusted roots."""

    def read(path: Path, what: str) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise errors.UsageError(f"cannot read {what} {path}: {exc.strerror}") from exc

    trusted = keys.load_trusted_registry(read(config.registry.trusted_roots, "trusted roots"))
    current = read(config.registry.path, "the registry")
    return keys.verify_registry(current, trusted=trusted, now=now)


def judge(record: Record, registry: keys.Registry | None, why_unverified: str = "") -> Listed:
    """Parse one quarantine-topic record, whatever its bytes, and check its signature."""
    position = f"{record.topic}/{record.partition}/{record.offset}"
    if record.defect is not None:
        return Listed(position, Verification.UNREADABLE, None, record.defect)
    try:
        raw = strict_json_object(
            record.value or b"",
            what="quarantine record",
            max_bytes=limits.QUARANTINE_RECORD_MAX_BYTES,
        )
        unsigned = not raw.get("signature")
        if unsigned:  # still listed, to say that it is not to be believed
            raw = {**raw, "signature": "", "gateway_key_id": raw.get("gateway_key_id", _NO_KEY)}
        parsed = validate_object(
            QuarantineRecord, raw, what="quarantine record", error=errors.SchemaError
        )
    except errors.SchemaError as exc:
        return Listed(position, Verification.UNREADABLE, None, exc.diagnostics())
    if unsigned:
        return Listed(position, Verification.UNSIGNED, parsed, "the record is not signed")
    if registry is None:
        return Listed(position, Verification.UNVERIFIED, parsed, why_unverified)
    try:
        verify_quarantine_record(parsed, registry=registry)
    except (errors.VerificationError, errors.KeyTrustError) as exc:
        return Listed(position, Verification.FORGED, parsed, exc.diagnostics())
    return Listed(position, Verification.VERIFIED, parsed)


async def read_quarantine(
    config: GatewayConfig, *, idle_ms: int = 1500, join_timeout_s: float | None = None
) -> list[Listed]:
    """Every record on the quarantine topic, oldest first, each judged (none skipped).

    Waits up to ``join_timeout_s`` (default: the session timeout plus 5 s) for the first
    records while the throwaway group joins; after that, a fetch that returns nothing within
    ``idle_ms`` ends the read. A registry that cannot be loaded leaves every record
    ``unverified`` (and says why) rather than hiding them.
    """
    try:
        registry: keys.Registry | None = load_registry(config, now=SystemClock().now())
        why_unverified = ""
    except (errors.IntegrityError, errors.UsageError) as exc:
        registry, why_unverified = None, f"the registry cannot be loaded: {exc.diagnostics()}"
        _log.warning("quarantine_unverified", reason=why_unverified)
    settings = ConsumerSettings(
        bootstrap=",".join(config.kafka.bootstrap),
        group_id=f"{config.kafka.topic_prefix}quarantine-reader.{uuid.uuid4().hex[:12]}",
        client_id=f"{config.kafka.client_id}-quarantine",
        session_timeout_ms=config.kafka.session_timeout_ms,
        security=kafka_client_security(config.kafka),
    )
    join_s = (
        config.kafka.session_timeout_ms / 1000 + 5 if join_timeout_s is None else join_timeout_s
    )
    found: list[Listed] = []
    async with open_consumer(settings, [quarantine_topic(config.kafka.topic_prefix)]) as reader:
        deadline = time.monotonic() + join_s
        seen_any = False
        while True:
            batch = await reader.fetch(timeout_ms=idle_ms)
            if batch:
                seen_any = True
            elif seen_any or time.monotonic() >= deadline:
                break
            found += [judge(record, registry, why_unverified) for record in batch]
    return found


async def list_quarantine(config: GatewayConfig) -> list[Listed]:
    """The quarantine topic, in order: a record the gateway wrote again after a crash is
    listed once (one entry per id among records that verify, or cannot be checked), and every
    other record by itself, so a forgery copying a genuine record's id is listed too."""
    listed: dict[str, Listed] = {}
    for entry in await read_quarantine(config):
        trusted = entry.verification in (Verification.VERIFIED, Verification.UNVERIFIED)
        listed.setdefault(entry.id if trusted else f"@{entry.position}", entry)
    return list(listed.values())


async def find(config: GatewayConfig, record_id: str) -> Listed:
    """The quarantine record ``record_id`` (or the unreadable one at that position): the
    verified one when several claim the id."""
    found = [entry for entry in await list_quarantine(config) if entry.id == record_id]
    if not found:
        raise errors.UsageError(f"no quarantine record with id {record_id!r}")
    verified = [entry for entry in found if entry.verification is Verification.VERIFIED]
    return (verified or found)[0]


async def release(config: GatewayConfig, record_id: str) -> Delivery:
    """Re-produce the original value of ``record_id`` to its source outbox (acks=all)."""
    listed = await find(config, record_id)
    record = listed.record
    if record is None or listed.verification is not Verification.VERIFIED:
        raise errors.VerificationError(
            f"record {record_id} is {listed.verification}: only a record the gateway signed "
            f"is released ({listed.problem})"
        )
    registry = load_registry(config, now=SystemClock().now())
    topic = _registered_outbox(config, record, registry)
    bootstrap = ",".join(config.kafka.bootstrap)
    security = kafka_client_security(config.kafka)
    client_id = f"{config.kafka.client_id}-quarantine"
    if not await topic_exists(bootstrap, topic, client_id=client_id, security=security):
        raise errors.UsageError(f"record {record_id} names {topic}, which does not exist")
    original = await read_record_at(
        bootstrap,
        topic,
        record.source.partition,
        record.source.offset,
        client_id=client_id,
        security=security,
    )
    if original is None or original.value is None:
        raise errors.UsageError(
            f"record {record_id}: the original is no longer on {topic} (its retention ended), "
            "so there is nothing to release"
        )
    if sha256(original.value).hex() != record.value_sha256:
        raise errors.VerificationError(
            f"record {record_id}: the record at {record.id} is not the one quarantined"
        )
    # the original's own headers too: what it revealed to the gateway (revealed.py) and its
    # routing header are decided again with it
    headers = [
        *((name, value) for name, value in original.headers if name != RELEASE_HEADER),
        (RELEASE_HEADER, record.id.encode("utf-8")),
    ]
    settings = ProducerSettings(
        bootstrap=bootstrap,
        client_id=client_id,
        enable_idempotence=config.kafka.capabilities.idempotence,
        security=security,
    )
    key = None if record.message_id is None else record.message_id.encode("ascii")
    async with open_producer(settings) as producer:
        delivery = await producer.send(topic, original.value, key=key, headers=headers)
    _log.info(
        "quarantine_released",
        record_id=record.id,
        message_id=record.message_id,
        reason_code=str(record.reason_code),
        to=delivery.topic,
        offset=delivery.offset,
    )
    return delivery


def _registered_outbox(
    config: GatewayConfig, record: QuarantineRecord, registry: keys.Registry
) -> str:
    """The outbox a record came from, if it is the outbox of a partner in the registry."""
    prefix = config.kafka.topic_prefix
    for partner in sorted(registry.partners):
        if record.source.topic == outbox_topic(prefix, partner):
            return record.source.topic
    raise errors.UsageError(
        f"record {record.id} came from {record.source.topic}, which is not the outbox of a "
        "partner in the registry"
    )
