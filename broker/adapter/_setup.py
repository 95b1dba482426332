"""Turning an adapter's configuration into trusted parts: registry, accords and keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from broker import crypto, errors, keys
from broker.config import Config, read_secret
from broker.ids import KeyId, PartnerCode
from broker.keys import Registry
from broker.runtime import AccordReporter
from broker.trust import AccordFiles

__all__ = [
    "AdapterKeys",
    "load_accords",
    "load_keys",
    "load_registry",
    "require_adapter",
    "reread_accords",
]

_MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class AdapterKeys:
    """The adapter's signing key and its KEM keys by id (current and, while rotating, older)."""

    signing: crypto.SigningKey = dataclasses.field(repr=False)
    decryption: Mapping[KeyId, crypto.DecryptionKey] = dataclasses.field(repr=False)


def require_adapter(config: Config) -> PartnerCode:
    """The adapter's partner code; raise UsageError if the configuration cannot run one."""
    missing = config.missing_for("adapter")
    if missing or config.partner is None:
        raise errors.UsageError(f"an adapter configuration needs: {', '.join(missing)}")
    return config.partner


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise errors.UsageError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    if len(data) > _MAX_FILE_BYTES:
        raise errors.UsageError(f"{path}: {what} is larger than {_MAX_FILE_BYTES} bytes")
    return data


def load_registry(config: Config, *, now: dt.datetime) -> Registry:
    """Verify the registry file against the registry trusted out of band.

    ``registry.trusted_roots`` holds a registry document the operator checked out of band; its
    roots must sign the current ``registry.path`` (TUF-style: roots move only with consent).
    """
    trusted = keys.load_trusted_registry(_read(config.registry.trusted_roots, "trusted roots"))
    return keys.verify_registry(
        _read(config.registry.path, "the registry"), trusted=trusted, now=now
    )


def load_accords(
    config: Config, *, registry: Registry, now: dt.datetime, reporter: AccordReporter
) -> AccordFiles:
    """Read every accord file the configuration names; refusals are reported, never fatal.

    An accord that fails to verify, has expired or is not yet in force stops nothing: its
    flows are refused (by name) while every other accord goes on. ``accords.unsafe_allow_unsigned``
    skips the co-signature check, with a warning each time.
    """
    files = AccordFiles()
    reread_accords(files, config, registry=registry, now=now, reporter=reporter, reloaded=False)
    return files


def reread_accords(
    files: AccordFiles,
    config: Config,
    *,
    registry: Registry,
    now: dt.datetime,
    reporter: AccordReporter,
    reloaded: bool = True,
) -> None:
    """Read the accord files (again) into ``files``; each keeps its last good version."""
    reading = files.read(
        config.accords.files(),
        registry=registry,
        now=now,
        unsafe_allow_unsigned=config.accords.unsafe_allow_unsigned,
    )
    reporter.loaded(reading, files.statuses(now), now=now, reloaded=reloaded)


def load_keys(config: Config) -> AdapterKeys:
    """Load the signing key and every decryption key with the configured passphrase."""
    passphrase = read_secret(config.keys.passphrase)
    signing = keys.load_signing_key(config.keys.signing_key, passphrase=passphrase)
    decryption = {}
    for path in config.keys.decryption_keys:
        key = keys.load_decryption_key(path, passphrase=passphrase)
        decryption[key.key_id] = key
    if not decryption:
        raise errors.UsageError(
            "keys.decryption_keys is empty: the adapter could not read its inbox"
        )
    return AdapterKeys(signing=signing, decryption=decryption)
