"""The adapter daemon's receive loop against a real Kafka-protocol broker.

A delivery frame (built as the gateway builds it) is produced twice to inbox.RS: Serbia's
adapter stores it once, counts the second copy as a duplicate, commits both offsets, and
sends one receipt to outbox.RS with the routing header. A restart of the daemon in the same
consumer group reads only what came after the commit. A delivery Serbia must refuse is
recorded in its inbox's rejected table with its reason and position before its offset is
committed, and the rejected receipt still goes back to an authenticated sender.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pathlib
import uuid
from collections.abc import Callable

import pytest

from broker import crypto, envelope, limits
from broker.adapter import Adapter, AdapterDaemon, AdapterKeys, Connection, SendJournal
from broker.clock import SystemClock
from broker.config import inbox_topic, outbox_topic
from broker.crypto import AeadSealer
from broker.demo.federation import redated
from broker.ids import MessageId, PartnerCode
from broker.keys.testing import build_registry
from broker.pipeline.delivery import attest
from broker.pipeline.send import Outgoing, accord_digest, prepare
from broker.policy import parse_accord
from broker.runtime import Metrics, StopSignal
from broker.schema import (
    TLP,
    DataCategory,
    HandlingCode,
    Message,
    Purpose,
    labels_of,
    message_bytes,
    parse_message,
    redact,
)
from broker.store import InboxStore
from broker.transport.kafka import TopicSpec, create_topics, open_consumer, open_producer
from broker.transport.testing import KafkaUnderTest
from broker.trust import AccordFiles, AccordInForce

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = pathlib.Path(__file__).resolve().parents[2]
GB, RS = PartnerCode("GB"), PartnerCode("RS")
NOW = dt.datetime.now(dt.UTC)
WORLD = build_registry(now=NOW)
GATEWAY_KEY = next(iter(WORLD.gateways.values()))
# the shipped rules, in force around now: the daemon below runs on the wall clock
_accord = parse_accord(
    redated((ROOT / "policies" / "gb-rs.yaml").read_text(encoding="utf-8"), now=NOW).encode(),
    source="gb-rs.yaml",
)
GB_RS = AccordInForce(_accord, accord_digest(_accord))


def _report() -> Message:
    original = parse_message((ROOT / "schemas" / "examples" / "network.report.json").read_bytes())
    message = original.model_copy(
        update={
            "handling": HandlingCode.H2,
            "handling_conditions": (),
            "purposes": frozenset({Purpose.PEOPLE_SMUGGLING}),
            "tlp": TLP.AMBER,
            "expires": None,
        }
    )
    return redact(message, [DataCategory.SOURCE_IDENTIFYING, DataCategory.FINANCIAL])


def _frame(*, lying_labels: bool = False) -> tuple[MessageId, bytes]:
    """A fresh view from the UK to Serbia, wrapped in the gateway's attestation; with
    ``lying_labels`` its signed labels leave out a data category its content carries."""
    now = dt.datetime.now(dt.UTC)
    (outgoing,) = prepare(
        _report(),
        sender=GB,
        recipients=[RS],
        accords={RS: GB_RS},
        registry=WORLD.registry,
        signing_key=WORLD.partners[GB].signing,
        now=now,
        counters={},
    )
    assert isinstance(outgoing, Outgoing)
    sealed, message_id = outgoing.envelope, outgoing.message_id
    if lying_labels:
        honest = labels_of(_report())
        key_id, key = WORLD.registry.current_encryption_key(RS, at=now)
        sealed = envelope.seal(
            message_bytes(_report()),
            labels=honest.model_copy(update={"data_categories": frozenset()}),
            sender=GB,
            sender_key=WORLD.partners[GB].signing,
            recipient=RS,
            recipient_key_id=key_id,
            recipient_key=key,
            accord_id=GB_RS.accord.accord_id,
            accord_digest=GB_RS.digest,
            now=now,
            ttl=dt.timedelta(days=1),
        )
        message_id = MessageId(envelope.parse(sealed).header.message_id)
    header = envelope.parse(sealed).header
    frame = attest(
        sealed,
        message_id=message_id,
        sender=GB,
        recipient=RS,
        accord_id=GB_RS.accord.accord_id,
        accord_version=GB_RS.accord.version,
        accord_digest=header.accord_digest,
        rule_ids=("GB-RS-OPS",),
        decided_at=now,
        gateway_key=GATEWAY_KEY,
    )
    return message_id, frame


def _serbia(directory: pathlib.Path, prefix: str, metrics: Metrics) -> Adapter:
    keys = WORLD.partners[RS]
    return Adapter(
        me=RS,
        prefix=prefix,
        registry=WORLD.registry,
        accords=AccordFiles.holding([GB_RS], now=NOW),
        keys=AdapterKeys(
            signing=keys.signing, decryption={keys.encryption_key_id: keys.decryption}
        ),
        journal=SendJournal.open(directory / "send-journal.sqlite"),
        inbox=InboxStore.open(
            directory / "inbox.sqlite",
            recipient=RS,
            sealer=AeadSealer(),
            dedup_retention=dt.timedelta(days=2),
        ),
        clock=SystemClock(),
        metrics=metrics,
        retention=dt.timedelta(days=30),
    )


async def _run_until(
    daemon: AdapterDaemon, condition: Callable[[], bool], *, timeout_s: float = 60.0
) -> None:
    """Serve until ``condition`` holds after a commit or send, then stop and drain."""
    stop = StopSignal()
    serving = asyncio.create_task(daemon.serve(stop))
    waiting = asyncio.create_task(daemon.wait_until(condition))
    try:
        async with asyncio.timeout(timeout_s):
            done, _ = await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if serving in done:
                serving.result()  # the daemon ended early: show why
                pytest.fail("the adapter daemon stopped on its own")
    finally:
        waiting.cancel()
        stop.set("test done")
        await serving


async def test_a_delivery_is_stored_once_committed_and_receipted(
    kafka: KafkaUnderTest, tmp_path: pathlib.Path
) -> None:
    """Two copies of one frame: one stored message, one counted duplicate, both committed,
    one receipt on outbox.RS for GB; after a restart only the new record is read."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    inbox, outbox = inbox_topic(prefix, RS), outbox_topic(prefix, RS)
    await create_topics(kafka.bootstrap, [TopicSpec(inbox), TopicSpec(outbox)])
    message_id, frame = _frame()
    async with open_producer(kafka.producer_settings()) as producer:
        await producer.send(inbox, frame, key=message_id.encode())
        await producer.send(inbox, frame, key=message_id.encode())

    metrics = Metrics()
    serbia = _serbia(tmp_path, prefix, metrics)
    connection = Connection(bootstrap=kafka.bootstrap, session_timeout_ms=kafka.session_timeout_ms)
    committed = metrics.counter("xb_adapter_committed_total", "")
    produced = metrics.counter("xb_adapter_produced_total", "", ("recipient",))
    daemon = AdapterDaemon(serbia, connection=connection, fetch_timeout_ms=200)
    await _run_until(daemon, lambda: committed.value() >= 2 and produced.value(recipient="GB") >= 1)

    assert [m.message_id for m in serbia.inbox.list()] == [message_id]
    assert metrics.counter("xb_adapter_delivered_total", "").value() == 1
    assert metrics.counter("xb_adapter_replays_dropped_total", "").value() == 1
    assert len(serbia.journal) == 0

    async with open_consumer(kafka.consumer_settings(kafka.group("receipts")), [outbox]) as reader:
        (receipt,) = await reader.read(1, timeout_s=30)
    headers = dict(receipt.headers)
    assert set(headers) == {"xb-recipient", "xb-acknowledges"}
    assert headers["xb-recipient"] == b"GB"
    # the receipt's one line, revealed to the gateway beside it (broker.pipeline.revealed)
    (line,) = json.loads(headers["xb-acknowledges"])["value"]
    assert (line["receipt_for"], line["status"]) == (message_id, "accepted")
    assert receipt.value is not None
    assert envelope.parse(receipt.value).header.recipient == "GB"

    # A restart in the same group starts after the committed offsets.
    later_id, later = _frame()
    async with open_producer(kafka.producer_settings()) as producer:
        await producer.send(inbox, later, key=later_id.encode())
    restarted = AdapterDaemon(serbia, connection=connection, fetch_timeout_ms=200)
    delivered = metrics.counter("xb_adapter_delivered_total", "")
    await _run_until(restarted, lambda: delivered.value() >= 2)
    assert {m.message_id for m in serbia.inbox.list()} == {message_id, later_id}
    assert metrics.counter("xb_adapter_replays_dropped_total", "").value() == 1
    serbia.journal.close()
    serbia.inbox.close()


