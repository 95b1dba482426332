"""Valid inputs for every parser the fuzz campaigns attack, built from real parts.

Mutating a valid input reaches much deeper than random bytes: most random bytes die at the
first magic number or JSON brace. So every seed here is what the system really produces: a
signed registry (:mod:`broker.keys.testing`), envelopes sealed by the sending pipeline under
the accords in ``policies/``, the gateway's delivery frames, quarantine and audit records from
:func:`broker.pipeline.gateway.route`, a signed checkpoint note and record, an audit bundle,
the example messages in ``schemas/examples/`` and the example configs in ``deploy/examples/``.

Everything is built once per process (:func:`world`) and is deterministic apart from fresh
keys and salts, which is what a real deployment has too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import json
import pathlib

from broker import crypto, envelope
from broker.audit import Checkpoint, leaf_hash, root_hash, sign_checkpoint
from broker.crypto import SigningKey
from broker.envelope._format import Frame, encode_frame, signing_input
from broker.ids import KeyId, MessageId, PartnerCode
from broker.keys import Registry
from broker.keys.cards import PartnerKeys
from broker.keys.testing import build_registry
from broker.ledger import checkpoint_origin
from broker.ledger.entries import encode_checkpoint_record
from broker.pipeline.delivery import attest
from broker.pipeline.gateway import Deliver, InboundRecord, Quarantine, route
from broker.pipeline.send import Outgoing, accord_digest, prepare
from broker.policy import Accord, parse_accord
from broker.replay import BundleHeader, Entry
from broker.replay.bundle import write_bundle
from broker.schema import parse_message
from broker.trust import AccordBook, AccordInForce

__all__ = [
    "AUDIT_TOPIC",
    "GB",
    "LATER",
    "NOW",
    "ROOT",
    "RS",
    "World",
    "accord_seeds",
    "config_seeds",
    "frame_for",
    "message_seeds",
    "resign_envelope",
    "submission_seeds",
    "world",
]

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
#: when the receiver reads: a little after the gateway decided
LATER = NOW + dt.timedelta(seconds=30)
GB, RS = PartnerCode("GB"), PartnerCode("RS")
AUDIT_TOPIC = "xb.audit"


@functools.cache
def message_seeds() -> tuple[bytes, ...]:
    """Every example message in ``schemas/examples/``, as its file bytes."""
    return tuple(p.read_bytes() for p in sorted((ROOT / "schemas" / "examples").glob("*.json")))


@functools.cache
def accord_seeds() -> tuple[bytes, ...]:
    """Every accord in ``policies/``, as its file bytes."""
    return tuple(p.read_bytes() for p in sorted((ROOT / "policies").glob("*.yaml")))


@functools.cache
def config_seeds() -> tuple[bytes, ...]:
    """The example daemon configurations in ``deploy/examples/``."""
    return tuple(p.read_bytes() for p in sorted((ROOT / "deploy" / "examples").glob("*.yaml")))


@functools.cache
def submission_seeds() -> tuple[bytes, ...]:
    """Adapter spool submissions: each example message addressed to one or two partners."""
    seeds = []
    for i, data in enumerate(message_seeds()):
        to = ["RS"] if i % 2 else ["RS", "MK"]
        seeds.append(json.dumps({"to": to, "message": json.loads(data)}).encode())
    return tuple(seeds)


@dataclasses.dataclass(frozen=True)
class World:
    """A signed registry with every private key, the accords in force and real traffic."""

    registry: Registry
    registry_bytes: bytes
    partners: dict[PartnerCode, PartnerKeys]
    gateway_key: SigningKey
    witness_key: SigningKey
    accords: AccordBook
    #: GB -> RS envelopes as the sending pipeline seals them (one per example it may send)
    envelopes: tuple[bytes, ...]
    #: the gateway's delivery frames for ``envelopes``, addressed to RS
    frames: tuple[bytes, ...]
    audit_records: tuple[bytes, ...]
    quarantine_records: tuple[bytes, ...]
    #: a checkpoint note over ``audit_records``, signed by the gateway and co-signed by nobody
    checkpoint_note: bytes
    checkpoint_record: bytes
    #: an audit bundle: header, the audit records, the checkpoint record, one binary record
    bundle: bytes

    @property
    def rs_keys(self) -> dict[KeyId, crypto.DecryptionKey]:
        """Serbia's decryption keys by key id, as its adapter holds them."""
        keys = self.partners[RS]
        return {keys.encryption_key_id: keys.decryption}

    @property
    def counterparts(self) -> dict[PartnerCode, AccordInForce]:
        """The accords Serbia's adapter holds, by counterpart."""
        return self.accords.counterparts(RS)


