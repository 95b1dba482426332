"""Registry lookups: validity windows, rotation overlap, revocation boundaries, unknown keys.

A key is usable at ``at`` when ``not_before <= at < not_after`` and ``at < revoked_at``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import crypto, errors, keys
from broker.ids import KeyId, PartnerCode
from broker.keys.testing import build_registry

from .keys_support import NOW, SECOND

DAY = dt.timedelta(days=1)
START = NOW - DAY  # build_registry makes keys valid from one day before NOW
ROTATE_AT = NOW
OVERLAP = 7 * DAY
REVOKED_AT = NOW + 3 * DAY
ME, RS, GB = PartnerCode("ME"), PartnerCode("RS"), PartnerCode("GB")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A registry where ME rotated at ROTATE_AT and RS's signing key was revoked at REVOKED_AT."""

    registry: keys.Registry
    old: keys.PartnerKeys
    new: keys.RotatedKeys
    rs: keys.PartnerKeys
    gateway_id: KeyId
    witness_id: KeyId


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    reg = build_registry(now=NOW)
    card, old = keys.generate_partner_keys(
        ME, name="Montenegro", suite=crypto.Suite.CLASSIC, not_before=START, valid_for=365 * DAY
    )
    rotated, new = keys.rotate_partner_keys(
        card, now=ROTATE_AT, overlap=OVERLAP, valid_for=365 * DAY
    )
    draft = reg.edit()
    draft.add_partner(rotated)
    rs = reg.partners[RS]
    draft.revoke(partner=RS, key_id=rs.signing_key_id, at=REVOKED_AT, reason="device lost")
    registry, _ = reg.resign(draft, now=NOW)
    return Scenario(registry, old, new, rs, next(iter(reg.gateways)), next(iter(reg.witnesses)))


# -- rotation overlap --------------------------------------------------------------------------

OVERLAP_CASES = {
    "just before the rotation: old only": (ROTATE_AT - SECOND, True, False),
    "at the rotation: both": (ROTATE_AT, True, True),
    "end of overlap minus one second: both": (ROTATE_AT + OVERLAP - SECOND, True, True),
    "end of overlap: new only": (ROTATE_AT + OVERLAP, False, True),
}


@pytest.mark.parametrize(
    ("at", "old_ok", "new_ok"), OVERLAP_CASES.values(), ids=OVERLAP_CASES.keys()
)
def test_rotation_overlap_resolves_both_generations(
    scenario: Scenario, at: dt.datetime, old_ok: bool, new_ok: bool
) -> None:
    """During the overlap both keys resolve; the old one stops at its (shortened) not_after."""
    registry = scenario.registry
    lookups: list[tuple[KeyId, Callable[..., crypto.VerifyKey | crypto.EncryptionKey], bool]] = [
        (scenario.old.signing_key_id, registry.signing_key, old_ok),
        (scenario.old.encryption_key_id, registry.encryption_key, old_ok),
        (scenario.new.signing_key_id, registry.signing_key, new_ok),
        (scenario.new.encryption_key_id, registry.encryption_key, new_ok),
    ]
    for key_id, lookup, ok in lookups:
        if ok:
            assert lookup(ME, key_id, at=at).key_id == key_id
        else:
            with pytest.raises(errors.KeyTrustError, match=f"key {key_id} of ME"):
                lookup(ME, key_id, at=at)


@pytest.mark.parametrize(
    ("at", "expect"),
    [(ROTATE_AT - SECOND, "old"), (ROTATE_AT, "new"), (ROTATE_AT + OVERLAP, "new")],
    ids=["before rotation", "in the overlap", "after the overlap"],
)
def test_current_encryption_key_is_the_newest_valid_one(
    scenario: Scenario, at: dt.datetime, expect: str
) -> None:
    """Senders seal to the newest key as soon as it is valid, even while the old one still is."""
    wanted = scenario.old if expect == "old" else scenario.new
    key_id, key = scenario.registry.current_encryption_key(ME, at=at)
    assert key_id == wanted.encryption_key_id
    assert key.key_id == key_id


def test_policy_keys_are_not_rotated_with_signing_keys(scenario: Scenario) -> None:
    """The policy-signing key generated first is still the one returned after a rotation."""
    found = scenario.registry.policy_keys(ME, at=ROTATE_AT + OVERLAP)
    assert [key.key_id for key in found] == [scenario.old.policy_key_id]


# -- revocation boundaries ----------------------------------------------------------------------


def test_revocation_applies_from_its_instant_on(scenario: Scenario) -> None:
    """Just before revoked_at the key resolves (auditors); at and after it, it is refused."""
    key_id = scenario.rs.signing_key_id
    assert scenario.registry.signing_key(RS, key_id, at=REVOKED_AT - SECOND).key_id == key_id
    message = f"signing key {key_id} of RS revoked at 2026-12-01T12:00:00Z: device lost"
    for at in (REVOKED_AT, REVOKED_AT + SECOND, REVOKED_AT + 100 * DAY):
        with pytest.raises(errors.KeyTrustError) as caught:
            scenario.registry.signing_key(RS, key_id, at=at)
        assert str(caught.value) == message


