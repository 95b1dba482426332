"""The gateway daemon's trust state: reloads never make things worse, and one bad or lapsed
accord never stops the daemon."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import pytest

from broker import cosign
from broker.config import GatewayConfig, load_config
from broker.gateway import TrustState
from broker.ids import PartnerCode
from broker.keys.testing import RegistryFixture, build_registry
from broker.policy import parse_accord
from broker.runtime import AccordReporter, Metrics

NOW = dt.datetime(2026, 11, 28, 12, 30, 0, tzinfo=dt.UTC)
GB, RS = PartnerCode("GB"), PartnerCode("RS")


def accord_text(
    version: int,
    *,
    rate: str = "2/hour",
    effective: str = "2025-01-01",
    expires: str = "2099-01-01",
) -> bytes:
    return f"""accord: gb-rs
title: Test accord
version: {version}
parties: [GB, RS]
effective: {effective}
expires: {expires}
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


def write_accord(
    folder: pathlib.Path, fixture: RegistryFixture, data: bytes, *, name: str = "gb-rs.yaml"
) -> None:
    (folder / name).write_bytes(data)
    accord = parse_accord(data, source=name)
    signatures = None
    for partner in (GB, RS):
        key = fixture.partners[partner].policy
        signatures = cosign.sign_accord(accord, signatures, key=key, partner=partner)
    assert signatures is not None
    cosign.write_signature_file(folder / f"{name}.sigs.json", signatures)


def trust_state(
    config: GatewayConfig, metrics: Metrics | None = None, *, fixture: RegistryFixture | None = None
) -> TrustState:
    fixture = fixture or FIXTURES[config.registry.path]
    return TrustState(
        config,
        key=next(iter(fixture.gateways.values())),
        now=NOW,
        reporter=AccordReporter(metrics or Metrics()),
    )


FIXTURES: dict[pathlib.Path, RegistryFixture] = {}


@pytest.fixture
def setup(tmp_path: pathlib.Path) -> tuple[GatewayConfig, RegistryFixture]:
    fixture = build_registry(now=NOW, partners=("GB", "RS"), roots=1, threshold=1)
    (tmp_path / "registry.json").write_bytes(fixture.data)
    (tmp_path / "trusted.json").write_bytes(fixture.data)
    (tmp_path / "accords").mkdir()
    write_accord(tmp_path / "accords", fixture, accord_text(1))
    config = {
        "registry": {"path": "registry.json", "trusted_roots": "trusted.json"},
        "accords": {"dir": "accords"},
        "keys": {"signing_key": "gateway.key", "passphrase": {"env": "UNUSED"}},
        "store": {"path": "dedup.sqlite3"},
    }
    (tmp_path / "gateway.yaml").write_text(json.dumps(config))
    loaded = load_config(tmp_path / "gateway.yaml", GatewayConfig, env={})
    FIXTURES[loaded.registry.path] = fixture
    return loaded, fixture


def test_a_newer_co_signed_accord_replaces_the_old_one(
    setup: tuple[GatewayConfig, RegistryFixture],
) -> None:
    """Version 2, signed by both parties, is in force after the reload."""
    config, fixture = setup
    state = trust_state(config)
    assert config.accords.dir is not None
    write_accord(config.accords.dir, fixture, accord_text(2))
    state.reload([config.accords.dir / "gb-rs.yaml"], now=NOW)
    accord = state.book(NOW).for_pair(GB, RS)
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
    setup: tuple[GatewayConfig, RegistryFixture], case: str
) -> None:
    """The reload is refused and logged; decisions continue under version 1."""
    config, fixture = setup
    state = trust_state(config)
    assert config.accords.dir is not None
    BAD_RELOADS[case](fixture, config.accords.dir)
    state.reload([config.accords.dir / "gb-rs.yaml"], now=NOW)
    accord = state.book(NOW).for_pair(GB, RS)
    assert accord is not None
    assert accord.version == 1


def test_an_older_accord_version_is_a_refused_rollback(
    setup: tuple[GatewayConfig, RegistryFixture],
) -> None:
    """After version 2 is accepted, a correctly signed version 1 is not taken back."""
    config, fixture = setup
    state = trust_state(config)
    assert config.accords.dir is not None
    write_accord(config.accords.dir, fixture, accord_text(2))
    state.reload([config.accords.dir / "gb-rs.yaml"], now=NOW)
    write_accord(config.accords.dir, fixture, accord_text(1))
    state.reload([config.accords.dir / "gb-rs.yaml"], now=NOW)
    accord = state.book(NOW).for_pair(GB, RS)
    assert accord is not None
    assert accord.version == 2