async def test_a_refused_delivery_is_recorded_before_its_offset_is_committed(
    kafka: KafkaUnderTest, tmp_path: pathlib.Path
) -> None:
    """A view whose labels lie and a record that is no frame at all: both are refused, both
    land in the rejected table with reason and offset, both offsets are committed (a restart
    does not read them again), and GB still gets its rejected receipt."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    inbox, outbox = inbox_topic(prefix, RS), outbox_topic(prefix, RS)
    await create_topics(kafka.bootstrap, [TopicSpec(inbox), TopicSpec(outbox)])
    lying_id, lying = _frame(lying_labels=True)
    async with open_producer(kafka.producer_settings()) as producer:
        await producer.send(inbox, lying, key=lying_id.encode())
        await producer.send(inbox, b"not a delivery frame", key=b"x")

    metrics = Metrics()
    serbia = _serbia(tmp_path, prefix, metrics)
    connection = Connection(bootstrap=kafka.bootstrap, session_timeout_ms=kafka.session_timeout_ms)
    committed = metrics.counter("xb_adapter_committed_total", "")
    produced = metrics.counter("xb_adapter_produced_total", "", ("recipient",))
    daemon = AdapterDaemon(serbia, connection=connection, fetch_timeout_ms=200)
    await _run_until(daemon, lambda: committed.value() >= 2 and produced.value(recipient="GB") >= 1)

    rows = serbia.inbox.rejected.list()
    assert [(r.offset, r.reason_code) for r in rows] == [
        (0, "label_mismatch"),
        (1, "bad_attestation"),
    ]
    assert {(r.topic, r.partition) for r in rows} == {(inbox, 0)}
    assert (rows[0].message_id, rows[0].identified_by) == (lying_id, "envelope")
    kept = serbia.inbox.rejected.get(rows[0].id)
    assert kept.frame == lying[: limits.REJECTED_PREFIX_BYTES]
    assert (kept.frame_size, kept.frame_sha256) == (len(lying), crypto.sha256(lying))
    assert serbia.inbox.list() == ()

    # Committed: a restart in the same group reads only the new record.
    later_id, later = _frame()
    async with open_producer(kafka.producer_settings()) as producer:
        await producer.send(inbox, later, key=later_id.encode())
    delivered = metrics.counter("xb_adapter_delivered_total", "")
    restarted = AdapterDaemon(serbia, connection=connection, fetch_timeout_ms=200)
    await _run_until(restarted, lambda: delivered.value() >= 1)
    rejected = metrics.counter("xb_adapter_rejected_total", "", ("reason_code",))
    assert rejected.value(reason_code="label_mismatch") == 1
    assert rejected.value(reason_code="bad_attestation") == 1
    assert len(serbia.inbox.rejected) == 2
    serbia.journal.close()
    serbia.inbox.close()
