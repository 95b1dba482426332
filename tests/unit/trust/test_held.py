"""HeldTrust: what a daemon trusts survives its restarts, and never goes back.

Each test builds a daemon's files (registry, trusted roots, accords) in a temporary directory
and "restarts" by building a new HeldTrust over the same files and trust state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pathlib

import pytest

from broker import cosign, crypto, errors
from broker.ids import AccordId, KeyId, PartnerCode
from broker.keys.testing import RegistryFixture, build_registry
from broker.policy import parse_accord
from broker.trust import HeldTrust, TrustStateFile
from broker.trust.acts import ActsFile, add_act

NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
GB, RS = PartnerCode("GB"), PartnerCode("RS")


def accord_text(version: int, *, expires: str = "2099-01-01") -> bytes:
    return f"""accord: gb-rs
title: Test accord
version: {version}
parties: [GB, RS]
effective: 2025-01-01
expires: {expires}
suite: classic
flows:
  - id: GB-RS-{version}
    from: GB
    to: RS
    tier: operational
    types: [network.report]
    purposes: [people-smuggling]
    max_classification: OFFICIAL
    max_tlp: AMBER
    handling_codes: [H0]
    categories:
      allow: [operational]
    handling:
      onward_sharing: never
      retention_days: 30
""".encode()


@dataclasses.dataclass
class Accords:
    """The configuration's ``accords`` section, as HeldTrust reads it."""

    folder: pathlib.Path
    unsafe_allow_unsigned: bool = False

    def files(self) -> list[pathlib.Path]:
        return sorted(self.folder.glob("*.yaml"))

    def watched(self) -> tuple[pathlib.Path, ...]:
        return (self.folder,)


@dataclasses.dataclass
class Daemon:
    """A daemon's files: registry, anchor, accords, store marker, trust state."""

    root: pathlib.Path
    fixture: RegistryFixture

    @property
    def key(self) -> crypto.SigningKey:
        return next(iter(self.fixture.gateways.values()))

    def write_accord(self, version: int, *, name: str = "gb-rs.yaml", **kw: str) -> None:
        data = accord_text(version, **kw)
        folder = self.root / "accords"
        (folder / name).write_bytes(data)
        accord = parse_accord(data, source=name)
        signatures = None
        for partner in (GB, RS):
            key = self.fixture.partners[partner].policy
            signatures = cosign.sign_accord(accord, signatures, key=key, partner=partner)
        assert signatures is not None
        cosign.write_signature_file(folder / f"{name}.sigs.json", signatures)

    def start(
        self,
        *,
        now: dt.datetime = NOW,
        has_run_before: bool | None = None,
        acts_confirmed_later: bool = False,
    ) -> HeldTrust:
        held = HeldTrust(
            registry_path=self.root / "registry.json",
            anchor_path=self.root / "trusted.json",
            accords=Accords(self.root / "accords"),
            state=TrustStateFile(self.root / "trust-state.json", key=self.key),
            has_run_before=(self.root / "store").exists()
            if has_run_before is None
            else has_run_before,
            now=now,
            acts_confirmed_later=acts_confirmed_later,
        )
        (self.root / "store").touch()  # the daemon's store: it has run here now
        return held


@pytest.fixture
def daemon(tmp_path: pathlib.Path) -> Daemon:
    fixture = build_registry(now=NOW, partners=("GB", "RS"), roots=1, threshold=1)
    (tmp_path / "registry.json").write_bytes(fixture.data)
    (tmp_path / "trusted.json").write_bytes(fixture.data)
    (tmp_path / "accords").mkdir()
    found = Daemon(tmp_path, fixture)
    found.write_accord(1)
    return found


def version_held(held: HeldTrust) -> int | None:
    held.read_accords(now=NOW)
    accord = held.book(NOW).for_pair(GB, RS)
    return None if accord is None else accord.version


def test_the_first_start_trusts_the_anchor_and_writes_a_signed_state(daemon: Daemon) -> None:
    """No state yet, no store: trust on first use; the state names registry and floor."""
    held = daemon.start()
    assert version_held(held) == 1
    memory = TrustStateFile(daemon.root / "trust-state.json", key=daemon.key).load()
    assert memory is not None
    assert memory.registry == daemon.fixture.data
    assert memory.floors == {AccordId("gb-rs"): 1}


def test_an_older_accord_is_refused_after_a_restart(daemon: Daemon) -> None:
    """Version 2 was in force; after a restart with only version 1 on file (still signed,
    unexpired), version 1 never decides: the pair has no accord until version 2 is back."""
    daemon.write_accord(2)
    assert version_held(daemon.start()) == 2
    daemon.write_accord(1)
    restarted = daemon.start()
    reading = restarted.read_accords(now=NOW)
    assert any("rollback refused" in r.reason for r in reading.refusals)
    assert version_held(restarted) is None


