"""A flood of junk on an outbox grows the audit log (kept for ever) by a bounded amount.

The real gateway on the embedded broker, with a clock the test moves: past the hourly number,
each refusal is still quarantined (signed, bounded) but audited only by count, in one signed
summary once the hour is over; legitimate traffic flows on meanwhile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import pathlib
import uuid

import pytest

from broker.clock import FixedClock
from broker.config import (
    GatewayConfig,
    audit_topic,
    inbox_topic,
    load_config,
    outbox_topic,
    quarantine_topic,
    topic_plan,
)
from broker.gateway import serve_gateway
from broker.keys.testing import build_registry
from broker.ledger import is_checkpoint_record
from broker.pipeline import (
    AuditKind,
    AuditRecord,
    ReasonCode,
    parse_quarantine_record,
    refusal_counts,
    verify_audit_record,
    verify_quarantine_record,
)
from broker.runtime import Health, Metrics, StopSignal
from broker.transport.kafka import TopicSpec, create_topics, open_consumer, open_producer
from broker.transport.testing import KafkaUnderTest

from .test_gateway_daemon import PASSPHRASE, put, read, seal, write_gateway_files

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PER_HOUR = 3
JUNK = [b"junk record %d" % n for n in range(10)]


async def _audit_records(kafka: KafkaUnderTest, prefix: str, count: int) -> list[AuditRecord]:
    """``count`` audit records (checkpoints skipped), then whatever else arrives within 3 s."""
    async with open_consumer(
        kafka.consumer_settings(kafka.group("audit")), [audit_topic(prefix)]
    ) as reader:
        values = [r.value or b"" for r in await reader.read(count, timeout_s=60)]
        values += [r.value or b"" for r in await reader.fetch(timeout_ms=3000)]
    return [
        verify_audit_record(v, registry=FIXTURE.registry)
        for v in values
        if not is_checkpoint_record(v)
    ]


FIXTURE = build_registry(now=dt.datetime.now(dt.UTC), partners=("GB", "RS"))


async def test_past_the_hourly_number_refusals_are_summarized_and_traffic_flows(
    kafka: KafkaUnderTest, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten junk records: ten signed quarantine records, three audit records, then (the hour
    over) one signed summary counting the other seven; a real envelope is delivered after."""
    monkeypatch.setenv("XB_TEST_PASSPHRASE", PASSPHRASE)
    prefix = f"f{uuid.uuid4().hex[:10]}."
    write_gateway_files(tmp_path, FIXTURE, kafka, prefix)
    document = json.loads((tmp_path / "gateway.yaml").read_text())
    document["gateway"] = {"refusal_audits_per_hour": PER_HOUR}
    (tmp_path / "gateway.yaml").write_text(json.dumps(document))
    config = load_config(tmp_path / "gateway.yaml", GatewayConfig, env={})
    plan = topic_plan(
        ["GB", "RS"], prefix=prefix, partitions=1, replication_factor=1, min_insync_replicas=1
    )
    await create_topics(kafka.bootstrap, [TopicSpec(t.name, t.partitions) for t in plan])

    clock = FixedClock(dt.datetime.now(dt.UTC).replace(minute=10))
    metrics, stop = Metrics(), StopSignal()
    daemon = asyncio.create_task(
        serve_gateway(config, stop, metrics=metrics, health=Health(), clock=clock)
    )
    try:
        async with open_producer(kafka.producer_settings()) as producer:
            for junk in JUNK:
                await producer.send(outbox_topic(prefix, "GB"), junk)
        quarantined = [
            parse_quarantine_record(v)
            for v in await read(kafka, quarantine_topic(prefix), len(JUNK))
        ]
        for record in quarantined:
            verify_quarantine_record(record, registry=FIXTURE.registry)
        assert [q.value_prefix for q in quarantined] == JUNK
        assert {q.reason_code for q in quarantined} == {ReasonCode.MALFORMED}

        audited = await _audit_records(kafka, prefix, PER_HOUR)
        assert [(a.kind, a.reason_code) for a in audited] == [
            (AuditKind.REFUSAL, ReasonCode.MALFORMED)
        ] * PER_HOUR
        summarized = metrics.counter("xb_gateway_refusals_summarized_total", "", ("sender",))
        assert summarized.value(sender="GB") == len(JUNK) - PER_HOUR

        clock.advance(dt.timedelta(hours=1))
        audited = await _audit_records(kafka, prefix, PER_HOUR + 1)
        summary = audited[PER_HOUR]
        assert (summary.kind, summary.sender) == (AuditKind.REFUSAL_SUMMARY, "GB")
        assert refusal_counts(summary) == {"malformed": len(JUNK) - PER_HOUR}
        chained = b""
        for junk in JUNK[PER_HOUR:]:
            chained = hashlib.sha256(chained + hashlib.sha256(junk).digest()).digest()
        assert summary.envelope_sha256 == chained.hex()
        assert len(audited) == PER_HOUR + 1, "one summary, written once"

        async with open_producer(kafka.producer_settings()) as producer:
            await put(producer, outbox_topic(prefix, "GB"), seal(FIXTURE))
        (delivered,) = await read(kafka, inbox_topic(prefix, "RS"), 1)
        assert delivered.startswith(b"XBD1")
    finally:
        stop.set("test done")
        await asyncio.wait_for(daemon, timeout=60)
