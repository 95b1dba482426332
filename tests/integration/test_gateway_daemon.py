"""The gateway daemon against a real Kafka-protocol broker (the one BROKER_TEST_KAFKA chooses).

The serve loop runs in-process on real files (signed registry, co-signed accord, encrypted
gateway key, SQLite dedup store): a sealed envelope on outbox.GB arrives on inbox.RS as a
verifiable delivery frame with a signed audit record; a tampered one goes to quarantine, and
releasing it sends the same bytes back through the gateway, which refuses them again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pathlib
import uuid

import pytest

from broker import cosign, envelope, keys
from broker.audit import Checkpoint, leaf_hash, open_checkpoint, root_hash
from broker.config import (
    GatewayConfig,
    audit_topic,
    inbox_topic,
    load_config,
    outbox_topic,
    quarantine_topic,
    topic_plan,
)
from broker.gateway import list_quarantine, release, serve_gateway
from broker.ids import AccordId, PartnerCode, new_message_id
from broker.keys.testing import RegistryFixture, build_registry
from broker.ledger import (
    POSITION_FILE,
    SavedPosition,
    checkpoint_origin,
    is_checkpoint_record,
    parse_checkpoint_record,
)
from broker.pipeline import (
    ReasonCode,
    parse_quarantine_record,
    verify_audit_record,
    verify_delivery,
    verify_quarantine_record,
)
from broker.policy import parse_accord
from broker.runtime import Health, Metrics, StopSignal
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)
from broker.transport.kafka import Producer, TopicSpec, create_topics, open_consumer, open_producer
from broker.transport.testing import KafkaUnderTest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

GB, RS = PartnerCode("GB"), PartnerCode("RS")
PASSPHRASE = "correct horse battery staple gateway"
ACCORD = b"""accord: gb-rs
title: Test accord
version: 1
parties: [GB, RS]
effective: 2025-01-01
expires: 2099-01-01
suite: classic
flows:
  - id: GB-RS-OPS
    from: GB
    to: RS
    tier: operational
    types: [network.report]
    purposes: [people-smuggling]
    max_classification: OFFICIAL-SENSITIVE
    max_tlp: AMBER
    handling_codes: [H0, H1, H2]
    categories:
      allow: [operational]
    handling:
      onward_sharing: with-originator-consent
      retention_days: 365
"""
MESSAGE = json.dumps(
    {
        "type": "network.report",
        "schema_version": 1,
        "classification": "OFFICIAL-SENSITIVE",
        "tlp": "AMBER",
        "handling": "H2",
        "purposes": ["people-smuggling"],
        "body": {"summary": "A network moving people through the Western Balkans."},
    }
).encode()
LABELS = Labels(
    message_type=MessageType.NETWORK_REPORT,
    schema_version=1,
    classification=Classification.OFFICIAL_SENSITIVE,
    tlp=TLP.AMBER,
    handling=HandlingCode.H2,
    purposes=frozenset({Purpose.PEOPLE_SMUGGLING}),
    data_categories=frozenset({DataCategory.OPERATIONAL}),
)


def write_gateway_files(
    tmp: pathlib.Path, fixture: RegistryFixture, kafka: KafkaUnderTest, prefix: str
) -> GatewayConfig:
    """Registry, co-signed accord, encrypted gateway key and config, as an operator has them."""
    now = dt.datetime.now(dt.UTC)
    (tmp / "registry.json").write_bytes(fixture.data)
    (tmp / "trusted.json").write_bytes(fixture.data)
    accords = tmp / "accords"
    accords.mkdir()
    (accords / "gb-rs.yaml").write_bytes(ACCORD)
    accord = parse_accord(ACCORD, source="gb-rs.yaml")
    signatures = None
    for partner in (GB, RS):
        signatures = cosign.sign_accord(
            accord, signatures, key=fixture.partners[partner].policy, partner=partner
        )
    assert signatures is not None
    cosign.write_signature_file(accords / "gb-rs.yaml.sigs.json", signatures)
    gateway_key = next(iter(fixture.gateways.values()))
    keys.save_private_key(tmp / "gateway.key", gateway_key, passphrase=PASSPHRASE.encode())
    config = {
        "kafka": {
            "bootstrap": kafka.bootstrap,
            "topic_prefix": prefix,
            "session_timeout_ms": kafka.session_timeout_ms,
            "engine": kafka.kafka_access.engine,
        },
        "registry": {"path": "registry.json", "trusted_roots": "trusted.json"},
        "accords": {"dir": "accords"},
        "keys": {"signing_key": "gateway.key", "passphrase": {"env": "XB_TEST_PASSPHRASE"}},
        "store": {"path": "dedup.sqlite"},
    }
    (tmp / "gateway.yaml").write_text(json.dumps(config))
    assert now.tzinfo is not None
    return load_config(tmp / "gateway.yaml", GatewayConfig, env={})


def seal(fixture: RegistryFixture) -> bytes:
    now = dt.datetime.now(dt.UTC)
    key_id, key = fixture.registry.current_encryption_key(RS, at=now)
    return envelope.seal(
        MESSAGE,
        labels=LABELS,
        sender=GB,
        sender_key=fixture.partners[GB].signing,
        recipient=RS,
        recipient_key_id=key_id,
        recipient_key=key,
        accord_id=AccordId("gb-rs"),
        accord_digest="ab" * 32,
        now=now,
        ttl=dt.timedelta(days=1),
        message_id=new_message_id(),
    )


async def put(producer: Producer, topic: str, value: bytes) -> None:
    await producer.send(topic, value, headers=[("xb-recipient", b"RS")])


async def test_the_gateway_delivers_audits_quarantines_and_releases(
    kafka: KafkaUnderTest, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deliver, skip a duplicate, quarantine a tampered envelope, release it, drain on stop."""
    monkeypatch.setenv("XB_TEST_PASSPHRASE", PASSPHRASE)
    prefix = f"t{uuid.uuid4().hex[:10]}."
    fixture = build_registry(now=dt.datetime.now(dt.UTC), partners=("GB", "RS"))
    config = write_gateway_files(tmp_path, fixture, kafka, prefix)
    plan = topic_plan(
        ["GB", "RS"], prefix=prefix, partitions=1, replication_factor=1, min_insync_replicas=1
    )
    await create_topics(kafka.bootstrap, [TopicSpec(t.name, t.partitions) for t in plan])

    metrics, health, stop = Metrics(), Health(), StopSignal()
    daemon = asyncio.create_task(serve_gateway(config, stop, metrics=metrics, health=health))
    try:
        await exchange(kafka, config, fixture, prefix, metrics)
    finally:
        stop.set("test done")
        # the daemon drains and returns; an exception inside it surfaces here
        await asyncio.wait_for(daemon, timeout=60)
    last = await checkpointed_on_stop(kafka, prefix, fixture)
    # where that checkpoint left the log is kept beside the store, for the next start
    saved = SavedPosition.load(
        config.store.path.parent / POSITION_FILE,
        origin=checkpoint_origin(audit_topic(prefix)),
        registry=fixture.registry,
    )
    assert saved is not None
    assert saved.checkpoint == last