def test_an_older_registry_is_refused_after_a_restart(daemon: Daemon) -> None:
    """Registry version 2 (revoking GB's key) was adopted; restarted with version 1 back in
    the file, the daemon keeps version 2: the revocation stands."""
    held = daemon.start()
    draft = daemon.fixture.edit()
    draft.revoke(partner=GB, key_id=daemon.fixture.partners[GB].signing_key_id, at=NOW, reason="x")
    _, newer = daemon.fixture.resign(draft, now=NOW)
    (daemon.root / "registry.json").write_bytes(newer)
    assert held.update_registry(now=NOW).adopted
    (daemon.root / "registry.json").write_bytes(daemon.fixture.data)
    restarted = daemon.start()
    assert restarted.registry.version == 2
    assert restarted.start_refusal is not None
    assert "rollback refused" in restarted.start_refusal


def test_a_daemon_that_ran_before_refuses_to_start_without_its_state(daemon: Daemon) -> None:
    """Deleting the state must not be a way to forget: refused, naming the way back."""
    daemon.start()
    (daemon.root / "trust-state.json").unlink()
    with pytest.raises(errors.RegistryError, match="broker trust reset"):
        daemon.start()
    assert version_held(daemon.start(has_run_before=False)) == 1


def test_a_state_changed_at_rest_does_not_verify(daemon: Daemon) -> None:
    """A floor lowered by hand breaks the daemon's signature over the state."""
    daemon.write_accord(2)
    version_held(daemon.start())
    path = daemon.root / "trust-state.json"
    document = json.loads(path.read_bytes())
    document["state"]["floors"]["gb-rs"] = 1
    path.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True))
    with pytest.raises(errors.RegistryError, match="changed at rest"):
        daemon.start()


def test_an_expired_registry_is_held_but_not_usable(daemon: Daemon) -> None:
    """Past its expiry the registry is not usable (the daemons pause); a fresh one is."""
    later = daemon.fixture.registry.expires + dt.timedelta(seconds=1)
    held = daemon.start(now=later)
    assert not held.usable(later)
    draft = daemon.fixture.edit()
    draft.set_expires(later + dt.timedelta(days=30))
    _, fresh = daemon.fixture.resign(draft, now=NOW)
    (daemon.root / "registry.json").write_bytes(fresh)
    assert held.update_registry(now=later).adopted
    assert held.usable(later)


def test_an_accord_whose_signer_is_revoked_is_dropped_not_kept_as_last_good(
    daemon: Daemon,
) -> None:
    """GB's policy key is revoked: the accord file, unchanged, no longer verifies, and the
    version it gave is not kept as "last good" (that would keep a revoked signer's accord
    in force for ever)."""
    held = daemon.start()
    assert version_held(held) == 1
    draft = daemon.fixture.edit()
    policy_key = daemon.fixture.partners[GB].policy.public_key().key_id
    draft.revoke(partner=GB, key_id=KeyId(policy_key), at=NOW, reason="stolen")
    _, revoked = daemon.fixture.resign(draft, now=NOW)
    (daemon.root / "registry.json").write_bytes(revoked)
    update, reading = held.reload([daemon.root / "registry.json"], now=NOW)
    assert update.adopted
    assert version_held(held) is None
    [refusal] = reading.refusals
    assert "lacks a valid signature from a current policy key of GB" in refusal.reason
    assert "keeping" not in refusal.reason


def test_a_half_written_edit_keeps_the_last_good_version_while_it_verifies(
    daemon: Daemon,
) -> None:
    held = daemon.start()
    assert version_held(held) == 1
    (daemon.root / "accords" / "gb-rs.yaml").write_text("accord: [unfinished", encoding="utf-8")
    reading = held.read_accords(now=NOW)
    assert version_held(held) == 1
    assert any("keeping gb-rs v1" in r.reason for r in reading.refusals)


def test_an_act_not_yet_confirmed_is_new_again_after_a_crash(daemon: Daemon) -> None:
    """The gateway remembers an act only once it is audited: a crash in between finds it new
    at the next start (audited then), and it is in force in memory meanwhile."""
    held = daemon.start(acts_confirmed_later=True)
    assert version_held(held) == 1
    chain = add_act(
        ActsFile(accord="gb-rs"),
        kind="suspend",
        key=daemon.fixture.partners[RS].policy,
        partner=RS,
        parties=frozenset({GB, RS}),
        at=NOW,
        reason="review",
    )
    (daemon.root / "accords" / "gb-rs.acts.json").write_bytes(chain.to_bytes())
    assert [a.kind for a in held.read_accords(now=NOW).applied] == ["suspend"]
    accord = held.book(NOW).for_pair(GB, RS)
    assert accord is not None
    assert held.book(NOW).halt(accord) is not None
    # crash before the audit record: the next start applies it as new
    restarted = daemon.start(acts_confirmed_later=True)
    assert [a.kind for a in restarted.read_accords(now=NOW).applied] == ["suspend"]
    restarted.confirm_acts()
    again = daemon.start(acts_confirmed_later=True)
    assert again.read_accords(now=NOW).applied == ()
