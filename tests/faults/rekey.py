"""Take over a provisioned federation's keys, so a test holds the registry's root keys.

Provisioning signs the registry and the accords and then forgets the root and policy keys, so
nothing can sign a registry version N+1 (a rotation, a revocation) afterwards. This replaces
the federation's registry, private keys and accord signatures, before any daemon starts, with
ones from a :class:`RegistryFixture` the test keeps (a provisioning option that returns the
fixture would replace this). Config files and passphrases are left as provisioned.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from broker import crypto, keys
from broker.cosign import sign_accord, signature_path, write_signature_file
from broker.demo.federation import (
    GATEWAY,
    Federation,
    accord_suites,
    current_accords,
    default_policies_dir,
    redated,
)
from broker.demo.files import other_suite_key
from broker.keys.testing import RegistryFixture, build_registry
from broker.policy import load_accord

__all__ = [
    "card_of",
    "classic_accords",
    "install_registry",
    "save_key",
    "take_over_keys",
]


def take_over_keys(federation: Federation, *, now: dt.datetime) -> RegistryFixture:
    """Re-key ``federation`` from a fresh fixture and return that fixture."""
    accord_files = sorted(federation.accords_dir.glob("*.yaml"))
    fixture = build_registry(
        now=now, partners=federation.partners, also_suites=accord_suites(accord_files)
    )
    for path in (federation.registry_path, federation.trusted_path):
        path.unlink()
        keys.write_public_file(path, fixture.data)
    gateway_key = next(iter(fixture.gateways.values()))
    save_key(federation, GATEWAY, "signing.pem", gateway_key)
    for code, partner in fixture.partners.items():
        save_key(federation, code, "signing.pem", partner.signing)
        save_key(federation, code, "decryption.pem", partner.decryption)
        save_key(federation, code, "policy.pem", partner.policy)
        for suite, other in fixture.other_suites.get(code, {}).items():
            key_dir = federation.root / "keys" / code
            save_key(
                federation, code, other_suite_key(key_dir, "signing", suite).name, other.signing
            )
            save_key(
                federation,
                code,
                other_suite_key(key_dir, "decryption", suite).name,
                other.decryption,
            )
    for accord_file in accord_files:
        accord = load_accord(accord_file)
        signatures = None
        for party in sorted(accord.party_codes):
            signatures = sign_accord(
                accord, signatures, key=fixture.partners[party].policy, partner=party
            )
        assert signatures is not None
        target = signature_path(accord_file)
        target.unlink()
        write_signature_file(target, signatures)
    return fixture


def install_registry(federation: Federation, data: bytes) -> None:
    """Replace the registry file atomically (the daemons poll it and reload on change)."""
    temporary = federation.registry_path.with_name(".registry.json.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, federation.registry_path)


def card_of(registry_data: bytes, partner: str) -> keys.PartnerCard:
    """Partner ``partner``'s card as the registry document lists it (revocations dropped)."""
    signed = json.loads(registry_data)["signed"]
    entry = next(p for p in signed["partners"] if p["code"] == partner)
    roles = ("signing_keys", "encryption_keys", "policy_keys")
    card = {
        "type": "partner-card",
        "spec_version": 1,
        **{k: entry[k] for k in ("code", "name", "suite")},
        **{
            role: [
                {
                    k: e[k]
                    for k in ("key_id", "not_after", "not_before", "public_key", "suite")
                    if k in e
                }
                for e in entry[role]
            ]
            for role in roles
        },
    }
    return keys.PartnerCard.from_bytes(json.dumps(card).encode())


def save_key(
    federation: Federation, name: str, file: str, key: crypto.SigningKey | crypto.DecryptionKey
) -> Path:
    """Write ``keys/<name>/<file>`` under the daemon's passphrase (replacing any file)."""
    path = federation.root / "keys" / name / file
    path.unlink(missing_ok=True)
    passphrase = keys.read_passphrase(file=federation.passphrase_file(name), env=None)
    keys.save_private_key(path, key, passphrase=passphrase)
    return path


def classic_accords(directory: Path) -> list[Path]:
    """The shipped accords re-dated around now without rate limits, with gb-rs in its first
    (classic) version: for the tests that follow one signing key of a partner through
    rotation, revocation or rollback (keys of two suites are tested on their own)."""
    now = dt.datetime.now(dt.UTC)
    accords = current_accords(directory, now=now, rate_limits=False)
    first = (default_policies_dir() / "gb-rs.yaml").read_text(encoding="utf-8")
    (directory / "gb-rs.yaml").write_text(
        redated(first, now=now, rate_limits=False), encoding="utf-8"
    )
    return accords
