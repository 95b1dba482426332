"""TrustStateFile: only the daemon's own key, or a previous key its operator vouches for,
signs the memory it starts from."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest

from broker import errors
from broker.ids import AccordId, KeyId
from broker.keys.testing import RegistryFixture, build_registry
from broker.trust import TrustStateFile
from broker.trust.state import TrustMemory

NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)


@pytest.fixture
def fixture() -> RegistryFixture:
    # two gateway keys for the same holder: the registry lists both, as during a rotation
    return build_registry(now=NOW, partners=("GB", "RS"), roots=1, threshold=1, gateways=2)


def memory(registry: bytes, floor: int = 3) -> TrustMemory:
    return TrustMemory(registry=registry, floors={AccordId("gb-rs"): floor}, acts={})


def test_a_state_signed_by_another_key_is_refused_even_when_its_registry_lists_that_key(
    fixture: RegistryFixture, tmp_path: pathlib.Path
) -> None:
    """Whoever can write the file holds some key of their own: a registry inside the file that
    names that key for the daemon's holder must not make it acceptable (the file would vouch
    for itself)."""
    own, other = fixture.gateways.values()
    path = tmp_path / "trust-state.json"
    TrustStateFile(path, key=other).save(memory(fixture.data, floor=1))
    with pytest.raises(errors.RegistryError, match="not this daemon's key"):
        TrustStateFile(path, key=own).load()


def test_a_previous_key_the_operator_names_is_accepted_and_the_file_re_signed(
    fixture: RegistryFixture, tmp_path: pathlib.Path
) -> None:
    previous, new = fixture.gateways.values()
    path = tmp_path / "trust-state.json"
    TrustStateFile(path, key=previous).save(memory(fixture.data))
    rotated = TrustStateFile(path, key=new, previous=previous.public_key())
    held = rotated.load()
    assert held is not None
    assert held.floors == {AccordId("gb-rs"): 3}
    rotated.save(held)
    # signed by the new key now: no previous key needed, and the old key no longer signs it
    assert TrustStateFile(path, key=new).load() == held
    with pytest.raises(errors.RegistryError, match="not this daemon's key"):
        TrustStateFile(path, key=previous).load()


def test_a_previous_key_the_held_registry_revoked_is_refused(
    fixture: RegistryFixture, tmp_path: pathlib.Path
) -> None:
    """A revoked key may be in other hands: a state it signed proves nothing."""
    previous, new = fixture.gateways.values()
    draft = fixture.edit()
    draft.revoke(partner=None, key_id=KeyId(previous.public_key().key_id), at=NOW, reason="lost")
    _, revoked = fixture.resign(draft, now=NOW)
    path = tmp_path / "trust-state.json"
    TrustStateFile(path, key=previous).save(memory(revoked))
    with pytest.raises(errors.RegistryError, match="revoked"):
        TrustStateFile(path, key=new, previous=previous.public_key()).load()
