"""The gateway's pure decision, route(): one outbox record in, one outcome out.

Every reason code in docs/GATEWAY.md has a named case here, built from real parts: a signed
registry (broker.keys.testing), real sealed envelopes and accords parsed from YAML.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pathlib
from collections.abc import Callable

import pytest

from broker import crypto, envelope, limits
from broker.envelope import Origin
from broker.ids import AccordId, MessageId, PartnerCode, new_message_id
from broker.keys import PartnerUnit, Registry
from broker.keys.testing import RegistryFixture, build_registry
from broker.pipeline import (
    ReasonCode,
    parse_audit_record,
    verify_audit_record,
    verify_delivery,
    verify_quarantine_record,
)
from broker.pipeline.gateway import (
    DedupKey,
    Deliver,
    Duplicate,
    GatewayOutcome,
    InboundRecord,
    Limits,
    Quarantine,
    quarantine_unroutable,
    route,
)
from broker.policy import Accord, parse_accord
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)
from broker.store import DedupStore
from broker.trust import AccordBook
from broker.trust.acts import Halt

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
DEFAULT_LIMITS = Limits()
GB, RS, AL, MK = (PartnerCode(c) for c in ("GB", "RS", "AL", "MK"))

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


def accord_yaml(
    name: str,
    partner: str,
    *,
    effective: str = "2025-01-01",
    expires: str = "2028-01-01",
    version: int = 1,
    rate: str = "5/hour",
    suite: str = "classic",
) -> bytes:
    """A small classic accord between GB and ``partner`` with one flow each way."""
    flows = ""
    for sender, recipient in (("GB", partner), (partner, "GB")):
        flows += f"""
  - id: {sender}-{recipient}-OPS
    from: {sender}
    to: {recipient}
    tier: operational
    types: [network.report, receipt]
    purposes: [people-smuggling]
    max_classification: OFFICIAL-SENSITIVE
    max_tlp: AMBER
    handling_codes: [H0, H1, H2]
    categories:
      allow: [operational, identity]
      redact: [biometric]
      deny: [source-identifying]
    handling:
      onward_sharing: with-originator-consent
      retention_days: 365
    rate_limit: {rate}
"""
    text = f"""accord: {name}
