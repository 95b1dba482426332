"""The key and registry ceremony end to end through the command line (CliRunner, real files)."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from broker import errors
from broker.cli import cli

PARTNERS = ("GB", "RS", "MK", "XK", "TR", "AL")
ENV = {"BROKER_KEY_PASSPHRASE": "a long enough test passphrase"}


def _run(runner: CliRunner, *args: str | Path, code: int = 0) -> Result:
    result = runner.invoke(cli, [str(a) for a in args], env=ENV, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def ceremony(tmp_path: Path) -> tuple[CliRunner, Path, list[Path]]:
    """Three roots, six partners and a gateway; registry initialised with threshold 2, unsigned."""
    runner = CliRunner()
    for i in range(3):
        _run(runner, "keys", "generate-root", "--out", tmp_path / "roots", "--name", f"root-{i}")
    _run(runner, "keys", "generate-root", "--out", tmp_path / "gw", "--kind", "gateway")
    for partner in PARTNERS:
        _run(runner, "keys", "generate", "--partner", partner, "--out", tmp_path / partner)
    root_cards = sorted((tmp_path / "roots").glob("*.card.json"))
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    registry = tmp_path / "registry.json"
    card_args = [arg for card in root_cards for arg in ("--root-card", str(card))]
    _run(
        runner,
        "registry",
        "init",
        "--out",
        registry,
        *card_args,
        "--threshold",
        "2",
        "--expires",
        expires,
    )
    for partner in PARTNERS:
        _run(
            runner, "registry", "add-partner", registry, tmp_path / partner / f"{partner}.card.json"
        )
    (gateway_card,) = (tmp_path / "gw").glob("*.card.json")
    _run(runner, "registry", "add-key", registry, gateway_card)
    return runner, tmp_path, sorted((tmp_path / "roots").glob("*.pem"))


def test_private_key_files_are_owner_only(ceremony: tuple[CliRunner, Path, list[Path]]) -> None:
    """Every generated private key is mode 0600; cards are public and name no secret."""
    _, tmp_path, _ = ceremony
    pems = list(tmp_path.rglob("*.pem"))
    assert len(pems) == 3 + 1 + 3 * len(PARTNERS)
    assert {stat.S_IMODE(p.stat().st_mode) for p in pems} == {0o600}
    assert all(b"PRIVATE" not in c.read_bytes() for c in tmp_path.rglob("*.card.json"))


def test_two_of_three_roots_make_a_valid_registry_and_one_does_not(
    ceremony: tuple[CliRunner, Path, list[Path]],
) -> None:
    """With one signature verify fails with the count; with two it prints a one-line summary."""
    runner, tmp_path, roots = ceremony
    registry = tmp_path / "registry.json"
    _run(runner, "registry", "sign", registry, "--key", roots[0])
    failed = _run(runner, "registry", "verify", registry, code=errors.RegistryError.exit_code)
    assert "error: registry is signed by 1 of the 2 required distinct keys" in failed.output
    _run(runner, "registry", "sign", registry, "--key", roots[1])
    ok = _run(runner, "registry", "verify", registry)
    assert ok.output.startswith("ok: registry version 1, 6 partners, signed by 2 of 3 roots")
    assert len(ok.output.strip().splitlines()) == 1
    shown = _run(runner, "registry", "show", registry)
    assert "verifies now" in shown.output
    assert all(partner in shown.output for partner in PARTNERS)


def test_rotation_and_revocation_make_version_two_and_rollback_is_refused(
    ceremony: tuple[CliRunner, Path, list[Path]],
) -> None:
    """rotate + add-partner + revoke is one edit session: version 2, verified against version 1."""
    runner, tmp_path, roots = ceremony
    registry, v1 = tmp_path / "registry.json", tmp_path / "v1.json"
    for root in roots[:2]:
        _run(runner, "registry", "sign", registry, "--key", root)
    v1.write_bytes(registry.read_bytes())
    rotated = _run(runner, "keys", "rotate", "--partner", "RS", "--dir", tmp_path / "RS")
    assert "new signing key" in rotated.output
    _run(runner, "registry", "add-partner", registry, tmp_path / "RS" / "RS.card.json")
    gb_signing = json.loads((tmp_path / "GB" / "GB.card.json").read_bytes())["signing_keys"][0]
    revoke_at = "2026-12-01T00:00:00Z"
    args = ["--partner", "GB", "--key-id", gb_signing["key_id"], "--at", revoke_at]
    _run(runner, "registry", "revoke", registry, *args, "--reason", "laptop lost")
    for root in roots[1:]:
        _run(runner, "registry", "sign", registry, "--key", root)
    ok = _run(runner, "registry", "verify", registry, "--trusted", v1)
    assert ok.output.startswith("ok: registry version 2")
    rollback = _run(runner, "registry", "verify", v1, "--trusted", registry, code=9)
    assert "rollback refused" in rollback.output
    shown = _run(runner, "registry", "show", registry)
    assert "laptop lost" in shown.output
    document = json.loads(registry.read_bytes())["signed"]
    rs = next(p for p in document["partners"] if p["code"] == "RS")
    assert len(rs["signing_keys"]) == 2
    assert len(rs["encryption_keys"]) == 2


def test_rotating_into_pq_hybrid_keeps_the_classic_keys_in_the_registry(
    ceremony: tuple[CliRunner, Path, list[Path]],
) -> None:
    """`keys rotate --suite pq-hybrid`: RS gains hybrid keys and keeps its classic ones; the
    signed registry lists both, and `registry show` shows each key's suite."""
    runner, tmp_path, roots = ceremony
    registry = tmp_path / "registry.json"
    rotated = _run(
        runner, "keys", "rotate", "--partner", "RS", "--dir", tmp_path / "RS",
        "--suite", "pq-hybrid",
    )  # fmt: skip
    assert "new signing key" in rotated.output
    assert "(pq-hybrid)" in rotated.output
    assert "the classic keys stay as they are" in rotated.output
    _run(runner, "registry", "add-partner", registry, tmp_path / "RS" / "RS.card.json")
    for root in roots[:2]:
        _run(runner, "registry", "sign", registry, "--key", root)
    _run(runner, "registry", "verify", registry)
    rs = next(
        p for p in json.loads(registry.read_bytes())["signed"]["partners"] if p["code"] == "RS"
    )
    assert rs["suite"] == "classic"
    for role in ("signing_keys", "encryption_keys"):
        classic, hybrid = rs[role]
        assert "suite" not in classic
        assert hybrid["suite"] == "pq-hybrid"
        assert classic["not_after"] > hybrid["not_before"]  # still valid beside the new ones
    shown = _run(runner, "registry", "show", registry).output
    assert shown.count("pq-hybrid") == 2