def test_a_registry_file_that_does_not_verify_keeps_the_last_good_registry(
    setup: tuple[GatewayConfig, RegistryFixture],
) -> None:
    """Garbage in the registry file is logged and ignored."""
    config, _ = setup
    state = trust_state(config)
    before = state.registry
    config.registry.path.write_bytes(b"{}")
    state.reload([config.registry.path], now=NOW)
    assert state.registry is before


def test_an_unsigned_accord_is_refused_and_the_gateway_still_starts(
    setup: tuple[GatewayConfig, RegistryFixture],
) -> None:
    """Without unsafe_allow_unsigned an accord nobody signed never decides; the refusal is
    logged and counted, and the daemon starts (its pair simply has no accord)."""
    config, _ = setup
    assert config.accords.dir is not None
    (config.accords.dir / "gb-rs.yaml.sigs.json").unlink()
    metrics = Metrics()
    state = trust_state(config, metrics)
    assert state.book(NOW).for_pair(GB, RS) is None
    assert "xb_accord_refusals_total 1" in metrics.render()


def test_an_expired_accord_is_held_so_its_flows_are_refused_by_name(
    setup: tuple[GatewayConfig, RegistryFixture],
) -> None:
    """An accord that has lapsed loads (its signatures are still good) and decides by
    refusing; the gauges say it is not in force and how long ago it lapsed."""
    config, fixture = setup
    assert config.accords.dir is not None
    write_accord(config.accords.dir, fixture, accord_text(1, expires="2026-11-01"))
    metrics = Metrics()
    state = trust_state(config, metrics)
    accord = state.book(NOW).for_pair(GB, RS)
    assert accord is not None
    assert accord.expires_text == "2026-11-01"
    rendered = metrics.render()
    assert 'xb_accord_in_force{accord="gb-rs"} 0' in rendered
    assert 'xb_accord_expiry_seconds{accord="gb-rs"} -2377800' in rendered


def test_a_renewal_on_file_takes_over_on_its_date(
    setup: tuple[GatewayConfig, RegistryFixture],
) -> None:
    """Version 2, co-signed ahead of time in a file of its own, decides from its effective
    date; version 1 decides until then; the expiry gauge counts to version 2's end."""
    config, fixture = setup
    assert config.accords.dir is not None
    write_accord(config.accords.dir, fixture, accord_text(1, expires="2026-12-14"))
    write_accord(
        config.accords.dir,
        fixture,
        accord_text(2, effective="2026-12-14", expires="2029-12-14"),
        name="gb-rs.v2.yaml",
    )
    metrics = Metrics()
    state = trust_state(config, metrics)
    before = state.book(NOW).for_pair(GB, RS)
    after = state.book(dt.datetime(2026, 12, 14, tzinfo=dt.UTC)).for_pair(GB, RS)
    assert (before and before.version, after and after.version) == (1, 2)
    seconds = (dt.datetime(2029, 12, 14, tzinfo=dt.UTC) - NOW).total_seconds()
    assert f'xb_accord_expiry_seconds{{accord="gb-rs"}} {seconds:.0f}' in metrics.render()


def test_an_older_version_under_a_new_name_does_not_roll_back(
    setup: tuple[GatewayConfig, RegistryFixture],
) -> None:
    """Versions are known by accord id, not file name: once version 2 has been in force, a
    still valid, co-signed version 1 copied in as another file never decides again."""
    config, fixture = setup
    state = trust_state(config)
    assert config.accords.dir is not None
    write_accord(config.accords.dir, fixture, accord_text(2))
    state.reload([config.accords.dir / "gb-rs.yaml"], now=NOW)
    assert state.book(NOW).for_pair(GB, RS) is not None
    write_accord(config.accords.dir, fixture, accord_text(1), name="gb-rs-old.yaml")
    state.reload([config.accords.dir / "gb-rs-old.yaml"], now=NOW)
    accord = state.book(NOW).for_pair(GB, RS)
    assert accord is not None
    assert accord.version == 2