title: Test accord {name}
version: {version}
parties: [GB, {partner}]
effective: {effective}
expires: {expires}
suite: {suite}
flows:{flows}"""
    return text.encode()


def load(data: bytes) -> tuple[Accord, str]:
    """An accord and the digest of its file bytes, as the daemon holds them."""
    return parse_accord(data, source="test.yaml"), crypto.sha256(data).hex()


@dataclasses.dataclass(frozen=True)
class World:
    """Registry, keys and accords for GB, RS, AL and MK (no accord between GB and MK)."""

    fixture: RegistryFixture
    accords: AccordBook

    @property
    def registry(self) -> Registry:
        return self.fixture.registry

    @property
    def gateway_key(self) -> crypto.SigningKey:
        return next(iter(self.fixture.gateways.values()))

    def seal(
        self,
        sender: PartnerCode = GB,
        recipient: PartnerCode = RS,
        *,
        labels: Labels = LABELS,
        accord_id: str = "gb-rs",
        now: dt.datetime = NOW,
        sender_key: crypto.SigningKey | None = None,
        recipient_key: crypto.EncryptionKey | None = None,
        message_id: MessageId | None = None,
        origin: Origin | None = None,
    ) -> bytes:
        keys = self.fixture.partners
        if recipient_key is None:
            key_id, recipient_key = self.registry.current_encryption_key(recipient, at=now)
        else:
            key_id = recipient_key.key_id
        return envelope.seal(
            MESSAGE,
            labels=labels,
            sender=sender,
            sender_key=sender_key or keys[sender].signing,
            recipient=recipient,
            recipient_key_id=key_id,
            recipient_key=recipient_key,
            accord_id=AccordId(accord_id),
            accord_digest="ab" * 32,
            now=now,
            ttl=dt.timedelta(days=7),
            message_id=message_id,
            origin=origin,
        )


@pytest.fixture(scope="module")
def world() -> World:
    fixture = build_registry(now=NOW, partners=("GB", "RS", "AL", "MK"), roots=1, threshold=1)
    book = AccordBook([load(accord_yaml("gb-rs", "RS")), load(accord_yaml("gb-al", "AL"))])
    return World(fixture=fixture, accords=book)


def never_seen(_key: DedupKey) -> str:
    return "new"


def decide(
    world: World,
    value: bytes | None,
    *,
    topic: str = "xb.outbox.GB",
    registry: Registry | None = None,
    accords: AccordBook | None = None,
    counters: dict[str, int] | None = None,
    dedup: Callable[[DedupKey], str] = never_seen,
    limits: Limits = DEFAULT_LIMITS,
    headers: tuple[tuple[str, bytes], ...] = (),
) -> GatewayOutcome:
    inbound = InboundRecord(topic=topic, partition=0, offset=7, value=value, headers=headers)
    return route(
        inbound,
        registry=world.registry if registry is None else registry,
        accords=world.accords if accords is None else accords,
        gateway_key=world.gateway_key,
        now=NOW,
        counters=counters or {},
        dedup=dedup,  # type: ignore[arg-type]
        limits=limits,
    )


def quarantined(outcome: GatewayOutcome) -> Quarantine:
    assert isinstance(outcome, Quarantine), outcome
    return outcome


def test_an_allowed_envelope_is_delivered_with_a_verifiable_attestation(world: World) -> None:
    """The frame goes to inbox.RS, verifies as RS's delivery, and carries the exact envelope."""
    sealed = world.seal()
    outcome = decide(world, sealed, headers=(("xb-recipient", b"RS"),))
    assert isinstance(outcome, Deliver)
    assert outcome.topic == "xb.inbox.RS"
    assert outcome.decision.rate_counter == "GB-RS-OPS"
    verified = verify_delivery(outcome.frame, registry=world.registry, recipient=RS, now=NOW)
    assert verified.envelope_bytes == sealed
    assert verified.attestation.accord_id == "gb-rs"
    assert verified.attestation.rule_ids == ("GB-RS-OPS",)
    audit = verify_audit_record(outcome.audit.to_bytes(), registry=world.registry)
    assert (audit.kind, audit.decision, audit.reason_code) == ("disclosure", "allow", None)
    assert audit.labels == LABELS
    assert audit.justification is not None
    assert audit.justification.flow == "GB-RS-OPS"
    assert outcome.dedup_key.digest == crypto.sha256(sealed)


def test_a_receipt_is_audited_as_a_receipt(world: World) -> None:
    """Receipts travel the same road; their audit record says kind=receipt."""
    labels = LABELS.model_copy(update={"message_type": MessageType.RECEIPT})
    outcome = decide(world, world.seal(RS, GB, labels=labels), topic="xb.outbox.RS")
    assert isinstance(outcome, Deliver)
    assert outcome.audit.kind == "receipt"


def _revoked_registry(world: World) -> Registry:
    draft = world.fixture.edit()
    gb = world.fixture.partners[GB]
    draft.revoke(
        partner=GB, key_id=gb.signing_key_id, at=NOW - dt.timedelta(hours=1), reason="lost"
    )
    return world.fixture.resign(draft, now=NOW)[0]


#: the unit GB declares in the registry of _units_declared, and one officer of it
MARITIME = PartnerUnit("Border Force", "Maritime Intelligence")
CLARKE = Origin(agency=MARITIME.agency, unit=MARITIME.unit, officer="d.clarke")


def _units_declared(world: World) -> Registry:
    """The world's registry, in which GB lists one unit (``registry set-units``)."""
    draft = world.fixture.edit()
    draft.set_units(GB, [MARITIME])
    return world.fixture.resign(draft, now=NOW)[0]


