"""What the gateway trusts: the registry, the accords, and its own signing key.

Files are re-read on change. A registry that fails to verify or move forward never replaces
the last good one; an accord file that fails keeps the version it last gave (or none), and
every other accord goes on: one bad or lapsed accord never stops the gateway. Which version of
each accord decides at a given instant is :class:`broker.trust.AccordSet`'s business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import structlog

from broker import crypto, errors, keys
from broker.config import Config, read_secret
from broker.ids import PartnerCode
from broker.keys import Registry
from broker.runtime import AccordReporter
from broker.trust import AccordBook, AccordFiles, AccordStatus
from broker.trust.acts import Act

__all__ = ["TrustState", "load_gateway_key"]

_log = structlog.get_logger(__name__)
_MAX_FILE_BYTES = 4 * 1024 * 1024


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise errors.UsageError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    if len(data) > _MAX_FILE_BYTES:
        raise errors.UsageError(f"{path}: {what} is larger than {_MAX_FILE_BYTES} bytes")
    return data


def load_gateway_key(config: Config, registry: Registry, *, now: dt.datetime) -> crypto.SigningKey:
    """The gateway's signing key; refused unless the registry lists it as a gateway key now."""
    passphrase = read_secret(config.keys.passphrase)
    key = keys.load_signing_key(config.keys.signing_key, passphrase=passphrase)
    registry.gateway_key(key.public_key().key_id, at=now)
    return key


class TrustState:
    """The registry in force and every accord version held, each replaced only by better."""

    def __init__(self, config: Config, *, now: dt.datetime, reporter: AccordReporter) -> None:
        self._config = config
        self.reporter = reporter
        trusted = keys.load_trusted_registry(_read(config.registry.trusted_roots, "trusted roots"))
        self._registry_file = _read(config.registry.path, "the registry")
        self.registry = keys.verify_registry(self._registry_file, trusted=trusted, now=now)
        self.files = AccordFiles()
        #: signed acts applied and not yet audited (the daemon takes them)
        self.applied_acts: list[Act] = []
        self._read_accords(now, reloaded=False)

    @property
    def watched_paths(self) -> tuple[Path, ...]:
        """The files whose change triggers a reload."""
        return (self._config.registry.path, *self._config.accords.watched())

    def outbox_partners(self) -> tuple[PartnerCode, ...]:
        """The partners whose outboxes the gateway reads: everyone registered."""
        return tuple(sorted(self.registry.partners))

    def book(self, now: dt.datetime) -> AccordBook:
        """The accord that decides for each pair at ``now``."""
        return self.files.book(now)

    def statuses(self, now: dt.datetime) -> list[AccordStatus]:
        """Where each accord stands at ``now`` (for expiry warnings and gauges)."""
        return self.files.statuses(now)

    def reload(self, changed: Iterable[Path], *, now: dt.datetime) -> None:
        """Re-read what changed; keep the last good registry, and each file's last good accord."""
        changed = tuple(changed)
        if self._config.registry.path in changed:
            self._reload_registry(now)
        if any(p != self._config.registry.path for p in changed):
            self._read_accords(now, reloaded=True)

    def _read_accords(self, now: dt.datetime, *, reloaded: bool) -> None:
        settings = self._config.accords
        reading = self.files.read(
            settings.files(),
            registry=self.registry,
            now=now,
            unsafe_allow_unsigned=settings.unsafe_allow_unsigned,
        )
        self.reporter.loaded(reading, self.statuses(now), now=now, reloaded=reloaded)
        self.applied_acts.extend(reading.applied)

    def _reload_registry(self, now: dt.datetime) -> None:
        try:
            data = _read(self._config.registry.path, "the registry")
            if data == self._registry_file:
                return
            registry = keys.verify_registry(data, trusted=self.registry, now=now)
        except errors.BrokerError as exc:
            _log.warning("registry_reload_refused", reason=exc.diagnostics())
            return
        self.registry, self._registry_file = registry, data
        _log.info("registry_reloaded", version=registry.version)
