"""A small exchange for adapter tests, built once per session: a signed registry with every
key, the real accords, adapters on temporary stores, and frames as the gateway builds them."""

from __future__ import annotations

import datetime as dt
import pathlib

from broker import envelope
from broker.adapter import Adapter, AdapterKeys, SendJournal, Spool, build_adapter
from broker.clock import FixedClock
from broker.config import AdapterConfig, load_config
from broker.crypto import AeadSealer, SigningKey
from broker.ids import MessageId, PartnerCode
from broker.keys.testing import RegistryFixture, build_registry
from broker.pipeline.delivery import attest
from broker.pipeline.gateway import Deliver, InboundRecord, Quarantine, route
from broker.pipeline.send import accord_digest
from broker.policy import load_accord
from broker.runtime import Metrics
from broker.schema import (
    TLP,
    DataCategory,
    HandlingCode,
    Labels,
    Message,
    Purpose,
    labels_of,
    message_bytes,
    parse_message,
    redact,
)
from broker.store import InboxStore
from broker.trust import AccordBook, AccordFiles, AccordInForce

ROOT = pathlib.Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
GB, RS, MK = PartnerCode("GB"), PartnerCode("RS"), PartnerCode("MK")
WORLD: RegistryFixture = build_registry(now=NOW)
GATEWAY_KEY = next(iter(WORLD.gateways.values()))


def in_force(name: str) -> AccordInForce:
    """An accord from policies/ with the digest of its file."""
    path = ROOT / "policies" / f"{name}.yaml"
    accord = load_accord(path)
    return AccordInForce(accord, accord_digest(accord))


GB_RS, GB_MK = in_force("gb-rs"), in_force("gb-mk")


def report() -> Message:
    """The example report, marked so the UK may send it to Serbia and North Macedonia."""
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


def make_adapter(
    me: PartnerCode,
    directory: pathlib.Path,
    *,
    clock: FixedClock,
    metrics: Metrics | None = None,
    spool: bool = False,
    world: RegistryFixture = WORLD,
) -> Adapter:
    """A partner's adapter on stores in ``directory`` (reopening the same directory resumes),
    holding the keys of ``world``."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = world.partners[me]
    accords = AccordFiles.holding([GB_RS] if me == RS else [GB_RS, GB_MK], now=clock.now())
    return Adapter(
        me=me,
        prefix="xb.",
        registry=world.registry,
        accords=accords,
        keys=AdapterKeys(
            signing=keys.signing, decryption={keys.encryption_key_id: keys.decryption}
        ),
        journal=SendJournal.open(directory / "send-journal.sqlite"),
        inbox=InboxStore.open(
            directory / "inbox.sqlite",
            recipient=me,
            sealer=AeadSealer(),
            dedup_retention=dt.timedelta(days=2),
        ),
        clock=clock,
        metrics=metrics or Metrics(),
        retention=dt.timedelta(days=30),
        spool=Spool(directory / "spool") if spool else None,
    )


def deliver(
    sealed: bytes,
    *,
    recipient: PartnerCode,
    at: dt.datetime = NOW,
    gateway_key: SigningKey = GATEWAY_KEY,
) -> bytes:
    """The delivery frame the gateway would write for ``sealed``."""
    header = envelope.parse(sealed).header
    accord = GB_RS if {header.sender, header.recipient} == {"GB", "RS"} else GB_MK
    return attest(
        sealed,
        message_id=MessageId(header.message_id),
        sender=PartnerCode(header.sender),
        recipient=recipient,
        accord_id=accord.accord.accord_id,
        accord_version=accord.accord.version,
        accord_digest=header.accord_digest,
        rule_ids=("test",),
        decided_at=at,
        gateway_key=gateway_key,
    )


def seal_for_rs(
    message: Message, *, labels: Labels | None = None, message_id: MessageId | None = None
) -> bytes:
    """GB's envelope of ``message`` for RS under the GB-RS accord, sealed at NOW. ``labels``
    (default: what the message holds) lets a test make the envelope lie about its content;
    ``message_id`` lets it reuse an id."""
    return envelope.sign_all([unsigned_for_rs(message, labels=labels, message_id=message_id)])[0]


def unsigned_for_rs(
    message: Message, *, labels: Labels | None = None, message_id: MessageId | None = None
) -> envelope.Unsigned:
    """:func:`seal_for_rs`, waiting to be signed (with others, under one head)."""
    key_id, key = WORLD.registry.current_encryption_key(RS, at=NOW)
    unsigned, _ = envelope.seal_unsigned(
        message_bytes(message),
        labels=labels_of(message) if labels is None else labels,
        sender=GB,
        sender_key=WORLD.partners[GB].signing,
        recipient=RS,
        recipient_key_id=key_id,
        recipient_key=key,
        accord_id=GB_RS.accord.accord_id,
        accord_digest=GB_RS.digest,
        now=NOW,
        ttl=dt.timedelta(days=1),
        message_id=message_id,
    )
    return unsigned


def under_declared_view() -> bytes:
    """A view from GB to RS whose signed labels leave out LOCATION, which its content holds."""
    view = redact(report(), [DataCategory.BIOMETRIC])
    honest = labels_of(view)
    return seal_for_rs(
        view,
        labels=honest.model_copy(
            update={"data_categories": honest.data_categories - {DataCategory.LOCATION}}
        ),
    )


def route_at_gateway(
    outbox: str,
    envelope: bytes,
    headers: tuple[tuple[str, bytes], ...],
    *,
    offset: int = 1,
    sign: bool = True,
) -> Deliver | Quarantine:
    """What the gateway decides for ``envelope`` read from ``outbox`` at ``offset`` with
    ``headers``, under gb-rs and gb-mk, with nothing seen before (``sign`` false: a delivery's
    attestation waits to be signed with its batch)."""
    outcome = route(
        InboundRecord(outbox, 0, offset, envelope, headers=headers),
        registry=WORLD.registry,
        accords=AccordBook([(GB_RS.accord, GB_RS.digest), (GB_MK.accord, GB_MK.digest)]),
        gateway_key=GATEWAY_KEY,
        now=NOW,
        counters={},
        dedup=lambda _key: "new",
        sign=sign,
    )
    assert isinstance(outcome, Deliver | Quarantine)
    return outcome


def process_spool(config: str) -> None:
    """Run the adapter of the configuration file ``config`` over its spool once, as its
    daemon would, with no Kafka: it seals and journals what waits (its first run makes its
    stores)."""
    adapter = build_adapter(load_config(config, AdapterConfig), metrics=Metrics())
    try:
        adapter.process_spool()
    finally:
        adapter.journal.close()
        adapter.inbox.close()
