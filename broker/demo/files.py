"""Writing a federation's files: co-signed accords, and each daemon's keys and configuration.

Used by :func:`broker.demo.federation.provision`; every private file is created mode 0600,
and every passphrase is random and written only to the daemon's own secret file.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ruamel.yaml import YAML

from broker import crypto, keys
from broker.cosign import sign_accord, signature_path, write_signature_file
from broker.ids import PartnerCode
from broker.keys.testing import PARTNER_NAMES
from broker.policy import load_accord

if TYPE_CHECKING:
    from broker.demo.federation import Federation

__all__ = ["install_accord", "other_suite_key", "write_daemon"]


def install_accord(
    source: Path, directory: Path, policy_keys: Mapping[PartnerCode, crypto.SigningKey]
) -> None:
    """Copy accord ``source`` into ``directory`` with every party's co-signature; skipped if
    a party is outside ``policy_keys`` (nobody here could co-sign it)."""
    accord = load_accord(source)
    if not accord.party_codes <= set(policy_keys):
        return  # a party outside this federation could never co-sign it
    target = directory / source.name
    shutil.copyfile(source, target)
    signatures = None
    for party in sorted(accord.party_codes):
        signatures = sign_accord(accord, signatures, key=policy_keys[party], partner=party)
    assert signatures is not None  # noqa: S101 - an accord has at least two parties
    write_signature_file(signature_path(target), signatures)


def write_daemon(
    federation: Federation,
    name: str,
    common: Mapping[str, object],
    *,
    signing: crypto.SigningKey,
    decryption: crypto.DecryptionKey | None = None,
    policy: crypto.SigningKey | None = None,
    other_suites: Sequence[tuple[crypto.SigningKey, crypto.DecryptionKey]] = (),
    extra: Mapping[str, object],
    client_id: str,
) -> None:
    """Write daemon ``name``'s encrypted keys, its passphrase file and its configuration;
    ``other_suites`` are an adapter's signing and decryption keys of more suites."""
    root = federation.root
    passphrase_file = federation.passphrase_file(name)
    passphrase = secrets.token_urlsafe(24)
    _write_private_text(passphrase_file, passphrase + "\n")
    key_dir = root / "keys" / name
    key_dir.mkdir(mode=0o700)
    keys.save_private_key(key_dir / "signing.pem", signing, passphrase=passphrase.encode())
    key_section: dict[str, object] = {
        "signing_key": str(key_dir / "signing.pem"),
        "passphrase": {"file": str(passphrase_file)},
    }
    decryption_paths: list[str] = []
    if decryption is not None:
        keys.save_private_key(
            key_dir / "decryption.pem", decryption, passphrase=passphrase.encode()
        )
        decryption_paths.append(str(key_dir / "decryption.pem"))
    extra_signing_paths: list[str] = []
    for other_signing, other_decryption in other_suites:
        suite = other_signing.suite
        signing_path = other_suite_key(key_dir, "signing", suite)
        decryption_path = other_suite_key(key_dir, "decryption", suite)
        keys.save_private_key(signing_path, other_signing, passphrase=passphrase.encode())
        keys.save_private_key(decryption_path, other_decryption, passphrase=passphrase.encode())
        extra_signing_paths.append(str(signing_path))
        decryption_paths.append(str(decryption_path))
    if decryption_paths:
        key_section["decryption_keys"] = decryption_paths
    if extra_signing_paths:
        key_section["extra_signing_keys"] = extra_signing_paths
    if policy is not None:  # the daemon never uses it: it is for `broker policy ...` ceremonies
        keys.save_private_key(key_dir / "policy.pem", policy, passphrase=passphrase.encode())
    federation.data_dir(name).mkdir(parents=True, exist_ok=True)
    kafka = dict(common["kafka"])  # type: ignore[call-overload]
    kafka["client_id"] = client_id
    if federation.access.secured:
        user = federation.user(name)
        kafka["security"] = {
            "protocol": "SASL_SSL",
            "ca_file": str(federation.access.ca_file),
            "mechanism": federation.access.mechanism,
            "username": user,
            "password": {"file": str(federation.access.password_file(user))},
        }
    document = {
        **common,
        **extra,
        "kafka": kafka,
        "keys": key_section,
        "observability": {
            "port": federation.port(name),
            "log_format": "json",
            "log_level": "INFO",
        },
    }
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    header = f"# {name}: written by broker demo provisioning ({PARTNER_NAMES.get(name, name)})\n"
    with federation.config_path(name).open("w", encoding="utf-8") as handle:
        handle.write(header)
        yaml.dump(document, handle)


def other_suite_key(key_dir: Path, role: str, suite: crypto.Suite) -> Path:
    """Where a daemon's ``role`` (signing, decryption) key of another suite is kept."""
    return key_dir / f"{role}-{suite}.pem"


def _write_private_text(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