def test_a_partners_grading_scheme_goes_from_its_card_into_the_registry(
    ceremony: tuple[CliRunner, Path, list[Path]],
) -> None:
    """`keys generate --evaluation-scheme` names it on the card; the registry lists it."""
    runner, tmp_path, _ = ceremony
    registry = tmp_path / "registry.json"
    _run(
        runner, "keys", "generate", "--partner", "FR", "--out", tmp_path / "FR",
        "--evaluation-scheme", "europol-4x4",
    )  # fmt: skip
    card = json.loads((tmp_path / "FR" / "FR.card.json").read_bytes())
    assert card["evaluation_scheme"] == "europol-4x4"
    _run(runner, "registry", "add-partner", registry, tmp_path / "FR" / "FR.card.json")
    assert "FR reads gradings as europol-4x4" in _run(runner, "registry", "show", registry).output


def test_a_key_file_readable_by_others_is_refused_by_sign(
    ceremony: tuple[CliRunner, Path, list[Path]],
) -> None:
    """sign refuses a 0644 key with a KeyTrustError line and exit code 8."""
    runner, tmp_path, roots = ceremony
    roots[0].chmod(0o644)
    result = _run(runner, "registry", "sign", tmp_path / "registry.json", "--key", roots[0], code=8)
    assert "is accessible to group or others (mode 0644)" in result.output