def test_revoking_one_key_leaves_the_partners_other_keys_alone(scenario: Scenario) -> None:
    """RS's encryption key still resolves after its signing key was revoked."""
    key_id = scenario.rs.encryption_key_id
    assert scenario.registry.encryption_key(RS, key_id, at=REVOKED_AT + DAY).key_id == key_id


@given(offset=st.integers(min_value=-3 * 86400, max_value=400 * 86400))
def test_a_lookup_succeeds_exactly_when_the_record_says_valid(
    scenario: Scenario, offset: int
) -> None:
    """For any time, signing_key agrees with the key's recorded window and revocation."""
    at = START + offset * SECOND
    for key_id, partner in ((scenario.rs.signing_key_id, RS), (scenario.old.signing_key_id, ME)):
        record = next(r for r in scenario.registry.key_records() if r.key_id == key_id)
        expected = record.not_before <= at < record.not_after and (
            record.revoked_at is None or at < record.revoked_at
        )
        assert (record.status_at(at) == "valid") is expected
        try:
            scenario.registry.signing_key(partner, key_id, at=at)
        except errors.KeyTrustError:
            assert not expected
        else:
            assert expected


# -- unknowns and wrong roles -----------------------------------------------------------------


def test_keys_are_not_valid_before_not_before(scenario: Scenario) -> None:
    """A key is refused before its window opens."""
    with pytest.raises(errors.KeyTrustError, match="is not valid before 2026-11-27T12:00:00Z"):
        scenario.registry.signing_key(RS, scenario.rs.signing_key_id, at=START - SECOND)


Lookup = Callable[[Scenario], object]

UNKNOWN_CASES: dict[str, tuple[Lookup, str]] = {
    "unknown partner": (
        lambda s: s.registry.signing_key(PartnerCode("ZZ"), s.rs.signing_key_id, at=NOW),
        "unknown partner",
    ),
    "unknown key id": (
        lambda s: s.registry.signing_key(RS, KeyId("f" * 32), at=NOW),
        "no signing key",
    ),
    "encryption id asked as signing": (
        lambda s: s.registry.signing_key(RS, s.rs.encryption_key_id, at=NOW),
        "no signing key",
    ),
    "signing id asked as encryption": (
        lambda s: s.registry.encryption_key(RS, s.rs.signing_key_id, at=NOW),
        "no encryption key",
    ),
    "another partner's key": (
        lambda s: s.registry.signing_key(GB, s.rs.signing_key_id, at=NOW),
        "no signing key",
    ),
    "gateway id asked as witness": (
        lambda s: s.registry.witness_key(s.gateway_id, at=NOW),
        "no witness key",
    ),
    "witness id asked as gateway": (
        lambda s: s.registry.gateway_key(s.witness_id, at=NOW),
        "no gateway key",
    ),
    "policy keys of an unknown partner": (
        lambda s: s.registry.policy_keys(PartnerCode("ZZ"), at=NOW),
        "unknown partner",
    ),
    "no encryption key valid yet": (
        lambda s: s.registry.current_encryption_key(RS, at=START - DAY),
        "no encryption key valid",
    ),
    "no policy key valid any more": (
        lambda s: s.registry.policy_keys(RS, at=NOW + 400 * DAY),
        "no policy-signing key valid",
    ),
}


@pytest.mark.parametrize(("lookup", "reason"), UNKNOWN_CASES.values(), ids=UNKNOWN_CASES.keys())
def test_lookups_refuse_what_the_registry_does_not_vouch_for(
    scenario: Scenario, lookup: Lookup, reason: str
) -> None:
    """Every miss is a KeyTrustError with the reason, never a KeyError."""
    with pytest.raises(errors.KeyTrustError, match=reason):
        lookup(scenario)


def test_gateway_and_witness_keys_resolve_by_id(scenario: Scenario) -> None:
    """Registered gateway and witness keys resolve within their window."""
    assert scenario.registry.gateway_key(scenario.gateway_id, at=NOW).key_id == scenario.gateway_id
    assert scenario.registry.witness_key(scenario.witness_id, at=NOW).key_id == scenario.witness_id


def test_registry_describes_itself(scenario: Scenario) -> None:
    """Partners, suites, names, version and expiry are what was signed."""
    registry = scenario.registry
    assert registry.partners == {PartnerCode(c) for c in ("GB", "RS", "MK", "XK", "TR", "AL", "ME")}
    assert registry.suite_of(ME) is crypto.Suite.CLASSIC
    assert registry.name_of(ME) == "Montenegro"
    assert registry.version == 2
    assert registry.expires == NOW + 30 * DAY
    with pytest.raises(errors.KeyTrustError, match="unknown partner"):
        registry.suite_of(PartnerCode("ZZ"))


def test_a_naive_lookup_time_is_a_usage_error(scenario: Scenario) -> None:
    """Times without a timezone are refused rather than guessed."""
    with pytest.raises(errors.UsageError, match="timezone-aware"):
        scenario.registry.signing_key(RS, scenario.rs.signing_key_id, at=NOW.replace(tzinfo=None))


def test_a_registry_cannot_be_built_from_unverified_bytes(scenario: Scenario) -> None:
    """Only verify_registry makes a Registry."""
    with pytest.raises(errors.RegistryError, match="only built by verify_registry"):
        keys.Registry(scenario.registry.signed_bytes)
