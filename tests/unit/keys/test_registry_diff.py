"""`broker registry diff`: what signing the next version changes, grants of trust first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from broker.cli import cli
from broker.ids import KeyId, PartnerCode
from broker.keys import TrustEffect, diff_registries
from broker.keys.testing import build_registry

NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
RS = PartnerCode("RS")


def test_a_revocation_and_a_later_expiry_are_said_as_what_they_do(tmp_path: Path) -> None:
    fixture = build_registry(now=NOW, partners=("GB", "RS"), roots=1, threshold=1)
    draft = fixture.edit()
    stolen = KeyId(fixture.partners[RS].signing_key_id)
    draft.revoke(partner=RS, key_id=stolen, at=NOW, reason="laptop stolen")
    draft.set_expires(NOW + dt.timedelta(days=90))
    newer, data = fixture.resign(draft, now=NOW)
    changes = diff_registries(fixture.registry, newer)
    assert [(c.effect, c.text.split(" (")[0]) for c in changes] == [
        (TrustEffect.GRANTS, "expires 2027-03-05T12:00:00Z"),
        (TrustEffect.WITHDRAWS, f"signing key {stolen} of RS"),
    ]
    assert "revoked from 2026-12-05T12:00:00Z: laptop stolen" in changes[1].text

    old_file, new_file = tmp_path / "old.json", tmp_path / "new.json"
    old_file.write_bytes(fixture.data)
    new_file.write_bytes(data)
    shown = CliRunner().invoke(cli, ["registry", "diff", str(old_file), str(new_file)])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f"version {fixture.registry.version} -> {newer.version}: 2 changes"
    assert lines[1].startswith("  [grants] expires")
    assert lines[2].startswith("  [withdraws] signing key")
    assert lines[-1] == f"{new_file} verifies against {old_file} now"


def test_the_same_version_again_is_said_to_be_a_rollback() -> None:
    fixture = build_registry(now=NOW, partners=("GB",), roots=1, threshold=1)
    (rollback,) = diff_registries(fixture.registry, fixture.registry)
    assert "does not follow" in rollback.text