def test_a_wrong_passphrase_from_a_file_is_refused(
    ceremony: tuple[CliRunner, Path, list[Path]],
) -> None:
    """--passphrase-file is read, and a wrong passphrase is one clean line, not a traceback."""
    runner, tmp_path, roots = ceremony
    passphrase = tmp_path / "wrong-passphrase"
    passphrase.write_text("definitely not the passphrase\n")
    args: list[str | Path] = ["--key", roots[0], "--passphrase-file", passphrase]
    result = _run(runner, "registry", "sign", tmp_path / "registry.json", *args, code=8)
    assert "wrong passphrase" in result.output
    assert "Traceback" not in result.output


def test_generate_refuses_to_replace_an_existing_partner(
    ceremony: tuple[CliRunner, Path, list[Path]],
) -> None:
    """Generating again over a partner's directory is a usage error pointing at rotate."""
    runner, tmp_path, _ = ceremony
    result = _run(runner, "keys", "generate", "--partner", "RS", "--out", tmp_path / "RS", code=2)
    assert "use `broker keys rotate`" in result.output


def test_a_bad_timestamp_is_a_usage_error(tmp_path: Path) -> None:
    """Timestamps need a timezone; click reports the bad value."""
    runner = CliRunner()
    card = tmp_path / "card.json"
    card.write_text("{}")
    args: list[str | Path] = ["--root-card", card, "--threshold", "1"]
    args += ["--expires", "2027-01-01T00:00:00"]
    result = _run(runner, "registry", "init", "--out", tmp_path / "r.json", *args, code=2)
    assert "timezone" in result.output


def test_a_key_that_is_not_a_root_cannot_sign_the_registry(
    ceremony: tuple[CliRunner, Path, list[Path]],
) -> None:
    """A partner's policy key offered as a root: refused with exit 9, the file untouched; the
    same key is no outgoing root of a --trusted registry either."""
    runner, tmp_path, roots = ceremony
    registry = tmp_path / "registry.json"
    for root in roots[:2]:
        _run(runner, "registry", "sign", registry, "--key", root)
    before = registry.read_bytes()
    (policy_key,) = (tmp_path / "GB").glob("GB-policy-*.pem")
    refused = _run(runner, "registry", "sign", registry, "--key", policy_key, code=9)
    assert "is not one of" in refused.output
    assert "its signature would not count" in refused.output
    assert registry.read_bytes() == before
    trusted = tmp_path / "v1.json"
    trusted.write_bytes(before)
    args: list[str | Path] = ["--key", policy_key, "--trusted", trusted]
    outgoing = _run(runner, "registry", "sign", registry, *args, code=9)
    assert f"nor of {trusted}'s" in outgoing.output
    assert registry.read_bytes() == before


def test_a_party_signs_an_accord_only_with_its_own_policy_key(
    ceremony: tuple[CliRunner, Path, list[Path]],
) -> None:
    """`policy sign --partner GB` with RS's policy key is refused (a key error, exit 8) and
    writes no signature; with GB's own key it signs."""
    runner, tmp_path, roots = ceremony
    registry = tmp_path / "registry.json"
    for root in roots[:2]:
        _run(runner, "registry", "sign", registry, "--key", root)
    accord = tmp_path / "gb-rs.yaml"
    shipped = Path(__file__).resolve().parents[3] / "policies" / "gb-rs.yaml"
    accord.write_bytes(shipped.read_bytes())
    (rs_key,) = (tmp_path / "RS").glob("RS-policy-*.pem")
    (gb_key,) = (tmp_path / "GB").glob("GB-policy-*.pem")
    args: list[str | Path] = [accord, "--partner", "GB", "--registry", registry]
    with pytest.raises(errors.KeyTrustError, match="is not a policy key of GB") as refused:
        _run(runner, "policy", "sign", *args, "--key", rs_key)
    assert refused.value.exit_code == 8
    assert not (tmp_path / "gb-rs.yaml.sigs.json").exists()
    signed = _run(runner, "policy", "sign", *args, "--key", gb_key)
    assert "signed by GB" in signed.output
