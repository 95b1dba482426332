"""Turning an adapter's configuration into trusted parts: registry, accords and keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import structlog

from broker import cosign, crypto, errors, keys
from broker.config import Config, read_secret
from broker.ids import KeyId, PartnerCode
from broker.keys import Registry
from broker.pipeline.send import AccordInForce, accord_digest
from broker.policy import load_accord

__all__ = ["AdapterKeys", "load_accords", "load_keys", "load_registry", "require_adapter"]

_log = structlog.get_logger(__name__)
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


def accord_files(config: Config) -> list[Path]:
    """Every accord file the configuration names, sorted."""
    files = set(config.accords.paths)
    if config.accords.dir is not None:
        if not config.accords.dir.is_dir():
            raise errors.UsageError(f"{config.accords.dir}: the accords directory does not exist")
        files |= set(config.accords.dir.glob("*.yaml"))
    return sorted(files)


def load_accords(
    config: Config,
    me: PartnerCode,
    *,
    registry: Registry,
    now: dt.datetime,
    accepted: Mapping[PartnerCode, AccordInForce] | None = None,
) -> dict[PartnerCode, AccordInForce]:
    """The co-signed accord shared with each counterpart, by counterpart.

    Accords without ``me`` are skipped; an accord lacking a valid co-signature of every party
    is refused (unless ``accords.unsafe_allow_unsigned``, which logs a warning each time), as
    is one older than the version ``accepted`` before (rollback), and two accords with the
    same counterpart (which one would decide?).
    """
    result: dict[PartnerCode, AccordInForce] = {}
    previous = accepted or {}
    for path in accord_files(config):
        accord = load_accord(path)  # cheap: only to learn the parties before checking signatures
        if me not in accord.party_codes:
            continue
        known = [previous[p].accord.version for p in accord.party_codes - {me} if p in previous]
        accord = cosign.load_signed_accord(
            path,
            registry=registry,
            now=now,
            accepted_version=max(known) if known else None,
            unsafe_allow_unsigned=config.accords.unsafe_allow_unsigned,
        )
        in_force = AccordInForce(accord, accord_digest(accord))
        for other in accord.party_codes - {me}:
            if other in result:
                raise errors.PolicyError(
                    f"{path}: a second accord with {other} ({result[other].accord.accord} is "
                    "already loaded)"
                )
            result[other] = in_force
    return result


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