# name -> (make the record value and routing inputs, expected reason code)
CASES: dict[str, tuple[Callable[[World], dict[str, object]], ReasonCode]] = {
    "no value": (lambda w: {"value": None}, ReasonCode.MALFORMED),
    "garbage": (lambda w: {"value": b"\x89XBE not an envelope"}, ReasonCode.MALFORMED),
    "oversized": (
        lambda w: {"value": w.seal(), "limits": Limits(max_envelope_bytes=1024)},
        ReasonCode.OVERSIZED,
    ),
    "bit flip": (
        lambda w: {"value": (s := w.seal())[:-1] + bytes([s[-1] ^ 1])},
        ReasonCode.BAD_SIGNATURE,
    ),
    "unknown sender": (
        lambda w: {
            "value": w.seal(),
            "registry": build_registry(now=NOW, partners=("RS",), roots=1, threshold=1).registry,
        },
        ReasonCode.UNKNOWN_SENDER,
    ),
    "unregistered signing key": (
        lambda w: {"value": w.seal(sender_key=crypto.SigningKey.generate(crypto.Suite.CLASSIC))},
        ReasonCode.UNKNOWN_KEY,
    ),
    "revoked signing key": (
        lambda w: {"value": w.seal(), "registry": _revoked_registry(w)},
        ReasonCode.REVOKED_KEY,
    ),
    "revoked signing key, envelope back-dated to before the revocation": (
        lambda w: {
            "value": w.seal(now=NOW - dt.timedelta(hours=1, seconds=1)),
            "registry": _revoked_registry(w),
        },
        ReasonCode.REVOKED_KEY,
    ),
    "too old": (
        lambda w: {
            "value": w.seal(now=NOW - dt.timedelta(hours=2)),
            "limits": Limits(max_age=dt.timedelta(hours=1)),
        },
        ReasonCode.STALE,
    ),
    "dated in the future": (
        lambda w: {"value": w.seal(now=NOW + dt.timedelta(hours=1))},
        ReasonCode.FUTURE_DATED,
    ),
    "read from another partner's outbox": (
        lambda w: {"value": w.seal(), "topic": "xb.outbox.RS"},
        ReasonCode.SENDER_MISMATCH,
    ),
    "unregistered recipient key": (
        lambda w: {
            "value": w.seal(
                recipient_key=crypto.DecryptionKey.generate(crypto.Suite.CLASSIC).public_key()
            )
        },
        ReasonCode.RECIPIENT_KEY_INVALID,
    ),
    "routing header names another recipient": (
        lambda w: {"value": w.seal(), "headers": (("xb-recipient", b"AL"),)},
        ReasonCode.RECIPIENT_MISMATCH,
    ),
    "routing header given twice": (
        lambda w: {"value": w.seal(), "headers": (("xb-recipient", b"RS"),) * 2},
        ReasonCode.RECIPIENT_MISMATCH,
    ),
    "no accord for the pair": (
        lambda w: {"value": w.seal(GB, MK, accord_id="gb-mk")},
        ReasonCode.NO_ACCORD,
    ),
    "sealed under another accord": (
        lambda w: {"value": w.seal(accord_id="gb-al")},
        ReasonCode.ACCORD_MISMATCH,
    ),
    "accord expired": (
        lambda w: {
            "value": w.seal(),
            "accords": AccordBook([load(accord_yaml("gb-rs", "RS", expires="2026-06-01"))]),
        },
        ReasonCode.ACCORD_EXPIRED,
    ),
    "accord suspended by a party": (
        lambda w: {
            "value": w.seal(),
            "accords": AccordBook(
                [load(accord_yaml("gb-rs", "RS"))],
                halts={AccordId("gb-rs"): Halt(ReasonCode.ACCORD_SUSPENDED, "RS suspended it")},
            ),
        },
        ReasonCode.ACCORD_SUSPENDED,
    ),
    "accord not yet in force": (
        lambda w: {
            "value": w.seal(),
            "accords": AccordBook([load(accord_yaml("gb-rs", "RS", effective="2027-01-01"))]),
        },
        ReasonCode.ACCORD_NOT_YET_EFFECTIVE,
    ),
    "TLP above the ceiling": (
        lambda w: {"value": w.seal(labels=LABELS.model_copy(update={"tlp": TLP.RED}))},
        ReasonCode.POLICY_DENIED,
    ),
    "sender did not redact": (
        lambda w: {
            "value": w.seal(
                labels=LABELS.model_copy(
                    update={"data_categories": frozenset({DataCategory.BIOMETRIC})}
                )
            )
        },
        ReasonCode.POLICY_DENIED,
    ),
    "accord requires another suite": (
        lambda w: {
            "value": w.seal(),
            "accords": AccordBook([load(accord_yaml("gb-rs", "RS", suite="pq-hybrid"))]),
        },
        ReasonCode.SUITE_MISMATCH,
    ),
    "rate limit reached": (
        lambda w: {"value": w.seal(), "counters": {"GB-RS-OPS": 5}},
        ReasonCode.RATE_LIMITED,
    ),
    "origin names a unit its sender does not list": (
        lambda w: {
            "value": w.seal(origin=CLARKE.model_copy(update={"unit": "Maritime Intel"})),
            "registry": _units_declared(w),
        },
        ReasonCode.UNLISTED_UNIT,
    ),
    "origin names a listed unit of another agency": (
        lambda w: {
            "value": w.seal(origin=CLARKE.model_copy(update={"agency": "NCA"})),
            "registry": _units_declared(w),
        },
        ReasonCode.UNLISTED_UNIT,
    ),
}


