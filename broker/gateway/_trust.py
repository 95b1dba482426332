"""What the gateway trusts: the registry, the accords, its signing key, and rate windows.

Files are re-read on change; a file that fails to load, verify or move forward never replaces
the last good one: the daemon logs why and keeps deciding with what it had.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

import structlog

from broker import cosign, crypto, errors, keys
from broker.config import Config, read_secret
from broker.ids import PartnerCode
from broker.keys import Registry
from broker.pipeline.gateway import AccordBook
from broker.policy import Accord, RateWindow

__all__ = ["RateCounters", "TrustState", "accord_files", "load_gateway_key"]

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


def accord_files(config: Config) -> list[Path]:
    """Every accord file the configuration names (``paths`` and ``dir/*.yaml``), sorted."""
    files = set(config.accords.paths)
    if config.accords.dir is not None:
        if not config.accords.dir.is_dir():
            raise errors.UsageError(f"{config.accords.dir}: the accords directory does not exist")
        files |= set(config.accords.dir.glob("*.yaml"))
    return sorted(files)


def load_gateway_key(config: Config, registry: Registry, *, now: dt.datetime) -> crypto.SigningKey:
    """The gateway's signing key; refused unless the registry lists it as a gateway key now."""
    passphrase = read_secret(config.keys.passphrase)
    key = keys.load_signing_key(config.keys.signing_key, passphrase=passphrase)
    registry.gateway_key(key.public_key().key_id, at=now)
    return key


class TrustState:
    """The registry and accords in force, each replaced only by a better file."""

    def __init__(self, config: Config, *, now: dt.datetime) -> None:
        self._config = config
        trusted = keys.load_trusted_registry(_read(config.registry.trusted_roots, "trusted roots"))
        self._registry_file = _read(config.registry.path, "the registry")
        self.registry = keys.verify_registry(self._registry_file, trusted=trusted, now=now)
        self._versions: dict[str, int] = {}
        self.book = self._load_book(now)

    @property
    def watched_paths(self) -> tuple[Path, ...]:
        """The files whose change triggers a reload."""
        accords = self._config.accords
        dirs = () if accords.dir is None else (accords.dir,)
        sigs = tuple(cosign.signature_path(p) for p in accords.paths)
        return (self._config.registry.path, *accords.paths, *sigs, *dirs)

    def outbox_partners(self) -> tuple[PartnerCode, ...]:
        """The partners whose outboxes the gateway reads: everyone registered."""
        return tuple(sorted(self.registry.partners))

    def _load_book(self, now: dt.datetime) -> AccordBook:
        loaded: list[tuple[Accord, str]] = []
        unsafe = self._config.accords.unsafe_allow_unsigned
        for path in accord_files(self._config):
            # cosign refuses unsigned accords (unless unsafe, loudly) and rollbacks
            accord = cosign.load_signed_accord(
                path,
                registry=self.registry,
                now=now,
                accepted_version=self._versions.get(path.name),
                unsafe_allow_unsigned=unsafe,
            )
            loaded.append((accord, cosign.accord_digest(accord)))
        book = AccordBook(loaded)
        for path, (accord, _) in zip(accord_files(self._config), loaded, strict=True):
            self._versions[path.name] = accord.version
        return book

    def reload(self, changed: Iterable[Path], *, now: dt.datetime) -> None:
        """Re-read what changed; keep the last good registry or accord set on any failure."""
        changed = tuple(changed)
        if self._config.registry.path in changed:
            self._reload_registry(now)
        if any(p != self._config.registry.path for p in changed):
            try:
                self.book = self._load_book(now)
            except errors.BrokerError as exc:
                _log.warning("accord_reload_refused", reason=exc.diagnostics())
            else:
                _log.info("accords_reloaded", accords=[a.accord for a in self.book.accords])

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


_WINDOW = {RateWindow.HOUR: 3600, RateWindow.DAY: 86_400}


class RateCounters:
    """Deliveries per rate-limited flow in the current fixed window (hour or day, UTC)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # flow id -> (window start, count)

    def snapshot(self, book: AccordBook, *, now: dt.datetime) -> dict[str, int]:
        """The count of every rate-limited flow in its window at ``now``."""
        counts: dict[str, int] = {}
        for accord in book.accords:
            for flow in accord.flows:
                if flow.rate is not None:
                    counts[flow.id] = self._current(flow.id, _WINDOW[flow.rate.window], now)
        return counts

    def add(self, book: AccordBook, flow_id: str, *, now: dt.datetime) -> None:
        """Count one delivery on ``flow_id``."""
        seconds = _window_of(book, flow_id)
        start = int(now.timestamp()) // seconds * seconds
        self._counts[flow_id] = (start, self._current(flow_id, seconds, now) + 1)

    def _current(self, flow_id: str, seconds: int, now: dt.datetime) -> int:
        start = int(now.timestamp()) // seconds * seconds
        held = self._counts.get(flow_id)
        return held[1] if held is not None and held[0] == start else 0

    def as_mapping(self) -> Mapping[str, tuple[int, int]]:
        """The raw (window start, count) per flow, for tests."""
        return dict(self._counts)


def _window_of(book: AccordBook, flow_id: str) -> int:
    for accord in book.accords:
        for flow in accord.flows:
            if flow.id == flow_id and flow.rate is not None:
                return _WINDOW[flow.rate.window]
    return 3600
