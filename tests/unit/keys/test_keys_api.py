"""The public surface of broker.keys and the registry test helper other suites rely on."""

from __future__ import annotations

import pytest

from broker import crypto, keys
from broker.ids import PartnerCode
from broker.keys import testing

from .keys_support import NOW


def test_public_names_are_pinned() -> None:
    """Changing the public surface is a deliberate act: this list changes with it."""
    assert sorted(keys.__all__) == [
        "DEFAULT_PASSPHRASE_ENV",
        "KeyCard",
        "KeyKind",
        "KeyRecord",
        "KeyRole",
        "MIN_PASSPHRASE_BYTES",
        "PartnerCard",
        "PartnerKeys",
        "PartnerUnit",
        "Registry",
        "RegistryChange",
        "RegistryDraft",
        "RootKey",
        "RotatedKeys",
        "SIGNING_CONTEXT",
        "TrustEffect",
        "canonical_json",
        "diff_registries",
        "format_timestamp",
        "generate_partner_keys",
        "generate_service_key",
        "load_decryption_key",
        "load_signing_key",
        "load_trusted_registry",
        "parse_timestamp",
        "read_passphrase",
        "rotate_partner_keys",
        "save_private_key",
        "signing_input",
        "verify_registry",
        "write_public_file",
    ]
    assert all(hasattr(keys, name) for name in keys.__all__)


@pytest.mark.parametrize("suite", list(crypto.Suite), ids=str)
def test_make_registry_gives_a_verified_registry_and_working_keys(suite: crypto.Suite) -> None:
    """Every partner's private keys match what the registry resolves, in both suites."""
    registry, data, private = testing.make_registry(now=NOW, suite=suite)
    assert registry.partners == {PartnerCode(p) for p in ("GB", "RS", "MK", "XK", "TR", "AL")}
    assert keys.verify_registry(data, trusted=None, now=NOW).digest == registry.digest
    for code, held in private.items():
        assert registry.suite_of(code) is suite
        verify_key = registry.signing_key(code, held.signing_key_id, at=NOW)
        verify_key.verify(signature=held.signing.sign(b"report"), message=b"report")
        key_id, encryption_key = registry.current_encryption_key(code, at=NOW)
        assert key_id == held.encryption_key_id
        sealed = crypto.hpke_seal(encryption_key, b"secret", info=b"test")
        assert crypto.hpke_open(held.decryption, sealed, info=b"test") == b"secret"
        (policy_key,) = registry.policy_keys(code, at=NOW)
        assert policy_key.key_id == held.policy_key_id


def test_make_registry_takes_a_subset_of_partners() -> None:
    """Tests that need two parties get exactly two."""
    registry, _, private = testing.make_registry(now=NOW, partners=["GB", "RS"])
    assert registry.partners == set(private) == {PartnerCode("GB"), PartnerCode("RS")}


def test_build_registry_exposes_gateway_and_witness_keys() -> None:
    """The fixture's gateway and witness private keys match registered public keys."""
    fixture = testing.build_registry(now=NOW, gateways=2, witnesses=1)
    assert len(fixture.gateways) == 2
    for key_id, key in fixture.gateways.items():
        public = fixture.registry.gateway_key(key_id, at=NOW)
        public.verify(signature=key.sign(b"decision"), message=b"decision")
    (witness_id,) = fixture.witnesses
    assert fixture.registry.witness_key(witness_id, at=NOW).key_id == witness_id


def test_a_registry_is_not_a_boolean() -> None:
    """Verification raises on failure; using its result as a condition is a mistake."""
    registry, _, _ = testing.make_registry(now=NOW, partners=["GB"])
    with pytest.raises(TypeError, match="no truth value"):
        bool(registry)
