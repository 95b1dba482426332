"""The gateway daemon's trust state and rate windows: reloads never make things worse."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import pytest

from broker import cosign, errors
from broker.config import Config, load_config
from broker.gateway import RateCounters, TrustState
from broker.ids import PartnerCode
from broker.keys.testing import RegistryFixture, build_registry
from broker.pipeline.gateway import AccordBook
from broker.policy import parse_accord

NOW = dt.datetime(2026, 11, 28, 12, 30, 0, tzinfo=dt.UTC)
GB, RS = PartnerCode("GB"), PartnerCode("RS")


def accord_text(version: int, *, rate: str = "2/hour") -> bytes:
    return f"""accord: gb-rs
title: Test accord
version: {version}
parties: [GB, RS]
effective: 2025-01-01
expires: 2099-01-01
suite: classic
flows:
  - id: GB-RS-OPS
    from: GB
    to: RS
    tier: operational
    types: [network.report]
    purposes: [people-smuggling]
    max_classification: OFFICIAL-SENSITIVE
    max_tlp: AMBER
    handling_codes: [H0]
    categories:
      allow: [operational]
    handling:
      onward_sharing: never
      retention_days: 30
    rate_limit: {rate}
""".encode()


def write_accord(folder: pathlib.Path, fixture: RegistryFixture, data: bytes) -> None:
    (folder / "gb-rs.yaml").write_bytes(data)
    accord = parse_accord(data, source="gb-rs.yaml")
    signatures = None
    for partner in (GB, RS):
        key = fixture.partners[partner].policy
        signatures = cosign.sign_accord(accord, signatures, key=key, partner=partner)
    assert signatures is not None
    cosign.write_signature_file(folder / "gb-rs.yaml.sigs.json", signatures)


@pytest.fixture
def setup(tmp_path: pathlib.Path) -> tuple[Config, RegistryFixture]:
    fixture = build_registry(now=NOW, partners=("GB", "RS"), roots=1, threshold=1)
    (tmp_path / "registry.json").write_bytes(fixture.data)
    (tmp_path / "trusted.json").write_bytes(fixture.data)
    (tmp_path / "accords").mkdir()
    write_accord(tmp_path / "accords", fixture, accord_text(1))
    config = {
        "registry": {"path": "registry.json", "trusted_roots": "trusted.json"},
        "accords": {"dir": "accords"},
        "keys": {"signing_key": "gateway.key", "passphrase": {"env": "UNUSED"}},
    }
    (tmp_path / "gateway.yaml").write_text(json.dumps(config))
    return load_config(tmp_path / "gateway.yaml", env={}), fixture


def test_a_newer_co_signed_accord_replaces_the_old_one(
    setup: tuple[Config, RegistryFixture],
) -> None:
    """Version 2, signed by both parties, is in force after the reload."""
    config, fixture = setup
    state = TrustState(config, now=NOW)
    assert config.accords.dir is not None
    write_accord(config.accords.dir, fixture, accord_text(2))
    state.reload([config.accords.dir / "gb-rs.yaml"], now=NOW)
    accord = state.book.for_pair(GB, RS)
    assert accord is not None
    assert accord.version == 2


# name -> what is written over the accord file; each must leave version 1 in force
BAD_RELOADS = {
    "not YAML": lambda fixture, folder: (folder / "gb-rs.yaml").write_bytes(b"accord: [\n"),
    "unsigned new version": lambda fixture, folder: (folder / "gb-rs.yaml").write_bytes(
        accord_text(2)
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_RELOADS))
def test_a_bad_accord_file_keeps_the_last_good_accord(
    setup: tuple[Config, RegistryFixture], case: str
) -> None:
    """The reload is refused and logged; decisions continue under version 1."""
    config, fixture = setup
    state = TrustState(config, now=NOW)
    assert config.accords.dir is not None
    BAD_RELOADS[case](fixture, config.accords.dir)
    state.reload([config.accords.dir / "gb-rs.yaml"], now=NOW)
    accord = state.book.for_pair(GB, RS)
    assert accord is not None
    assert accord.version == 1


def test_an_older_accord_version_is_a_refused_rollback(
    setup: tuple[Config, RegistryFixture],
) -> None:
    """After version 2 is accepted, a correctly signed version 1 is not taken back."""
    config, fixture = setup
    state = TrustState(config, now=NOW)
    assert config.accords.dir is not None
    write_accord(config.accords.dir, fixture, accord_text(2))
    state.reload([config.accords.dir / "gb-rs.yaml"], now=NOW)
    write_accord(config.accords.dir, fixture, accord_text(1))
    state.reload([config.accords.dir / "gb-rs.yaml"], now=NOW)
    accord = state.book.for_pair(GB, RS)
    assert accord is not None
    assert accord.version == 2


def test_a_registry_file_that_does_not_verify_keeps_the_last_good_registry(
    setup: tuple[Config, RegistryFixture],
) -> None:
    """Garbage in the registry file is logged and ignored."""
    config, _ = setup
    state = TrustState(config, now=NOW)
    before = state.registry
    config.registry.path.write_bytes(b"{}")
    state.reload([config.registry.path], now=NOW)
    assert state.registry is before


def test_an_unsigned_accord_is_refused_at_start(setup: tuple[Config, RegistryFixture]) -> None:
    """Without unsafe_allow_unsigned the daemon will not start on an accord nobody signed."""
    config, _ = setup
    assert config.accords.dir is not None
    (config.accords.dir / "gb-rs.yaml.sigs.json").unlink()
    with pytest.raises(errors.PolicyError):
        TrustState(config, now=NOW)


def test_rate_counts_are_per_flow_and_reset_with_the_window() -> None:
    """Counts accumulate within the UTC hour and start again at the next one."""
    data = accord_text(1)
    book = AccordBook([(parse_accord(data, source="t.yaml"), "00" * 32)])
    rates = RateCounters()
    rates.add(book, "GB-RS-OPS", now=NOW)
    rates.add(book, "GB-RS-OPS", now=NOW + dt.timedelta(minutes=20))
    assert rates.snapshot(book, now=NOW + dt.timedelta(minutes=29)) == {"GB-RS-OPS": 2}
    assert rates.snapshot(book, now=NOW + dt.timedelta(minutes=30)) == {"GB-RS-OPS": 0}
