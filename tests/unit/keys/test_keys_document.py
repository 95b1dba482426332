"""Canonical bytes, the editing rules of a registry draft, and key cards."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import crypto, errors, keys
from broker.ids import KeyId, PartnerCode
from broker.keys.testing import RegistryFixture

from .keys_support import NOW

RS = PartnerCode("RS")


def test_canonical_json_known_answer() -> None:
    """Sorted keys, no whitespace, raw UTF-8, integers in decimal (docs/KEYS.md)."""
    value = {"b": [3, {"z": None, "a": True}], "a": "Priština", "é": -1}
    expected = '{"a":"Priština","b":[3,{"a":true,"z":null}],"é":-1}'.encode()
    assert keys.canonical_json(value) == expected


def test_canonical_json_has_no_floats() -> None:
    """A float would have several spellings, so it is refused."""
    with pytest.raises(TypeError, match="no floats"):
        keys.canonical_json({"a": 1.5})


def test_signing_input_is_domain_separated_and_length_prefixed() -> None:
    """prefix || 0x00 || uint64 big-endian length || canonical bytes."""
    assert keys.signing_input(b"{}") == b"broker/partner-registry/v1\x00" + bytes(7) + b"\x02{}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_json_is_a_fixed_point(value: object) -> None:
    """Parsing canonical bytes and encoding again yields the same bytes."""
    once = keys.canonical_json(value)
    assert keys.canonical_json(json.loads(once)) == once


# -- versions and signatures ------------------------------------------------------------------


def test_the_first_edit_after_signing_bumps_the_version_once(reg: RegistryFixture) -> None:
    """One edit session, one new version; signatures over the old bytes are dropped."""
    draft = reg.edit()
    assert draft.version == 1
    assert len(draft.signers()) == 3
    draft.set_expires(NOW + dt.timedelta(days=40))
    assert (draft.version, draft.signers()) == (2, frozenset())
    draft.set_expires(NOW + dt.timedelta(days=50))
    assert draft.version == 2
    draft.sign(reg.roots[0])
    draft.set_expires(NOW + dt.timedelta(days=60))
    assert (draft.version, draft.signers()) == (3, frozenset())


def test_an_edit_that_changes_nothing_keeps_signatures(reg: RegistryFixture) -> None:
    """Re-applying the same expiry is not an edit."""
    draft = reg.edit()
    draft.set_expires(reg.registry.expires)
    assert (draft.version, len(draft.signers())) == (1, 3)


def test_signing_twice_with_one_key_keeps_one_signature(reg: RegistryFixture) -> None:
    """A root re-signing replaces its signature rather than adding a duplicate."""
    draft = reg.edit()
    draft.sign(reg.roots[0])
    document = json.loads(draft.to_bytes())
    assert len(document["signatures"]) == 3


def test_a_non_root_signature_is_kept_but_reported(reg: RegistryFixture) -> None:
    """Outgoing roots sign rotations, so any key may sign; sign() says whether it is a root."""
    draft = reg.edit()
    assert draft.sign(reg.roots[0]) is True
    assert draft.sign(reg.partners[RS].signing) is False


def test_revoking_again_later_is_refused(reg: RegistryFixture) -> None:
    """A revocation can be moved earlier, never later."""
    draft = reg.edit()
    key_id = reg.partners[RS].signing_key_id
    draft.revoke(partner=RS, key_id=key_id, at=NOW, reason="lost")
    with pytest.raises(errors.UsageError, match="already revoked"):
        draft.revoke(partner=RS, key_id=key_id, at=NOW + dt.timedelta(days=1), reason="again")
    draft.revoke(partner=RS, key_id=key_id, at=NOW - dt.timedelta(days=1), reason="earlier")


REVOKE_MISSES = {
    "unknown partner": (PartnerCode("ZZ"), "f" * 32, "not in the registry"),
    "key of another partner": (PartnerCode("GB"), None, "is not one of partner GB"),
    "unknown service key": (None, "f" * 32, "gateways or witnesses"),
}


@pytest.mark.parametrize(
    ("partner", "key_id", "reason"), REVOKE_MISSES.values(), ids=REVOKE_MISSES.keys()
)
def test_revoking_an_unknown_key_is_a_usage_error(
    reg: RegistryFixture, partner: PartnerCode | None, key_id: str | None, reason: str
) -> None:
    """Revocation names a key that is actually listed under that owner."""
    target = KeyId(key_id or reg.partners[RS].signing_key_id)
    with pytest.raises(errors.UsageError, match=reason):
        reg.edit().revoke(partner=partner, key_id=target, at=NOW, reason="x")


def test_gateway_keys_can_be_revoked(reg: RegistryFixture) -> None:
    """partner=None revokes a gateway or witness key."""
    gateway_id = next(iter(reg.gateways))
    draft = reg.edit()
    draft.revoke(partner=None, key_id=gateway_id, at=NOW, reason="host rebuilt")
    registry, _ = reg.resign(draft, now=NOW)
    with pytest.raises(errors.KeyTrustError, match=r"revoked at .*host rebuilt"):
        registry.gateway_key(gateway_id, at=NOW)


def test_a_merged_card_cannot_unrevoke(reg: RegistryFixture) -> None:
    """Re-importing a partner's card keeps the registry's revocations."""
    card, _ = keys.generate_partner_keys(
        PartnerCode("ME"), name="Montenegro", suite=crypto.Suite.CLASSIC,
        not_before=NOW, valid_for=dt.timedelta(days=10),
    )  # fmt: skip
    draft = reg.edit()
    assert draft.add_partner(card) == "added"
    key_id = json.loads(card.to_bytes())["signing_keys"][0]["key_id"]
    draft.revoke(partner=PartnerCode("ME"), key_id=KeyId(key_id), at=NOW, reason="lost")
    assert draft.add_partner(card) == "updated"
    registry, _ = reg.resign(draft, now=NOW)
    with pytest.raises(errors.KeyTrustError, match="revoked"):
        registry.signing_key(PartnerCode("ME"), KeyId(key_id), at=NOW)


# -- cards --------------------------------------------------------------------------------------


def test_partner_cards_round_trip_and_hold_no_secrets() -> None:
    """A card parses back to the same bytes and contains only public material."""
    card, private = keys.generate_partner_keys(
        RS,
        name="Serbia",
        suite=crypto.Suite.CLASSIC,
        not_before=NOW,
        valid_for=dt.timedelta(days=1),
    )
    data = card.to_bytes()
    assert keys.PartnerCard.from_bytes(data).to_bytes() == data
    assert b"PRIVATE" not in data
    assert private.signing_key_id in data.decode()
    assert "signing=" not in repr(private)


CARD_DEFECTS = {
    "not a card": (b"[]", "partner card is malformed"),
    "window reversed": (
        json.dumps({"type": "partner-card", "spec_version": 1, "code": "RS", "name": "Serbia",
                    "suite": "classic", "encryption_keys": [], "policy_keys": [],
                    "signing_keys": [{"key_id": "0" * 32, "public_key": "AA==",
                                      "not_before": "2027-01-01T00:00:00Z",
                                      "not_after": "2026-01-01T00:00:00Z"}]}).encode(),
        "not_before must be earlier than not_after",
    ),
    "lower-case partner code": (
        json.dumps({"type": "partner-card", "spec_version": 1, "code": "rs", "name": "Serbia",
                    "suite": "classic", "signing_keys": [], "encryption_keys": [],
                    "policy_keys": []}).encode(),
        "code",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("data", "reason"), CARD_DEFECTS.values(), ids=CARD_DEFECTS.keys())
def test_bad_partner_cards_are_refused(data: bytes, reason: str) -> None:
    """Card defects are RegistryErrors naming the field."""
    with pytest.raises(errors.RegistryError, match=reason):
        keys.PartnerCard.from_bytes(data)


def test_a_root_card_carries_no_window_and_a_gateway_card_needs_one() -> None:
    """Root keys live until rotated; gateway and witness keys expire."""
    root, _ = keys.generate_service_key("root", name="r", suite=crypto.Suite.CLASSIC)
    assert b"not_after" not in root.to_bytes()
    with pytest.raises(errors.UsageError, match="needs not_before"):
        keys.generate_service_key("gateway", name="g", suite=crypto.Suite.CLASSIC)


def test_rotation_never_lengthens_an_old_key() -> None:
    """Keys that already end before the overlap keep their earlier end."""
    card, _ = keys.generate_partner_keys(
        RS,
        name="Serbia",
        suite=crypto.Suite.CLASSIC,
        not_before=NOW,
        valid_for=dt.timedelta(days=2),
    )
    rotated, _ = keys.rotate_partner_keys(
        card, now=NOW, overlap=dt.timedelta(days=30), valid_for=dt.timedelta(days=365)
    )
    old = json.loads(rotated.to_bytes())["signing_keys"][0]
    assert old["not_after"] == "2026-11-30T12:00:00Z"
    with pytest.raises(errors.UsageError, match="overlap must be positive"):
        keys.rotate_partner_keys(
            card, now=NOW, overlap=dt.timedelta(0), valid_for=dt.timedelta(days=1)
        )
