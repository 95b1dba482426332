"""Per-key suites: a partner holds classic and pq-hybrid keys at once, and each lookup picks
the keys of the suite it asks for (the accord's), never one of another."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from broker import crypto, errors, keys
from broker.ids import PartnerCode
from broker.keys.testing import RegistryFixture, make_registry

from .keys_support import NOW, with_signed_field

RS = PartnerCode("RS")
CLASSIC, HYBRID = crypto.Suite.CLASSIC, crypto.Suite.PQ_HYBRID
YEAR = dt.timedelta(days=365)


def _classic_card() -> tuple[keys.PartnerCard, keys.PartnerKeys]:
    return keys.generate_partner_keys(
        RS, name="Serbia", suite=CLASSIC, not_before=NOW - dt.timedelta(days=1), valid_for=YEAR
    )


def test_rotating_into_another_suite_adds_keys_and_retires_none() -> None:
    """`keys rotate --suite pq-hybrid` on a classic card: hybrid keys beside the classic ones,
    which keep their end (they still serve the accords that stay classic)."""
    card, _ = _classic_card()
    rotated, new = keys.rotate_partner_keys(
        card, now=NOW, overlap=dt.timedelta(days=30), valid_for=YEAR, suite=HYBRID
    )
    assert new.signing.suite is HYBRID
    assert new.decryption.public_key().suite is HYBRID
    document = json.loads(rotated.to_bytes())
    assert document["suite"] == "classic"
    for role in ("signing_keys", "encryption_keys"):
        old, added = document[role]
        assert "suite" not in old  # the card's own suite
        assert old["not_after"] == json.loads(card.to_bytes())[role][0]["not_after"]
        assert added["suite"] == "pq-hybrid"
    # rotating the classic keys later retires the classic ones only
    again, _ = keys.rotate_partner_keys(
        rotated, now=NOW, overlap=dt.timedelta(days=30), valid_for=YEAR
    )
    signing = json.loads(again.to_bytes())["signing_keys"]
    assert signing[0]["not_after"] == "2026-12-28T12:00:00Z"  # classic: retired after overlap
    assert signing[1]["not_after"] == document["signing_keys"][1]["not_after"]  # hybrid: kept


def test_the_registry_lists_each_key_with_its_suite_and_picks_by_suite(
    reg: RegistryFixture,
) -> None:
    """A hybrid card merged into a classic partner: each lookup asks for a suite."""
    card, _ = keys.rotate_partner_keys(
        _classic_card()[0], now=NOW, overlap=YEAR, valid_for=YEAR, suite=HYBRID
    )
    draft = reg.edit()
    assert draft.add_partner(card) == "updated"
    registry, data = reg.resign(draft, now=NOW)
    listed = next(p for p in json.loads(data)["signed"]["partners"] if p["code"] == "RS")
    assert listed["suite"] == "classic"
    assert [e.get("suite") for e in listed["encryption_keys"]] == [None, None, "pq-hybrid"]
    assert registry.suites_of(RS, at=NOW) == {CLASSIC, HYBRID}
    _, hybrid = registry.current_encryption_key(RS, at=NOW, suite=HYBRID)
    _, classic = registry.current_encryption_key(RS, at=NOW, suite=CLASSIC)
    assert hybrid.suite is HYBRID
    assert classic.suite is CLASSIC
    records = {r.key_id: r.suite for r in registry.key_records() if r.owner == "RS"}
    assert sorted(records.values()) == [CLASSIC] * 6 + [HYBRID] * 2


def test_a_fresh_card_of_another_suite_merges_key_by_key(reg: RegistryFixture) -> None:
    """`keys generate --suite pq-hybrid` for a partner listed as classic: its keys enter as
    pq-hybrid keys of that partner (the partner's own suite does not change)."""
    card, _ = keys.generate_partner_keys(
        RS, name="Serbia", suite=HYBRID, not_before=NOW, valid_for=YEAR
    )
    draft = reg.edit()
    draft.add_partner(card)
    registry, data = reg.resign(draft, now=NOW + dt.timedelta(seconds=1))
    listed = next(p for p in json.loads(data)["signed"]["partners"] if p["code"] == "RS")
    assert [e.get("suite") for e in listed["policy_keys"]] == [None, "pq-hybrid"]
    assert registry.suite_of(RS) is CLASSIC


def test_a_partner_without_keys_of_a_suite_has_none_to_give() -> None:
    """Asking for a suite the partner holds no key of is a KeyTrustError naming the suite."""
    registry = make_registry(now=NOW, partners=("GB", "RS"))[0]
    with pytest.raises(errors.KeyTrustError, match="RS has no pq-hybrid encryption key"):
        registry.current_encryption_key(RS, at=NOW, suite=HYBRID)
    assert registry.suites_of(RS, at=NOW) == {CLASSIC}


def test_a_key_relabelled_with_another_suite_is_refused(reg: RegistryFixture) -> None:
    """Naming a classic key pq-hybrid (or the reverse) cannot make it parse as the other:
    the registry refuses the document rather than downgrade or confuse a lookup."""
    signed = json.loads(reg.data)["signed"]
    partner = next(p for p in signed["partners"] if p["code"] == "RS")
    partner["encryption_keys"][0]["suite"] = "pq-hybrid"
    data = with_signed_field(reg.data, "partners", signed["partners"])
    # read without its (now broken) signatures, as an editor or a signing root would
    with pytest.raises(errors.RegistryError, match="is refused"):
        keys.RegistryDraft.from_bytes(data)


def test_a_card_key_with_the_wrong_suite_is_refused_at_the_card() -> None:
    """A card whose hybrid-labelled entry holds a classic key never reaches the registry."""
    card, _ = _classic_card()
    document = json.loads(card.to_bytes())
    document["signing_keys"][0]["suite"] = "pq-hybrid"
    with pytest.raises(errors.RegistryError, match=r"public key .* is refused"):
        keys.PartnerCard.from_bytes(json.dumps(document).encode())
    assert base64.b64decode(document["signing_keys"][0]["public_key"])  # still a real key
