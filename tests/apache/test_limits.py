"""Record size limits on the real broker, with the settings deploy/ ships (one table:
``broker.transport.apache.settings``, sized by ``broker.limits``).

The largest envelope an adapter may write and the largest record the gateway may write (a
delivery frame around that envelope) are accepted with every producer's default request
limit; a record over ``message.max.bytes`` is refused by the broker at once, never retried;
and a gateway fed an envelope of the largest size that fails verification quarantines its
digest and prefix and goes on delivering: no batch is stuck.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from benchmarks.soak.driver import unlimited_accords
from broker.config import inbox_topic, outbox_topic, quarantine_topic
from broker.limits import (
    KAFKA_MESSAGE_MAX_BYTES,
    LARGEST_RECORD_BYTES,
    MAX_ENVELOPE_BYTES,
    QUARANTINE_RECORD_MAX_BYTES,
)
from broker.schema import DataCategory, redact
from broker.transport.kafka import ProducerSettings, open_producer
from broker.transport.testing import KafkaUnderTest
from tests.e2e.harness import TopicReader, inbox, new_federation, report, seal_as, wait_for
from tests.faults.second_gateway import rewrite_config

from .support import refused

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _send(
    kafka: KafkaUnderTest, user: str, topic: str, size: int, *, request: int | None = None
) -> int:
    settings = ProducerSettings(
        bootstrap=kafka.bootstrap,
        client_id=f"limits-{user}",
        enable_idempotence=True,
        max_request_size=request or KAFKA_MESSAGE_MAX_BYTES,
        request_timeout_ms=30_000,
        security=kafka.kafka_access.security(user),
    )

    async def run() -> int:
        async with open_producer(settings) as producer:
            return (await producer.send(topic, b"\xa5" * size, key=b"limits")).offset

    return asyncio.run(run())


@pytest.fixture(scope="module")
def topics(secured: KafkaUnderTest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A federation's topics and ACLs (prefix returned) with the cluster's own limits."""
    federation = new_federation(tmp_path_factory.mktemp("limits") / "federation", secured)
    return federation.prefix


def test_the_largest_envelope_and_delivery_frame_are_accepted(
    secured: KafkaUnderTest, topics: str
) -> None:
    """An adapter's largest envelope to its outbox, the gateway's largest record (a delivery
    frame around it) to an inbox: both stored, with the producers' default request limit."""
    envelope_at = _send(secured, "adapter-gb", outbox_topic(topics, "GB"), MAX_ENVELOPE_BYTES)
    delivery_at = _send(secured, "gateway", inbox_topic(topics, "RS"), LARGEST_RECORD_BYTES)
    assert envelope_at >= 0
    assert delivery_at >= 0


def test_a_record_over_the_cluster_limit_is_refused_at_once(
    secured: KafkaUnderTest, topics: str
) -> None:
    """One byte over message.max.bytes, from a client that would send it: the broker refuses
    it with an error that is not retried, so the send fails instead of hanging."""
    with refused(r"MessageSizeTooLarge|RecordTooLarge"):
        _send(
            secured,
            "adapter-gb",
            outbox_topic(topics, "GB"),
            KAFKA_MESSAGE_MAX_BYTES + 1,
            request=KAFKA_MESSAGE_MAX_BYTES * 2,
        )


def test_a_gateway_quarantines_an_envelope_of_the_largest_size_and_keeps_going(
    secured: KafkaUnderTest, tmp_path: Path
) -> None:
    """The gateway accepts envelopes up to the format's limit; GB writes one of that size
    that does not verify. The gateway quarantines its digest and prefix (a bounded record),
    and a report sent after it is still delivered: no batch is stuck."""
    federation = new_federation(
        tmp_path / "federation", secured, accords=unlimited_accords(tmp_path / "accords")
    )
    gateway = federation.config_path("gateway")
    rewrite_config(gateway, gateway, {"limits": {"max_envelope_bytes": MAX_ENVELOPE_BYTES}})
    message_id, sealed = seal_as(federation, "GB", "RS", report("GB-LIMITS-00001"), accord="gb-rs")
    forged = sealed + b"\x00" * (MAX_ENVELOPE_BYTES - len(sealed))
    # as GB's adapter would send it to RS: without what the GB-RS accord redacts
    view = redact(report("GB-LIMITS-00002"), {DataCategory.BIOMETRIC})
    after_id, after = seal_as(federation, "GB", "RS", view, accord="gb-rs")
    outbox = outbox_topic(federation.prefix, "GB")
    settings = federation.producer_as("GB", client_id="limits")
    big = ProducerSettings(
        bootstrap=settings.bootstrap,
        client_id=settings.client_id,
        enable_idempotence=settings.enable_idempotence,
        security=settings.security,
    )
    forged_digest = hashlib.sha256(forged).hexdigest()

    async def write(key: str, value: bytes) -> None:
        async with open_producer(big) as producer:
            await producer.send(outbox, value, key=key.encode(), headers=[("xb-recipient", b"RS")])

    reader = TopicReader(
        federation.bootstrap,
        quarantine_topic(federation.prefix),
        security=federation.access.security(),
    )
    with federation:
        for name in ("gateway", "GB", "RS"):
            federation.start(name)
        asyncio.run(write(str(message_id), forged))
        asyncio.run(write(str(after_id), after))
        quarantined = wait_for(
            lambda: [r for r in reader.read() if forged_digest in (r.value or b"").decode()],
            timeout_s=120,
            what="the largest envelope's quarantine record",
        )
        record = json.loads(quarantined[0].value or b"")
        assert record["value_size"] == MAX_ENVELOPE_BYTES
        assert len(quarantined[0].value or b"") <= QUARANTINE_RECORD_MAX_BYTES
        wait_for(
            lambda: str(after_id) in inbox(federation, "RS"),
            timeout_s=120,
            what="the report written after it to be delivered",
        )
