"""Building real audit logs for the audit tests: signed records, accords, an in-memory topic.

Records are decided by the real policy engine under a real accord and signed with a gateway
key from a real registry, exactly the fields the gateway writes; the in-memory topic is a
fake of the Kafka seam (fetch waits for new records like a broker's long poll).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import pathlib
import uuid
from collections.abc import Sequence
from typing import Any

from broker.cosign import accord_digest
from broker.crypto import SigningKey
from broker.ids import PartnerCode
from broker.keys import Registry
from broker.keys.testing import RegistryFixture, build_registry
from broker.pipeline.records import AuditKind, ReasonCode, format_time, sign_audit_record
from broker.policy import Accord, Outcome, Request, evaluate, parse_accord
from broker.replay import BundleHeader, Entry
from broker.replay.bundle import write_bundle
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)
from broker.transport.kafka import Delivery, Record

__all__ = [
    "NOW",
    "AuditLog",
    "MemoryTopic",
    "accord_v1",
    "accord_v2",
    "decide",
    "labels",
]

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
_POLICIES = pathlib.Path(__file__).resolve().parents[3] / "policies"
TOPIC = "xb.audit"


def accord_v1() -> Accord:
    """The UK-Serbia accord as in force: OFFICIAL-SENSITIVE allowed GB -> RS."""
    return parse_accord((_POLICIES / "gb-rs.yaml").read_bytes(), source="gb-rs.yaml")


def accord_v2() -> Accord:
    """Version 2 of the same accord, which lowers the GB -> RS ceiling to OFFICIAL."""
    text = (_POLICIES / "gb-rs.yaml").read_text(encoding="utf-8")
    text = text.replace("version: 1", "version: 2", 1)
    first_flow, rest = text.split("max_classification: OFFICIAL-SENSITIVE", 1)
    text = first_flow + "max_classification: OFFICIAL  #" + rest
    return parse_accord(text.encode("utf-8"), source="gb-rs-v2.yaml")


def labels(
    *,
    classification: Classification = Classification.OFFICIAL,
    categories: Sequence[DataCategory] = (DataCategory.OPERATIONAL, DataCategory.IDENTITY),
    message_type: MessageType = MessageType.PERSON_ALERT,
) -> Labels:
    """Labels of an ordinary operational alert."""
    return Labels(
        message_type=message_type,
        schema_version=1,
        classification=classification,
        tlp=TLP.AMBER,
        handling=HandlingCode.H1,
        purposes=frozenset({Purpose.PEOPLE_SMUGGLING}),
        data_categories=frozenset(categories),
    )


def decide(
    accord: Accord,
    message_labels: Labels,
    *,
    key: SigningKey,
    at: dt.datetime,
    sender: str = "GB",
    recipient: str = "RS",
) -> bytes:
    """The signed audit record the gateway writes for this decision, as topic bytes."""
    request = Request(
        labels=message_labels, sender=PartnerCode(sender), recipient=PartnerCode(recipient)
    )
    decision = evaluate(accord, request, now=at, counters={})
    allowed = decision.outcome is Outcome.ALLOW
    fields: dict[str, Any] = {
        "kind": AuditKind.DISCLOSURE if allowed else AuditKind.REFUSAL,
        "message_id": str(uuid.uuid4()),
        "sender": sender,
        "recipient": recipient,
        "labels": message_labels,
        "envelope_sha256": uuid.uuid4().hex * 2,
        "decision": "allow" if allowed else "deny",
        "reason_code": None if allowed else ReasonCode.POLICY_DENIED,
        "rule_ids": decision.rule_ids,
        "reasons": decision.reasons,
        "accord_id": accord.accord,
        "accord_version": accord.version,
        "accord_digest": accord_digest(accord),
        "justification": {
            "purposes": tuple(sorted(str(p) for p in message_labels.purposes)),
            "flow": decision.flow,
        },
        "decided_at": format_time(at),
    }
    return sign_audit_record(fields, gateway_key=key).to_bytes()


class MemoryTopic:
    """A one-partition topic in memory, with a consumer's fetch and a producer's send."""

    def __init__(self, name: str = TOPIC) -> None:
        self.name = name
        self.values: list[bytes | None] = []
        self._grown = asyncio.Event()

    def contents(self) -> list[bytes]:
        """Every value in topic order, a record with no value as empty bytes."""
        return [value or b"" for value in self.values]

    def reader(self) -> MemoryTopic.Reader:
        """A consumer positioned at the first record."""
        return MemoryTopic.Reader(self)

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Delivery:
        """Append one record."""
        assert topic == self.name
        self.values.append(value)
        self._grown.set()
        return Delivery(topic=topic, partition=0, offset=len(self.values) - 1)

    @dataclasses.dataclass
    class Reader:
        """A consumer of the topic from its start."""

        topic: MemoryTopic
        position: int = 0

        async def fetch(self, *, timeout_ms: int, max_records: int | None = None) -> list[Record]:
            """The records after the position, waiting up to ``timeout_ms`` for one."""
            if self.position >= len(self.topic.values):
                self.topic._grown.clear()
                try:
                    await asyncio.wait_for(self.topic._grown.wait(), timeout_ms / 1000)
                except TimeoutError:
                    return []
            end = len(self.topic.values)
            if max_records is not None:
                end = min(end, self.position + max_records)
            batch = [
                Record(self.topic.name, 0, i, None, self.topic.values[i], (), 0)
                for i in range(self.position, end)
            ]
            self.position = end
            return batch


@dataclasses.dataclass
class AuditLog:
    """A registry, its gateway key, and the accord versions a log was decided under."""

    fixture: RegistryFixture
    accords: list[Accord]

    @classmethod
    def create(cls, *, gateways: int = 1) -> AuditLog:
        """Six partners, ``gateways`` gateway keys, one witness key; gb-rs v1 and v2."""
        return cls(build_registry(now=NOW, gateways=gateways), [accord_v1(), accord_v2()])

    @property
    def gateway_key(self) -> SigningKey:
        """The gateway's signing key."""
        return next(iter(self.fixture.gateways.values()))

    @property
    def witness_key(self) -> SigningKey:
        """The witness's signing key."""
        return next(iter(self.fixture.witnesses.values()))

    def header(self) -> BundleHeader:
        """A bundle header embedding the registry and both accord versions."""
        return BundleHeader.build(
            topic=TOPIC,
            exported_at=format_time(NOW),
            registry_bytes=self.fixture.data,
            accords=self.accords,
        )

    def bundle_bytes(self, values: Sequence[bytes | None], *, binary: bool = False) -> bytes:
        """A bundle of ``values`` in topic order (a record with no value as an empty one, as
        the exporter writes it), in JSON Lines or the binary form."""
        out = io.BytesIO()
        entries = [Entry(i, v or b"") for i, v in enumerate(values)]
        write_bundle(out, self.header(), entries, binary=binary)
        return out.getvalue()


async def checkpointed_topic(
    values: Sequence[bytes], *, key: SigningKey, registry: Registry, every: int = 4
) -> MemoryTopic:
    """A topic holding ``values`` with a checkpoint by ``key`` after every ``every`` records
    and one at the end, written by the real checkpointer judging by ``registry``."""
    from broker.audit import Checkpoint
    from broker.clock import FixedClock
    from broker.ledger import checkpoint_origin, run_checkpointer

    topic = MemoryTopic()
    stop, signed = asyncio.Event(), asyncio.Queue[Checkpoint]()
    task = asyncio.create_task(
        run_checkpointer(
            source=topic.reader(),
            sink=topic,
            topic=topic.name,
            key=key,
            origin=checkpoint_origin(topic.name),
            registry=lambda: registry,
            clock=FixedClock(NOW),
            stop=stop,
            every_records=every,
            on_checkpoint=signed.put_nowait,
        )
    )
    for start in range(0, len(values), every):
        for value in values[start : start + every]:
            await topic.send(topic.name, value)
        if len(values) - start >= every:
            await signed.get()
    stop.set()
    await task
    return topic