async def checkpointed_on_stop(
    kafka: KafkaUnderTest, prefix: str, fixture: RegistryFixture
) -> Checkpoint:
    """On stop the gateway signs a checkpoint over the audit records its checkpointer read:
    that checkpoint."""
    async with open_consumer(
        kafka.consumer_settings(kafka.group("audit")), [audit_topic(prefix)]
    ) as c:
        values = [r.value or b"" for r in await c.read(4, timeout_s=60)]
        values += [r.value or b"" for r in await c.fetch(timeout_ms=3000)]
    checkpoints = [v for v in values if is_checkpoint_record(v)]
    leaves = [leaf_hash(v) for v in values if not is_checkpoint_record(v)]
    assert len(checkpoints) == 1, "one checkpoint, written as the gateway stopped"
    gateway_keys = [key.public_key() for key in fixture.gateways.values()]
    note = parse_checkpoint_record(checkpoints[0]).note
    checkpoint = open_checkpoint(note, log_keys=gateway_keys)
    assert 3 <= checkpoint.size <= len(leaves)
    assert checkpoint.root == root_hash(leaves[: checkpoint.size])
    return checkpoint


async def read(kafka: KafkaUnderTest, topic: str, count: int) -> list[bytes]:
    """``count`` records of ``topic`` from the start, through a fresh group."""
    async with open_consumer(kafka.consumer_settings(kafka.group("check")), [topic]) as reader:
        return [r.value or b"" for r in await reader.read(count, timeout_s=60)]


async def exchange(
    kafka: KafkaUnderTest,
    config: GatewayConfig,
    fixture: RegistryFixture,
    prefix: str,
    metrics: Metrics,
) -> None:
    good, other = seal(fixture), seal(fixture)
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    async with open_producer(kafka.producer_settings()) as producer:
        for value in (good, good, tampered, other):
            await put(producer, outbox_topic(prefix, "GB"), value)
    frames = await read(kafka, inbox_topic(prefix, "RS"), 2)
    audits = await read(kafka, audit_topic(prefix), 3)
    quarantined = [
        parse_quarantine_record(v) for v in await read(kafka, quarantine_topic(prefix), 1)
    ]

    now = dt.datetime.now(dt.UTC)
    registry = fixture.registry
    delivered = [verify_delivery(f, registry=registry, recipient=RS, now=now) for f in frames]
    assert [d.envelope_bytes for d in delivered] == [good, other]
    records = [verify_audit_record(a, registry=registry) for a in audits]
    assert [(r.kind, r.reason_code) for r in records] == [
        ("disclosure", None),
        ("refusal", ReasonCode.BAD_SIGNATURE),
        ("disclosure", None),
    ]
    assert [q.reason_code for q in quarantined] == [ReasonCode.BAD_SIGNATURE]
    assert verify_quarantine_record(quarantined[0], registry=registry) == quarantined[0]
    assert (quarantined[0].value_prefix, quarantined[0].value_is_whole) == (tampered, True)
    # the second copy of `good` was processed before `other`, whose delivery we have seen
    assert metrics.counter("xb_gateway_duplicates_total", "").value() == 1

    listed = await list_quarantine(config)
    assert [(q.id, q.verification) for q in listed] == [(quarantined[0].id, "verified")]
    await release(config, quarantined[0].id)
    again = [parse_quarantine_record(v) for v in await read(kafka, quarantine_topic(prefix), 2)]
    assert again[1].value_prefix == tampered
    assert again[1].id != again[0].id
    assert again[1].reason_code is ReasonCode.BAD_SIGNATURE