def _accord(name: str) -> tuple[Accord, bytes]:
    data = (ROOT / "policies" / f"{name}.yaml").read_bytes()
    return parse_accord(data, source=f"{name}.yaml"), data


def frame_for(world_: World, sealed: bytes, *, gateway_key: SigningKey | None = None) -> bytes:
    """The delivery frame the gateway writes to ``inbox.RS`` for ``sealed`` (not re-checked)."""
    header = envelope.parse(sealed).header
    accord = world_.accords.for_pair(GB, RS)
    assert accord is not None
    return attest(
        sealed,
        message_id=MessageId(header.message_id),
        sender=PartnerCode(header.sender),
        recipient=PartnerCode(header.recipient),
        accord_id=accord.accord_id,
        accord_version=accord.version,
        accord_digest=world_.accords.digest(accord),
        rule_ids=("GB-RS-OPS",),
        decided_at=NOW,
        gateway_key=gateway_key or world_.gateway_key,
    )


def resign_envelope(*, header: bytes, ciphertext: bytes, key: SigningKey) -> bytes:
    """An envelope of ``header`` and ``ciphertext`` (any bytes) correctly signed by ``key``.

    A partner's own key can sign anything, so this is what a hostile but registered sender
    sends: it gets past the signature check and tests everything after it.
    """
    signature = key.sign(signing_input(header, crypto.sha256(ciphertext)))
    return encode_frame(Frame(header=header, ciphertext=ciphertext, signature=signature))


@functools.cache
def world() -> World:
    """The one world every campaign in this process mutates."""
    fixture = build_registry(now=NOW)
    gb_rs, gb_rs_bytes = _accord("gb-rs")
    book = AccordBook([(gb_rs, crypto.sha256(gb_rs_bytes).hex())])
    in_force = {RS: AccordInForce(gb_rs, accord_digest(gb_rs))}
    sealed: list[bytes] = []
    for data in message_seeds():
        outcomes = prepare(
            parse_message(data),
            sender=GB,
            recipients=[RS],
            accords=in_force,
            registry=fixture.registry,
            signing_key=fixture.partners[GB].signing,
            now=NOW,
            counters={},
        )
        sealed += [o.envelope for o in outcomes if isinstance(o, Outgoing)]
    assert sealed, "the accord gb-rs lets at least one example message through"
    gateway_key = next(iter(fixture.gateways.values()))
    frames, audits, quarantined = [], [], []
    records = [*sealed, b"\x89XBE\x01 not an envelope", sealed[0][:-1]]
    for offset, value in enumerate(records):
        outcome = route(
            InboundRecord(topic="xb.outbox.GB", partition=0, offset=offset, value=value),
            registry=fixture.registry,
            accords=book,
            gateway_key=gateway_key,
            now=NOW,
            counters={},
            dedup=lambda _key: "new",
        )
        if isinstance(outcome, Deliver):
            frames.append(outcome.frame)
        elif isinstance(outcome, Quarantine):
            quarantined.append(outcome.record.to_bytes())
        assert not isinstance(outcome, Deliver | Quarantine) or outcome.audit is not None
        if isinstance(outcome, Deliver | Quarantine):
            audits.append(outcome.audit.to_bytes())
    assert frames, "the gateway delivers the sealed examples"
    assert quarantined, "the gateway quarantines the broken records"
    leaves = [leaf_hash(a) for a in audits]
    note = sign_checkpoint(
        Checkpoint(
            origin=checkpoint_origin(AUDIT_TOPIC),
            size=len(leaves),
            root=root_hash(leaves),
            timestamp=NOW,
        ),
        key=gateway_key,
    )
    checkpoint_record = encode_checkpoint_record(
        note, first=0, leaves=leaves, refused=[], through=len(leaves)
    )
    header = BundleHeader.build(
        topic=AUDIT_TOPIC,
        exported_at="2026-11-28T12:00:00Z",
        registry_bytes=fixture.data,
        accords=[gb_rs],
    )
    out = io.BytesIO()
    # A record that is not UTF-8 is exported as value_b64: that line form is attacked too.
    values = [*audits, checkpoint_record, b"\xff\xfe not an audit record"]
    write_bundle(out, header, [Entry(i, v) for i, v in enumerate(values)])
    return World(
        registry=fixture.registry,
        registry_bytes=fixture.data,
        partners=fixture.partners,
        gateway_key=gateway_key,
        witness_key=next(iter(fixture.witnesses.values())),
        accords=book,
        envelopes=tuple(sealed),
        frames=tuple(frames),
        audit_records=tuple(audits),
        quarantine_records=tuple(quarantined),
        checkpoint_note=note,
        checkpoint_record=checkpoint_record,
        bundle=out.getvalue(),
    )