def test_an_origin_of_a_listed_unit_is_delivered_and_no_list_checks_nothing(world: World) -> None:
    """GB's officer of a unit GB declares passes; with no list, any well-formed unit does."""
    declared = _units_declared(world)
    assert isinstance(decide(world, world.seal(origin=CLARKE), registry=declared), Deliver)
    elsewhere = CLARKE.model_copy(update={"unit": "Anything"})
    assert isinstance(decide(world, world.seal(origin=elsewhere)), Deliver)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_refusal_is_quarantined_with_its_reason_code(world: World, case: str) -> None:
    """Each bad record becomes a Quarantine naming its code, with a signed refusal audit."""
    make, expected = CASES[case]
    kwargs = make(world)
    outcome = quarantined(decide(world, **kwargs))  # type: ignore[arg-type]
    assert outcome.reason_code is expected
    record = outcome.record
    assert record.id == f"{kwargs.get('topic', 'xb.outbox.GB')}/0/7"
    value = kwargs["value"] or b""
    assert isinstance(value, bytes)
    # the record is signed and keeps the value's digest and prefix (never all of a large one)
    verify_quarantine_record(record, registry=world.registry)
    assert record.value_prefix == value[: limits.QUARANTINE_PREFIX_BYTES]
    assert record.value_sha256 == crypto.sha256(value).hex()
    audit = verify_audit_record(outcome.audit.to_bytes(), registry=world.registry)
    assert audit.envelope_sha256 == crypto.sha256(value).hex()
    assert (audit.kind, audit.decision, audit.reason_code) == ("refusal", "deny", expected)
    assert audit.reasons


def test_a_policy_denial_carries_the_decision_and_every_failed_rule(world: World) -> None:
    """The quarantine record holds Decision.to_json(); the audit cites the failed rule ids."""
    labels = LABELS.model_copy(
        update={"tlp": TLP.RED, "data_categories": frozenset({DataCategory.SOURCE_IDENTIFYING})}
    )
    outcome = quarantined(decide(world, world.seal(labels=labels)))
    assert outcome.record.decision is not None
    assert outcome.record.decision["outcome"] == "deny"
    assert set(outcome.audit.rule_ids) == {"GB-RS-OPS.tlp", "GB-RS-OPS.categories.deny"}
    assert len(outcome.audit.reasons) == 2


def test_a_new_accord_version_decides_an_envelope_sealed_under_the_old_one(world: World) -> None:
    """Same accord id, other digest: the version in force decides and is what gets attested."""
    newer = AccordBook([load(accord_yaml("gb-rs", "RS", version=2))])
    outcome = decide(world, world.seal(), accords=newer)
    assert isinstance(outcome, Deliver)
    attested = verify_delivery(outcome.frame, registry=world.registry, recipient=RS, now=NOW)
    assert attested.attestation.accord_version == 2
    assert attested.attestation.accord_digest == newer.digest(newer.accords[0])


def test_redelivery_is_a_duplicate_and_reused_ids_are_a_conflict(
    world: World, tmp_path: pathlib.Path
) -> None:
    """route() only looks keys up; the daemon records each outcome's key. Then the same id
    and bytes again are a Duplicate (nothing produced); other bytes are replay_conflict."""
    store = DedupStore.open(tmp_path / "dedup.sqlite", retention=dt.timedelta(days=2))

    def lookup(key: DedupKey) -> str:
        return store.classify(key.message_id, key.recipient, key.digest, now=NOW)

    message_id = new_message_id()
    first = world.seal(message_id=message_id)
    assert isinstance(decide(world, first, dedup=lookup), Deliver)
    delivered = decide(world, first, dedup=lookup)
    assert isinstance(delivered, Deliver), "route() itself recorded nothing"
    key = delivered.dedup_key
    store.record_in_transaction(key.message_id, key.recipient, key.digest, "new", now=NOW)
    again = decide(world, first, dedup=lookup)
    assert isinstance(again, Duplicate)
    assert again.dedup_key.message_id == message_id
    other = world.seal(message_id=message_id)
    conflict = quarantined(decide(world, other, dedup=lookup))
    assert conflict.reason_code is ReasonCode.REPLAY_CONFLICT
    assert conflict.dedup_key == DedupKey(message_id, RS, crypto.sha256(other))
    store.close()


