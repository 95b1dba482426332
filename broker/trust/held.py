"""What a running daemon trusts, from its files, remembered across restarts.

The gateway and every adapter hold their trust the same way, through :class:`HeldTrust`:

- **the registry**: on first start the operator's out-of-band copy (``registry.trusted_roots``)
  is the anchor (trust on first use); afterwards the registry last verified, kept in the trust
  state. A registry file is adopted only if it verifies against the one held and does not go
  back; otherwise the one held stays (and is said why). A registry past its expiry is held but
  not *usable*: the daemons pause (not ready) until a fresh one is installed, because a frozen
  registry could hide a revocation.
- **the accords**: :class:`~broker.trust.files.AccordFiles`, with the floors and acts
  remembered in the trust state.
- **the memory**: :class:`~broker.trust.state.TrustStateFile`, saved whenever the registry,
  a floor or an accord's acts move on, so a restart never lowers a version.

A daemon that has run before (its store exists) refuses to start without its trust state:
deleting the file must not be a way to forget a revocation. ``broker trust reset`` re-anchors
deliberately.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from broker import errors, keys, limits
from broker.bounded import read_bounded
from broker.trust.accords import AccordBook, AccordSet, AccordStatus
from broker.trust.files import AccordFiles, Reading
from broker.trust.state import TrustMemory, TrustStateFile

__all__ = ["AccordSource", "HeldTrust", "RegistryUpdate"]


class AccordSource(Protocol):
    """Where a daemon's accords are (the configuration's ``accords`` section)."""

    @property
    def unsafe_allow_unsigned(self) -> bool:
        """Accept accords without co-signatures (local demos only)."""
        ...

    def files(self) -> list[Path]:
        """Every accord file."""
        ...

    def watched(self) -> tuple[Path, ...]:
        """The paths whose change means the accords must be read again."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class RegistryUpdate:
    """What reading the registry file did: ``adopted`` a new version, or kept the one held
    (``refused`` says why, when the file was not simply unchanged)."""

    adopted: bool
    version: int
    refused: str | None = None


class HeldTrust:
    """The registry and accords a daemon decides with, and the memory that outlives it."""

    def __init__(
        self,
        *,
        registry_path: Path,
        anchor_path: Path,
        accords: AccordSource,
        state: TrustStateFile,
        has_run_before: bool,
        now: dt.datetime,
        acts_confirmed_later: bool = False,
    ) -> None:
        """``acts_confirmed_later``: remember signed acts only once :meth:`confirm_acts` says
        they are accounted for (the gateway: audited). A crash in between finds them new again
        at the next start, so none goes unaudited; they apply in memory at once either way."""
        self._registry_path = registry_path
        self._accords = accords
        self._state = state
        memory = state.load()
        if memory is None and has_run_before:
            raise errors.RegistryError(
                f"{state.path}: the trust state is missing, but this daemon has run here before: "
                "without it an older registry or accord could be accepted again. Restore it, or "
                "re-anchor with `broker trust reset` after checking the registry out of band"
            )
        anchor = memory.registry if memory is not None else _read(anchor_path, "trusted roots")
        self._document = anchor
        self.registry = keys.load_trusted_registry(anchor)
        self.files = AccordFiles(
            AccordSet(
                floors=None if memory is None else memory.floors,
                acts=None if memory is None else memory.acts,
            )
        )
        self._acts_confirmed_later = acts_confirmed_later
        self._confirmed_acts = {} if memory is None else dict(memory.acts)
        self._saved = -1
        update = self.update_registry(now=now)
        if update.refused is not None and memory is None and self.registry.expires > now:
            # first start, and the registry file does not chain to the anchor: refuse to
            # start rather than run on the anchor alone
            raise errors.RegistryError(f"{registry_path}: {update.refused}")
        #: the registry file's refusal at start, if any (the daemon logs it)
        self.start_refusal = update.refused
        self._save()

    # -- reading files ---------------------------------------------------------------------

    @property
    def watched_paths(self) -> tuple[Path, ...]:
        """The files whose change means :meth:`reload`."""
        return (self._registry_path, *self._accords.watched())

    def update_registry(self, *, now: dt.datetime) -> RegistryUpdate:
        """Read the registry file and adopt it if it verifies against the registry held."""
        try:
            data = _read(self._registry_path, "the registry")
        except errors.BrokerError as exc:
            return RegistryUpdate(False, self.registry.version, exc.diagnostics())
        if data == self._document:
            return RegistryUpdate(False, self.registry.version)
        try:
            registry = keys.verify_registry(data, trusted=self.registry, now=now)
        except errors.BrokerError as exc:
            return RegistryUpdate(False, self.registry.version, exc.diagnostics())
        self.registry, self._document = registry, data
        self._save()
        return RegistryUpdate(True, registry.version)

    def read_accords(self, *, now: dt.datetime) -> Reading:
        """Read the accord files (each keeps its last good version) and remember what moved."""
        reading = self.files.read(
            self._accords.files(),
            registry=self.registry,
            now=now,
            unsafe_allow_unsigned=self._accords.unsafe_allow_unsigned,
        )
        self._save()
        return reading

    def reload(
        self, changed: Iterable[Path], *, now: dt.datetime
    ) -> tuple[RegistryUpdate, Reading]:
        """After files changed: the registry if it did, then the accords (their signatures
        are checked against the registry now held)."""
        changed = tuple(changed)
        update = (
            self.update_registry(now=now)
            if self._registry_path in changed
            else RegistryUpdate(False, self.registry.version)
        )
        return update, self.read_accords(now=now)

    # -- deciding --------------------------------------------------------------------------

    def usable(self, now: dt.datetime) -> bool:
        """Whether the registry held may be used now (it has not expired)."""
        return now < self.registry.expires

    def book(self, now: dt.datetime) -> AccordBook:
        """The accord that decides for each pair at ``now`` (a floor it raises is saved)."""
        book = self.files.book(now)
        if self.files.accords.generation != self._saved:
            self._save()
        return book

    def statuses(self, now: dt.datetime) -> list[AccordStatus]:
        """Where each accord stands at ``now``."""
        return self.files.statuses(now)

    def confirm_acts(self) -> None:
        """Every signed act applied so far is accounted for: remember them (see __init__)."""
        self._confirmed_acts = dict(self.files.accords.acts)
        self._save()

    def _save(self) -> None:
        accords = self.files.accords
        acts = self._confirmed_acts if self._acts_confirmed_later else accords.acts
        self._state.save(TrustMemory(registry=self._document, floors=accords.floors, acts=acts))
        self._saved = accords.generation


def _read(path: Path, what: str) -> bytes:
    return read_bounded(path, limit=limits.REGISTRY_MAX_BYTES, what=what)
