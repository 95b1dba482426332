"""A weak public key enters by no door: cards, registry documents, or the command line.

The weak keys are the Ed25519 identity point (under which ``01 00..00 || 00..00`` verifies
every message) and the all-zero X25519 key (whose shared secret is zero); the full tables of
weak encodings are in tests/unit/crypto/test_weak_keys.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker import crypto, errors, keys
from broker.cli import cli
from broker.ids import PartnerCode
from broker.keys import canonical_json
from broker.keys._canonical import signing_input
from broker.keys.testing import RegistryFixture

IDENTITY = bytes([1]) + bytes(31)
ZERO = bytes(32)
NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
ENV = {"BROKER_KEY_PASSPHRASE": "a long enough test passphrase"}


def _key_id(public: bytes) -> str:
    return crypto.sha256(public).hex()[:32]


def _with_weak_key(entries: list[dict[str, object]], public: bytes) -> None:
    entries[0]["public_key"] = base64.b64encode(public).decode("ascii")
    entries[0]["key_id"] = _key_id(public)


def _partner_card(role: str, public: bytes) -> bytes:
    card, _ = keys.generate_partner_keys(
        PartnerCode("ZZ"),
        name="Nowhere",
        suite=crypto.Suite.CLASSIC,
        not_before=NOW,
        valid_for=dt.timedelta(days=30),
    )
    document = json.loads(card.to_bytes())
    _with_weak_key(document[role], public)
    return json.dumps(document).encode()


ROLES = pytest.mark.parametrize(
    ("role", "public"),
    [("signing_keys", IDENTITY), ("policy_keys", IDENTITY), ("encryption_keys", ZERO)],
    ids=["identity signing key", "identity policy key", "all-zero encryption key"],
)


@ROLES
def test_a_partner_card_with_a_weak_key_is_refused(role: str, public: bytes) -> None:
    """The card is refused when it is read, naming the key and why."""
    with pytest.raises(errors.RegistryError, match=rf"{_key_id(public)} is refused: .*order"):
        keys.PartnerCard.from_bytes(_partner_card(role, public))


def test_a_gateway_key_card_with_the_identity_point_is_refused() -> None:
    """A gateway key signs every decision: an identity-point gateway key would let anyone
    forge attestations and audit records."""
    card, _ = keys.generate_service_key(
        "gateway",
        name="gw",
        suite=crypto.Suite.CLASSIC,
        not_before=NOW,
        valid_for=dt.timedelta(days=30),
    )
    document = json.loads(card.to_bytes())
    document["public_key"] = base64.b64encode(IDENTITY).decode("ascii")
    document["key_id"] = _key_id(IDENTITY)
    with pytest.raises(errors.RegistryError, match="small-order"):
        keys.KeyCard.from_bytes(json.dumps(document).encode())


def _resigned(reg: RegistryFixture, role: str, public: bytes) -> bytes:
    """The registry document with RS's first ``role`` key made weak, re-signed by every root."""
    document = json.loads(reg.data)
    signed = document["signed"]
    rs = next(p for p in signed["partners"] if p["code"] == "RS")
    _with_weak_key(rs[role], public)
    signed["version"] += 1
    message = signing_input(canonical_json(signed))
    document["signatures"] = [
        {
            "key_id": root.public_key().key_id,
            "sig": base64.b64encode(root.sign(message)).decode("ascii"),
        }
        for root in reg.roots
    ]
    return json.dumps(document).encode()


@ROLES
def test_a_registry_signed_by_every_root_still_cannot_list_a_weak_key(
    reg: RegistryFixture, role: str, public: bytes
) -> None:
    """Even the roots cannot vouch for a weak key: the document does not verify."""
    data = _resigned(reg, role, public)
    with pytest.raises(errors.RegistryError, match=r"is refused: the (X25519|Ed25519) public key"):
        keys.verify_registry(data, trusted=reg.registry, now=NOW)


def _ceremony(tmp_path: Path) -> tuple[CliRunner, Path]:
    runner = CliRunner()
    for args in (
        ["keys", "generate-root", "--out", tmp_path / "roots", "--name", "root-1"],
        ["keys", "generate", "--partner", "RS", "--out", tmp_path / "RS"],
        ["keys", "generate-root", "--out", tmp_path / "gw", "--kind", "gateway"],
    ):
        assert runner.invoke(cli, [str(a) for a in args], env=ENV).exit_code == 0
    (root_card,) = (tmp_path / "roots").glob("*.card.json")
    registry = tmp_path / "registry.json"
    init = ["registry", "init", "--out", registry, "--root-card", root_card]
    init += ["--threshold", "1", "--expires", "2099-01-01T00:00:00Z"]
    assert runner.invoke(cli, [str(a) for a in init], env=ENV).exit_code == 0
    return runner, registry


@ROLES
def test_registry_add_partner_refuses_a_weak_key_with_one_error_line(
    tmp_path: Path, role: str, public: bytes
) -> None:
    """``registry add-partner`` exits 9 with one ``error:`` line and leaves the file as it was."""
    runner, registry = _ceremony(tmp_path)
    card_path = tmp_path / "RS" / "RS.card.json"
    document = json.loads(card_path.read_bytes())
    _with_weak_key(document[role], public)
    card_path.write_text(json.dumps(document))
    before = registry.read_bytes()
    result = runner.invoke(cli, ["registry", "add-partner", str(registry), str(card_path)], env=ENV)
    assert result.exit_code == errors.RegistryError.exit_code
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: partner card: public key ")
    assert "order point" in lines[0]
    assert registry.read_bytes() == before


def test_registry_add_key_refuses_an_identity_gateway_key_with_one_error_line(
    tmp_path: Path,
) -> None:
    """``registry add-key`` likewise, for a gateway (or witness) key card."""
    runner, registry = _ceremony(tmp_path)
    (card_path,) = (tmp_path / "gw").glob("*.card.json")
    document = json.loads(card_path.read_bytes())
    document["public_key"] = base64.b64encode(IDENTITY).decode("ascii")
    document["key_id"] = _key_id(IDENTITY)
    card_path.write_text(json.dumps(document))
    result = runner.invoke(cli, ["registry", "add-key", str(registry), str(card_path)], env=ENV)
    assert result.exit_code == errors.RegistryError.exit_code
    assert result.output.strip().splitlines() == [
        f"error: key card: public key {_key_id(IDENTITY)} is refused: "
        "the Ed25519 public key is a small-order point"
    ]
