"""Fixtures for envelope tests: partners with real keys, a tiny registry, a sample report.

The registry here is a few dictionaries with validity windows and revocations; it satisfies
:class:`broker.envelope.KeyRegistry` structurally, as ``broker.keys.Registry`` does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from broker import crypto, envelope, errors
from broker.envelope import OpenedEnvelope
from broker.envelope._open import _open_with
from broker.envelope._seal import _seal_document
from broker.ids import AccordId, KeyId, MessageId, PartnerCode
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
ACCORD_DIGEST = bytes.fromhex("ab" * 32)

SAMPLE_MESSAGE: dict[str, object] = {
    "type": "network.report",
    "schema_version": 1,
    "classification": "OFFICIAL-SENSITIVE",
    "tlp": "AMBER",
    "handling": "H2",
    "purposes": ["people-smuggling"],
    "case_id": "GB-NCA-2026-0417",
    "body": {
        "summary": "Network moving people from Presevo to the Channel coast via Subotica.",
        "operation_name": "KESTREL",
        "transit_countries": ["MK", "RS", "HU", "AT", "DE", "FR"],
        "persons_moved_per_month": 120,
        "members": [
            {
                "ref": "M1",
                "roles": ["organiser"],
                "status": "wanted",
                "person": {"family_name": "Example", "given_names": "Ana", "nationalities": ["AL"]},
            },
            {"ref": "M2", "roles": ["driver", "guide"], "status": "at-large"},
        ],
        "hubs": [{"ref": "H1", "function": "staging", "country": "RS", "member_refs": ["M1"]}],
    },
}
SAMPLE_LABELS = Labels(
    message_type=MessageType.NETWORK_REPORT,
    schema_version=1,
    classification=Classification.OFFICIAL_SENSITIVE,
    tlp=TLP.AMBER,
    handling=HandlingCode.H2,
    purposes=frozenset({Purpose.PEOPLE_SMUGGLING}),
    data_categories=frozenset({DataCategory.OPERATIONAL, DataCategory.IDENTITY}),
)


def sample_bytes() -> bytes:
    """The sample report as compact JSON."""
    return json.dumps(SAMPLE_MESSAGE, separators=(",", ":")).encode()


@dataclasses.dataclass(frozen=True)
class Party:
    """A partner with its private keys."""

    code: PartnerCode
    signing: crypto.SigningKey
    decryption: crypto.DecryptionKey

    @property
    def decryption_keys(self) -> dict[KeyId, crypto.DecryptionKey]:
        return {self.decryption.key_id: self.decryption}


@dataclasses.dataclass
class _Window:
    key: object
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None = None


class TinyRegistry:
    """(partner, key id) -> key with a validity window and an optional revocation time."""

    def __init__(self) -> None:
        self._keys: dict[tuple[PartnerCode, KeyId], _Window] = {}

    def add(
        self,
        party: Party,
        *,
        not_before: dt.datetime = NOW - dt.timedelta(days=30),
        not_after: dt.datetime = NOW + dt.timedelta(days=30),
    ) -> None:
        for key in (party.signing.public_key(), party.decryption.public_key()):
            self._keys[(party.code, key.key_id)] = _Window(key, not_before, not_after)

    def revoke(self, partner: PartnerCode, key_id: KeyId, *, at: dt.datetime) -> None:
        self._keys[(partner, key_id)].revoked_at = at

    def _lookup(self, partner: PartnerCode, key_id: KeyId, at: dt.datetime) -> object:
        window = self._keys.get((partner, key_id))
        if window is None:
            raise errors.KeyTrustError(f"unknown key {partner}/{key_id}")
        if not window.not_before <= at < window.not_after:
            raise errors.KeyTrustError(f"key {partner}/{key_id} is not valid at {at}")
        if window.revoked_at is not None and at >= window.revoked_at:
            raise errors.KeyTrustError(f"key {partner}/{key_id} is revoked")
        return window.key

    def signing_key(
        self, partner: PartnerCode, key_id: KeyId, *, at: dt.datetime
    ) -> crypto.VerifyKey:
        key = self._lookup(partner, key_id, at)
        if not isinstance(key, crypto.VerifyKey):
            raise errors.KeyTrustError("not a signing key")
        return key

    def encryption_key(
        self, partner: PartnerCode, key_id: KeyId, *, at: dt.datetime
    ) -> crypto.EncryptionKey:
        key = self._lookup(partner, key_id, at)
        if not isinstance(key, crypto.EncryptionKey):
            raise errors.KeyTrustError("not an encryption key")
        return key


def make_party(code: str, suite: crypto.Suite = crypto.Suite.CLASSIC) -> Party:
    """A partner with freshly generated keys."""
    return Party(
        PartnerCode(code), crypto.SigningKey.generate(suite), crypto.DecryptionKey.generate(suite)
    )


@pytest.fixture(scope="session")
def gb() -> Party:
    return make_party("GB")


@pytest.fixture(scope="session")
def rs() -> Party:
    return make_party("RS")


@pytest.fixture(scope="session")
def mk() -> Party:
    return make_party("MK")


@pytest.fixture
def registry(gb: Party, rs: Party, mk: Party) -> TinyRegistry:
    reg = TinyRegistry()
    for party in (gb, rs, mk):
        reg.add(party)
    return reg


Sealer = Callable[..., bytes]


def seal_from(
    source: Party, destination: Party, message: bytes | None = None, **overrides: object
) -> bytes:
    """Seal the sample (or ``message``) from ``source`` to ``destination`` at NOW; any
    keyword argument of seal() can be overridden."""
    arguments = _sealing(source, destination, **overrides)
    return envelope.seal(sample_bytes() if message is None else message, **arguments)


def unsigned_from(source: Party, destination: Party, **overrides: object) -> envelope.Unsigned:
    """:func:`seal_from`, waiting for :func:`broker.envelope.sign_all`."""
    unsigned, _ = envelope.seal_unsigned(
        sample_bytes(), **_sealing(source, destination, **overrides)
    )
    return unsigned


def _sealing(source: Party, destination: Party, **overrides: object) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "labels": SAMPLE_LABELS,
        "sender": source.code,
        "sender_key": source.signing,
        "recipient": destination.code,
        "recipient_key_id": destination.decryption.key_id,
        "recipient_key": destination.decryption.public_key(),
        "accord_id": AccordId("gb-rs"),
        "accord_digest": ACCORD_DIGEST,
        "now": NOW,
        "ttl": dt.timedelta(days=7),
    }
    arguments.update(overrides)
    return arguments


@pytest.fixture
def sealed(gb: Party, rs: Party) -> bytes:
    """One envelope from GB to RS, sealed at NOW."""
    return seal_from(gb, rs, message_id=MessageId("01900000-0000-7000-8000-000000000001"))


def seal_document(sender: Party, recipient: Party, document: dict[str, Any]) -> bytes:
    """Seal any JSON object, bypassing the message schema: for format-level properties."""
    unsigned = _seal_document(
        document,
        labels=SAMPLE_LABELS,
        sender=sender.code,
        sender_key=sender.signing,
        recipient=recipient.code,
        recipient_key_id=recipient.decryption.key_id,
        recipient_key=recipient.decryption.public_key(),
        accord_id=AccordId("gb-rs"),
        accord_digest=ACCORD_DIGEST,
        now=NOW,
        ttl=dt.timedelta(days=7),
    )
    return envelope.sign_all([unsigned])[0]


def open_document(data: bytes, registry: TinyRegistry, recipient: Party) -> OpenedEnvelope:
    """open() without the message schema: the envelope format's checks only."""
    return _open_with(
        data,
        registry=registry,
        recipient=recipient.code,
        decryption_keys=recipient.decryption_keys,
        now=NOW,
        max_age=envelope.DEFAULT_MAX_AGE,
        max_skew=envelope.DEFAULT_MAX_SKEW,
        validate=lambda *_: None,
    )
