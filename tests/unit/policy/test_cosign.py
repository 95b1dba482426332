"""Co-signed accords: every party's current policy key must sign the parsed accord."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest

from broker import cosign
from broker.errors import PolicyError
from broker.ids import PartnerCode
from broker.keys import PartnerKeys, Registry
from broker.keys.testing import make_registry
from broker.policy import Accord, load_accord, parse_accord

from .conftest import POLICIES, SMALL_ACCORD

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
GB, RS = PartnerCode("GB"), PartnerCode("RS")


@pytest.fixture(scope="module")
def trust() -> tuple[Registry, dict[PartnerCode, PartnerKeys]]:
    registry, _, private = make_registry(now=NOW, partners=["GB", "RS", "TR"])
    return registry, private


@pytest.fixture
def signed_dir(
    tmp_path: pathlib.Path, trust: tuple[Registry, dict[PartnerCode, PartnerKeys]]
) -> pathlib.Path:
    """policies/gb-rs.yaml copied, with GB's and RS's signatures beside it."""
    path = tmp_path / "gb-rs.yaml"
    path.write_bytes((POLICIES / "gb-rs.yaml").read_bytes())
    _, private = trust
    accord = load_accord(path)
    sigs = None
    for party in (GB, RS):
        sigs = cosign.sign_accord(accord, sigs, key=private[party].policy, partner=party)
    assert sigs is not None
    cosign.write_signature_file(cosign.signature_path(path), sigs)
    return tmp_path


def _load(path: pathlib.Path, registry: Registry) -> Accord:
    accord = load_accord(path)
    signatures = cosign.read_signature_file(cosign.signature_path(path))
    return cosign.verify_accord(accord, signatures, registry=registry, now=NOW).accord


def test_an_accord_signed_by_every_party_loads(
    signed_dir: pathlib.Path, trust: tuple[Registry, dict[PartnerCode, PartnerKeys]]
) -> None:
    """Both parties' current policy keys signed: the accord is accepted."""
    assert _load(signed_dir / "gb-rs.yaml", trust[0]).accord == "gb-rs"


def test_comments_do_not_change_the_signed_bytes(
    signed_dir: pathlib.Path, trust: tuple[Registry, dict[PartnerCode, PartnerKeys]]
) -> None:
    """Signatures cover the parsed accord: a new comment keeps them valid."""
    path = signed_dir / "gb-rs.yaml"
    path.write_text("# reviewed again\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    assert _load(path, trust[0]).version == 1


def test_a_changed_rule_invalidates_the_signatures(
    signed_dir: pathlib.Path, trust: tuple[Registry, dict[PartnerCode, PartnerKeys]]
) -> None:
    """Any change of rule changes the digest, so the old signatures no longer count."""
    path = signed_dir / "gb-rs.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("max_tlp: AMBER\n", "max_tlp: RED\n", 1),
        encoding="utf-8",
    )
    with pytest.raises(PolicyError, match="another digest"):
        _load(path, trust[0])


def test_one_partys_signature_is_not_enough(
    tmp_path: pathlib.Path, trust: tuple[Registry, dict[PartnerCode, PartnerKeys]]
) -> None:
    """GB alone cannot put an accord with RS in force; signing twice does not count twice."""
    registry, private = trust
    path = tmp_path / "gb-rs.yaml"
    path.write_bytes((POLICIES / "gb-rs.yaml").read_bytes())
    accord = load_accord(path)
    once = cosign.sign_accord(accord, None, key=private[GB].policy, partner=GB)
    twice = cosign.sign_accord(accord, once, key=private[GB].policy, partner=GB)
    assert len(twice.signatures) == 1
    cosign.write_signature_file(cosign.signature_path(path), twice)
    with pytest.raises(PolicyError, match=r"lacks a valid signature .* of RS"):
        _load(path, registry)


def test_a_signature_by_a_non_partys_key_does_not_count(
    tmp_path: pathlib.Path, trust: tuple[Registry, dict[PartnerCode, PartnerKeys]]
) -> None:
    """TR's key labelled as RS's signature is refused: keys are looked up per party."""
    registry, private = trust
    path = tmp_path / "gb-rs.yaml"
    path.write_bytes((POLICIES / "gb-rs.yaml").read_bytes())
    accord = load_accord(path)
    sigs = cosign.sign_accord(accord, None, key=private[GB].policy, partner=GB)
    forged = cosign.sign_accord(accord, None, key=private[PartnerCode("TR")].policy, partner=RS)
    merged = sigs.model_copy(update={"signatures": (*sigs.signatures, *forged.signatures)})
    cosign.write_signature_file(cosign.signature_path(path), merged)
    with pytest.raises(PolicyError, match="of RS"):
        _load(path, registry)


def test_an_expired_accord_keeps_valid_signatures(
    tmp_path: pathlib.Path, trust: tuple[Registry, dict[PartnerCode, PartnerKeys]]
) -> None:
    """A lapsed accord is still the agreement its parties signed: its signatures verify, and
    whether it is in force is decided where accords are held (broker.trust), not here."""
    registry, private = trust
    text = (POLICIES / "gb-rs.yaml").read_text(encoding="utf-8")
    lapsed = parse_accord(
        text.replace("expires: 2028-06-01", "expires: 2026-01-01").encode(), source="gb-rs.yaml"
    )
    assert lapsed.expires_at() < NOW
    sigs = None
    for party in (GB, RS):
        sigs = cosign.sign_accord(lapsed, sigs, key=private[party].policy, partner=party)
    assert sigs is not None
    verified = cosign.verify_accord(lapsed, sigs, registry=registry, now=NOW)
    assert verified.signers == {GB, RS}


def test_a_missing_signature_file_is_a_policy_error(tmp_path: pathlib.Path) -> None:
    """No ``.sigs.json`` beside the accord: a PolicyError naming the file."""
    with pytest.raises(PolicyError, match="cannot read signatures"):
        cosign.read_signature_file(tmp_path / "gb-zz.yaml.sigs.json")


def test_the_digest_is_stable_and_ignores_yaml_layout() -> None:
    """The same rules written in another order and style give the same digest."""
    accord = parse_accord(SMALL_ACCORD.encode(), source="a.yaml")
    reordered = SMALL_ACCORD.replace(
        "types: [network.report, person.alert]", "types: [person.alert, network.report]"
    )
    assert cosign.accord_digest(
        parse_accord(reordered.encode(), source="b.yaml")
    ) == cosign.accord_digest(accord)
    assert len(cosign.accord_digest(accord)) == 64
