"""Turning an adapter's configuration into trusted parts: registry, accords and keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

import structlog

from broker import crypto, errors, keys
from broker.config import AdapterConfig, hold_trust, read_secret
from broker.ids import KeyId
from broker.runtime import AccordReporter
from broker.trust import HeldTrust

_log = structlog.get_logger(__name__)

__all__ = ["AdapterKeys", "load_keys", "load_trust", "reread_accords"]

_MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class AdapterKeys:
    """The adapter's signing keys (its own, and one per other suite it also signs in) and its
    KEM keys by id (current and, while rotating, older)."""

    signing: crypto.SigningKey = dataclasses.field(repr=False)
    decryption: Mapping[KeyId, crypto.DecryptionKey] = dataclasses.field(repr=False)
    extra_signing: dataclasses.InitVar[tuple[crypto.SigningKey, ...]] = ()
    #: the key that signs in each suite (``signing`` in its own)
    signers: Mapping[crypto.Suite, crypto.SigningKey] = dataclasses.field(init=False, repr=False)

    def __post_init__(self, extra_signing: tuple[crypto.SigningKey, ...]) -> None:
        suites = [key.suite for key in (self.signing, *extra_signing)]
        if len(set(suites)) != len(suites):
            raise errors.UsageError(
                "keys.extra_signing_keys: one signing key per suite, and none of signing_key's "
                f"suite ({self.signing.suite})"
            )
        signers = {key.suite: key for key in (self.signing, *extra_signing)}
        object.__setattr__(self, "signers", signers)


def load_trust(
    config: AdapterConfig, *, key: crypto.SigningKey, now: dt.datetime, reporter: AccordReporter
) -> HeldTrust:
    """The registry and accords the configuration names, remembered across restarts
    (:class:`broker.trust.HeldTrust`); refused accords are reported, never fatal.

    An accord that fails to verify, has lapsed or is not yet in force stops nothing: its flows
    are refused (by name) while every other accord goes on.
    """
    held = hold_trust(config, key=key, now=now)
    if held.start_refusal is not None:
        _log.error("registry_reload_refused", reason=held.start_refusal)
    reread_accords(held, now=now, reporter=reporter, reloaded=False)
    return held


def reread_accords(
    held: HeldTrust, *, now: dt.datetime, reporter: AccordReporter, reloaded: bool = True
) -> None:
    """Read the accord files (again); each keeps its last good version."""
    reporter.loaded(held.read_accords(now=now), held.statuses(now), now=now, reloaded=reloaded)


def load_keys(config: AdapterConfig) -> AdapterKeys:
    """Load the signing key and every decryption key with the configured passphrase."""
    passphrase = read_secret(config.keys.passphrase)
    signing = keys.load_signing_key(config.keys.signing_key, passphrase=passphrase)
    decryption = {}
    for path in config.keys.decryption_keys:
        key = keys.load_decryption_key(path, passphrase=passphrase)
        decryption[key.key_id] = key
    extra = tuple(
        keys.load_signing_key(path, passphrase=passphrase)
        for path in config.keys.extra_signing_keys
    )
    return AdapterKeys(signing=signing, decryption=decryption, extra_signing=extra)
