"""A daemon's trust, from its configuration: where the files are and where the memory lives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from broker import crypto
from broker.config.roles import TrustingConfig
from broker.trust import HeldTrust, TrustStateFile

__all__ = ["hold_trust", "trust_state_path"]


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
