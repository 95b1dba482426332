"""Provisioning a federation writes a complete, verifiable, locked-down set of files."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest

from broker import cosign, crypto, keys
from broker.clock import FixedClock
from broker.config import AdapterConfig, GatewayConfig, WitnessConfig, load_config
from broker.demo.federation import (
    DEFAULT_PARTNERS,
    GATEWAY,
    WITNESS,
    Federation,
    default_policies_dir,
    provision,
)
from broker.errors import UsageError
from broker.ids import PartnerCode
from broker.policy import load_accord

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
#: the parties to the shipped pq-hybrid accord (gb-rs, from its second version)
HYBRID_PARTNERS = ("GB", "RS")


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    """The six partners and the gateway, provisioned once for these tests."""
    return provision(
        tmp_path_factory.mktemp("fed") / "root",
        bootstrap="127.0.0.1:9092",
        prefix="demo.",
        clock=FixedClock(NOW),
    )


def test_every_daemon_config_loads_and_names_its_own_files(federation: Federation) -> None:
    """Each config validates; adapters have partner, store, spool and KEM keys; ports differ."""
    ports = set()
    for name in (GATEWAY, WITNESS, *DEFAULT_PARTNERS):
        path = federation.config_path(name)
        config: AdapterConfig | GatewayConfig | WitnessConfig
        if name == GATEWAY:
            config = load_config(path, GatewayConfig, env={})
        elif name == WITNESS:
            config = load_config(path, WitnessConfig, env={})
        else:
            config = load_config(path, AdapterConfig, env={})
        assert config.kafka.topic_prefix == "demo."
        assert config.observability.port == federation.port(name)
        if not isinstance(config, WitnessConfig):  # a witness holds no accords
            assert not config.accords.unsafe_allow_unsigned
        ports.add(config.observability.port)
        if isinstance(config, AdapterConfig):
            assert config.partner == name
            # one KEM key per suite of the partner's accords; a signing key of each other one
            hybrid = name in HYBRID_PARTNERS
            assert len(config.keys.decryption_keys) == (2 if hybrid else 1)
            assert len(config.keys.extra_signing_keys) == (1 if hybrid else 0)
    assert len(ports) == 2 + len(DEFAULT_PARTNERS)


def test_registry_verifies_and_registers_every_key_on_disk(federation: Federation) -> None:
    """The registry verifies against the trusted copy; the key files load with their
    passphrases and are the registered keys (gateway key included)."""
    trusted = keys.load_trusted_registry(federation.trusted_path.read_bytes())
    registry = keys.verify_registry(federation.registry_path.read_bytes(), trusted=trusted, now=NOW)
    assert registry.partners == frozenset(PartnerCode(code) for code in DEFAULT_PARTNERS)
    for code in DEFAULT_PARTNERS:
        key = federation.signing_key(code)
        registry.signing_key(PartnerCode(code), key.public_key().key_id, at=NOW)
        assert key.suite is crypto.Suite.CLASSIC
    # gb-rs is a pq-hybrid accord: its parties hold keys of both suites, registered as such
    for code in HYBRID_PARTNERS:
        hybrid = federation.signing_key(code, suite=crypto.Suite.PQ_HYBRID)
        assert hybrid.suite is crypto.Suite.PQ_HYBRID
        registry.signing_key(PartnerCode(code), hybrid.public_key().key_id, at=NOW)
        both = {crypto.Suite.CLASSIC, crypto.Suite.PQ_HYBRID}
        assert registry.suites_of(PartnerCode(code), at=NOW) == both
    assert registry.suites_of(PartnerCode("XK"), at=NOW) == {crypto.Suite.CLASSIC}
    gateway = federation.signing_key(GATEWAY)
    registry.gateway_key(gateway.public_key().key_id, at=NOW)
    witness = federation.signing_key(WITNESS)
    registry.witness_key(witness.public_key().key_id, at=NOW)


def test_every_accord_is_co_signed_by_all_its_parties(federation: Federation) -> None:
    """Each installed accord carries a valid signature from every party's policy key."""
    registry = federation.registry(now=NOW)
    accords = sorted(federation.accords_dir.glob("*.yaml"))
    assert [p.name for p in accords] == [
        p.name for p in sorted(default_policies_dir().glob("*.yaml"))
    ]
    for path in accords:
        accord = load_accord(path)
        signatures = cosign.read_signature_file(cosign.signature_path(path))
        verified = cosign.verify_accord(accord, signatures, registry=registry, now=NOW)
        assert verified.signers == accord.party_codes


def test_secrets_and_private_keys_are_readable_by_the_owner_only(federation: Federation) -> None:
    """Passphrase files and private key files are mode 0600."""
    private = [*federation.root.glob("secrets/*"), *federation.root.glob("keys/*/*.pem")]
    # 8 passphrases; 6 partners x 3 keys; the gateway's and the witness's signing keys; the
    # pq-hybrid signing and KEM keys of the two parties to the pq-hybrid accord
    assert len(private) == 8 + 6 * 3 + 2 + 2 * 2
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_accords_naming_outsiders_are_left_out(tmp_path: Path) -> None:
    """With only GB and RS, only the GB-RS accord can be co-signed, so only it is installed."""
    small = provision(tmp_path / "small", bootstrap="127.0.0.1:9092", partners=["GB", "RS"])
    assert sorted(p.name for p in small.accords_dir.glob("*.yaml")) == [
        "gb-rs.v2.yaml",
        "gb-rs.yaml",
    ]


def test_a_non_empty_directory_is_refused(tmp_path: Path) -> None:
    """Provisioning never mixes into existing files."""
    (tmp_path / "something").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        provision(tmp_path, bootstrap="127.0.0.1:9092")


def test_unknown_daemon_names_are_usage_errors(federation: Federation) -> None:
    """Asking for a daemon the federation does not have is a clear error."""
    with pytest.raises(UsageError, match="no daemon named 'FR'"):
        federation.start("FR")
