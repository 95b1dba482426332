"""A daemon's trust, from its configuration: where the files are and where the memory lives."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from broker import crypto, keys
from broker.bounded import read_bounded
from broker.config._model import RegistrySettings
from broker.config.roles import TrustingConfig
from broker.trust import AccordFiles, HeldTrust, Reading, TrustStateFile

__all__ = ["TrustOnFile", "hold_trust", "read_registry", "read_trust", "trust_state_path"]

_MAX_FILE_BYTES = 4 * 1024 * 1024


def trust_state_path(config: TrustingConfig) -> Path:
    """``trust-state.json`` beside the daemon's store."""
    return config.store.path.parent / "trust-state.json"


def hold_trust(
    config: TrustingConfig,
    *,
    key: crypto.SigningKey,
    now: dt.datetime,
    reanchor: bool = False,
    acts_confirmed_later: bool = False,
) -> HeldTrust:
    """The registry and accords the configuration names, with the memory beside its store
    (signed with ``key``, the daemon's own signing key). A daemon whose store exists has run
    here before: it must find its memory (see :class:`broker.trust.HeldTrust`), unless
    ``reanchor`` (``broker trust reset``, after its memory was deliberately removed);
    ``acts_confirmed_later`` as :class:`broker.trust.HeldTrust` has it (the gateway)."""
    return HeldTrust(
        registry_path=config.registry.path,
        anchor_path=config.registry.trusted_roots,
        accords=config.accords,
        state=TrustStateFile(trust_state_path(config), key=key),
        has_run_before=config.store.path.exists() and not reanchor,
        now=now,
        acts_confirmed_later=acts_confirmed_later,
    )


@dataclasses.dataclass(frozen=True)
class TrustOnFile:
    """The registry and accords as a configuration's files give them today."""

    registry: keys.Registry
    accords: AccordFiles
    #: what reading the accord files refused
    reading: Reading


def read_trust(config: TrustingConfig, *, now: dt.datetime) -> TrustOnFile:
    """Verify the registry file against the trusted roots and read the accords against it,
    writing nothing and needing no private key: for commands that run beside the daemon
    (``broker send``'s pre-check, ``broker doctor``).

    The daemon's own memory (``trust-state.json``, signed with its key) is not read, so a
    newer registry it adopted or an accord floor it remembers is not known here: the daemon
    still decides. Raises :class:`errors.RegistryError` when the registry file does not verify
    against the roots or has expired.
    """
    registry = read_registry(config.registry, now=now)
    accords = AccordFiles()
    reading = accords.read(
        config.accords.files(),
        registry=registry,
        now=now,
        unsafe_allow_unsigned=config.accords.unsafe_allow_unsigned,
    )
    return TrustOnFile(registry, accords, reading)


def read_registry(settings: RegistrySettings, *, now: dt.datetime) -> keys.Registry:
    """The registry file, verified against the trusted roots the configuration names (see
    :func:`read_trust`); any daemon's, a witness's too."""
    anchor = keys.load_trusted_registry(
        read_bounded(settings.trusted_roots, limit=_MAX_FILE_BYTES, what="trusted roots")
    )
    data = read_bounded(settings.path, limit=_MAX_FILE_BYTES, what="the registry")
    return keys.verify_registry(data, trusted=anchor, now=now)
