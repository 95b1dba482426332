"""Probes for the end-to-end tests: the federation, messages, and what partners can observe.

Every probe reads what a partner or an operator could read: the adapters' SQLite inboxes, the
Kafka topics (with a plain client that joins no group), and the daemons' ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import aiokafka
import pytest

from broker import envelope
from broker.crypto import AeadSealer
from broker.demo.federation import Federation, current_accords, provision
from broker.demo.scenario import network_report
from broker.ids import AccordId, MessageId, PartnerCode, new_message_id
from broker.pipeline.send import accord_digest
from broker.policy import load_accord
from broker.schema import (
    Labels,
    Message,
    labels_of,
    parse_message,
)
from broker.store import InboxStore
from broker.transport.admin import partition_leaders
from broker.transport.security import PLAINTEXT, ClientSecurity
from broker.transport.testing import KafkaUnderTest

__all__ = [
    "ROOT",
    "Received",
    "TopicReader",
    "flip_byte",
    "inbox",
    "new_federation",
    "produce",
    "report",
    "running",
    "seal_as",
    "wait_for",
]

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
_POLL_S = 0.2


def new_federation(
    root: Path, kafka: KafkaUnderTest, *, accords: list[Path] | None = None
) -> Federation:
    """A provisioned federation with its own topic prefix on the session broker, topics made.

    ``accords`` default to the shipped ones re-dated around now (``current_accords``): the
    daemons run on the wall clock, and no test may depend on the day it runs.
    """
    if accords is None:
        accords = current_accords(
            root.with_name(f"{root.name}-accords"), now=dt.datetime.now(dt.UTC)
        )
    federation = provision(
        root, kafka=kafka.kafka_access, prefix=f"e{uuid.uuid4().hex[:10]}.", accords=accords
    )
    asyncio.run(federation.create_topics())
    return federation


@contextlib.contextmanager
def running(root: Path, kafka: KafkaUnderTest, daemons: Iterable[str]) -> Iterator[Federation]:
    """A :func:`new_federation` with ``daemons`` started; all stopped on leaving."""
    with new_federation(root, kafka) as federation:
        federation.start_many(list(daemons))
        yield federation


def report(case_id: str) -> Message:
    """The example network report, marked so the UK may send it to RS, MK and XK.

    OFFICIAL, TLP:GREEN, H0, people-smuggling; without its source-identifying and financial
    fields (which the MK accord refuses outright). It keeps operational, identity, location,
    communications, vehicle, travel-document and biometric fields.
    """
    return network_report(case_id)


def seal_as(
    federation: Federation,
    sender: str,
    recipient: str,
    message: Message,
    *,
    accord: str,
    labels: Labels | None = None,
    message_id: MessageId | None = None,
) -> tuple[MessageId, bytes]:
    """Seal ``message`` exactly as ``sender``'s adapter would, but with no policy check:
    what a compromised or misconfigured adapter could put on its outbox."""
    now = dt.datetime.now(dt.UTC)
    registry = federation.registry(now=now)
    in_force = load_accord(federation.accords_dir / f"{accord}.yaml")
    key_id, key = registry.current_encryption_key(
        PartnerCode(recipient), at=now, suite=in_force.suite
    )
    message_id = message_id or new_message_id()
    sealed = envelope.seal(
        message,
        labels=labels or labels_of(message),
        sender=PartnerCode(sender),
        sender_key=federation.signing_key(sender, suite=in_force.suite),
        recipient=PartnerCode(recipient),
        recipient_key_id=key_id,
        recipient_key=key,
        accord_id=AccordId(in_force.accord),
        accord_digest=accord_digest(in_force),
        now=now,
        ttl=dt.timedelta(days=7),
        message_id=message_id,
    )
    return message_id, sealed


class Received(NamedTuple):
    """One message in an adapter's inbox store."""

    sender: str
    message: Message


def inbox(federation: Federation, partner: str) -> dict[str, Received]:
    """Every message in ``partner``'s inbox store, decrypted, by message id."""
    path = federation.inbox_path(partner)
    if not path.exists():
        return {}
    with InboxStore.open(
        path,
        recipient=PartnerCode(partner),
        sealer=AeadSealer(),
        dedup_retention=dt.timedelta(days=2),
    ) as store:
        return {
            row.message_id: Received(row.sender, parse_message(store.get(row.message_id)))
            for row in store.list(limit=100_000)
        }


def cli(
    federation: Federation, *args: str, partner: str, expect: int = 0, timeout_s: float = 60.0
) -> str:
    """``broker ARGS --config <partner's>`` as a process of its own: its stdout, or stdout
    and stderr when it is expected to fail; any other exit status fails the test."""
    done = subprocess.run(
        [sys.executable, "-m", "broker", *args, "--config", str(federation.config_path(partner))],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == expect, done.stdout + done.stderr
    return done.stdout if expect == 0 else done.stdout + done.stderr


def delivered(federation: Federation, partner: str, match: dict[str, Any]) -> Path | None:
    """The file in ``partner``'s delivery directory whose message (or body) has ``match``'s
    items, if any."""
    for path in federation.delivery_dir(partner).glob("*.json"):
        message = json.loads(path.read_bytes())["message"]
        flat = {**message, **message.get("body", {})}
        if all(flat.get(k) == v for k, v in match.items()):
            return path
    return None


def wait_for(probe: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
    """Poll ``probe`` until it returns something other than None or False.

    The daemons are other processes: there is no event to await, so this polls, and fails
    with ``what`` after ``timeout_s`` (a bound on a hang, not a performance threshold).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(_POLL_S)


class TopicReader:
    """Reads a whole topic from the beginning with a plain client that joins no group (as the
    cluster's administrator on a secured cluster)."""

    def __init__(self, bootstrap: str, topic: str, *, security: ClientSecurity = PLAINTEXT) -> None:
        self.bootstrap, self.topic, self.security = bootstrap, topic, security

    def read(self, *, idle_ms: int = 1_500) -> list[aiokafka.ConsumerRecord[bytes, bytes]]:
        """Every record now on the topic (reading until a fetch brings nothing new)."""
        return asyncio.run(self._read(idle_ms))

    async def _read(self, idle_ms: int) -> list[aiokafka.ConsumerRecord[bytes, bytes]]:
        # a client that subscribes to nothing learns no topic's partitions: ask for them
        partitions = await partition_leaders(self.bootstrap, self.topic, security=self.security)
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            group_id=None,
            **self.security.client_options(),
        )
        await consumer.start()
        try:
            consumer.assign([aiokafka.TopicPartition(self.topic, p) for p in partitions])
            await consumer.seek_to_beginning()
            records: list[aiokafka.ConsumerRecord[bytes, bytes]] = []
            while True:
                batch = await consumer.getmany(timeout_ms=idle_ms)
                if not batch:
                    return records
                for part in batch.values():
                    records.extend(part)
        finally:
            await consumer.stop()


async def produce(
    bootstrap: str,
    topic: str,
    value: bytes,
    *,
    headers: list[tuple[str, bytes]],
    security: ClientSecurity = PLAINTEXT,
) -> None:
    """Write one record with a plain client (acks=all), as anyone with topic access could."""
    producer = aiokafka.AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", **security.client_options()
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, headers=headers)
    finally:
        await producer.stop()


def flip_byte(data: bytes, index: int) -> bytes:
    """``data`` with one bit of the byte at ``index`` flipped."""
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]