def test_refused_records_are_never_recorded_for_deduplication(world: World) -> None:
    """Only deliverable envelopes reach the dedup check, so a released one is re-evaluated."""
    seen: list[DedupKey] = []

    def dedup(key: DedupKey) -> str:
        seen.append(key)
        return "new"

    decide(world, world.seal(labels=LABELS.model_copy(update={"tlp": TLP.RED})), dedup=dedup)
    assert seen == []


def test_quarantine_and_audit_records_never_hold_plaintext(world: World) -> None:
    """The message text appears in neither record (the envelope is carried encrypted)."""
    outcome = quarantined(decide(world, world.seal(), topic="xb.outbox.RS"))
    for data in (outcome.record.to_bytes(), outcome.audit.to_bytes()):
        assert b"Western Balkans" not in data
    assert parse_audit_record(outcome.audit.to_bytes()) == outcome.audit


# name -> (make the record value, whether the records can name the envelope's ids)
NAMED: dict[str, tuple[Callable[[World, MessageId], bytes], bool]] = {
    "delivered": (lambda w, m: w.seal(message_id=m), True),
    "bad signature": (lambda w, m: (s := w.seal(message_id=m))[:-1] + bytes([s[-1] ^ 1]), True),
    "dated in the future": (
        lambda w, m: w.seal(message_id=m, now=NOW + dt.timedelta(hours=1)),
        True,
    ),
    "no accord": (lambda w, m: w.seal(recipient=MK, message_id=m), True),
    "garbage": (lambda w, m: b"\x89XBE not an envelope", False),
}


@pytest.mark.parametrize("case", sorted(NAMED))
def test_the_records_name_what_the_envelope_says_whatever_the_outcome(
    world: World, case: str
) -> None:
    """Audit and quarantine records carry the message id, sender and recipient of any
    envelope that parses (verified or merely claimed), and none for one that does not."""
    make, named = NAMED[case]
    message_id = new_message_id(unix_ms=int(NOW.timestamp() * 1000))
    outcome = decide(world, make(world, message_id))
    expected = (message_id, "GB", "MK" if case == "no accord" else "RS") if named else (None,) * 3
    assert not isinstance(outcome, Duplicate)
    audit = outcome.audit
    assert (audit.message_id, audit.sender, audit.recipient) == expected
    if isinstance(outcome, Quarantine):
        record = outcome.record
        assert (record.message_id, record.sender, record.recipient) == expected
    else:
        assert case == "delivered"


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(DEFAULT_LIMITS.max_envelope_bytes, id="the largest allowed envelope"),
        pytest.param(5 * 1024 * 1024, id="a record far over the limit"),
    ],
)
def test_a_quarantine_record_always_fits_what_the_gateway_may_produce(
    world: World, size: int
) -> None:
    """The last-resort quarantine never raises, and its record fits the quarantine limit.

    A quarantine record that could not be written would fail the batch on every retry and
    stall the gateway; it keeps the value's digest and a bounded prefix, whatever its size.
    """
    value = b"\x00" * size
    outcome = quarantine_unroutable(
        InboundRecord(topic="xb.outbox.GB", partition=0, offset=9, value=value),
        reason="the gateway could not process this record (ValueError)",
        gateway_key=world.gateway_key,
        now=NOW,
        limits=DEFAULT_LIMITS,
    )
    assert outcome.record.value_prefix == value[: limits.QUARANTINE_PREFIX_BYTES]
    assert outcome.record.value_size == len(value)
    assert len(outcome.record.to_bytes()) <= limits.QUARANTINE_RECORD_MAX_BYTES
    assert outcome.audit.envelope_sha256 == crypto.sha256(value).hex()
