"""Reading accord files into verified versions: one file's failure never stops the others.

A daemon names its accord files (``accords.paths`` and ``accords.dir/*.yaml``); each is parsed
strictly and its co-signatures (``<file>.sigs.json``) checked against the registry's current
policy keys. A file that fails is one :class:`~broker.trust.accords.Refusal` with the reason;
the rest are held. ``unsafe_allow_unsigned`` (local demos only) skips the signature check and
logs a warning every time it is used.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from collections.abc import Iterable
from typing import Protocol

import structlog

from broker import cosign, errors
from broker.bounded import read_bounded
from broker.ids import AccordId
from broker.keys import Registry
from broker.policy import MAX_ACCORD_BYTES, parse_accord
from broker.trust.accords import AccordBook, AccordInForce, AccordSet, AccordStatus, Refusal
from broker.trust.acts import MAX_ACTS_FILE_BYTES, Act, ActsFile, parse_acts_file

__all__ = ["AccordFiles", "BookSource", "Reading", "acts_path"]


class BookSource(Protocol):
    """What decides with accords needs: the book at an instant, and where each stands."""

    def book(self, now: dt.datetime) -> AccordBook:
        """The accord that decides for each pair at ``now``."""
        ...

    def statuses(self, now: dt.datetime) -> list[AccordStatus]:
        """Where each accord stands at ``now``."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """What one reading of the accord files found: refusals, and the signed acts (suspension,
    resumption, termination) applied for the first time, which the gateway audits."""

    refusals: tuple[Refusal, ...]
    applied: tuple[Act, ...] = ()


_log = structlog.get_logger(__name__)


class AccordFiles:
    """The accord files a daemon reads, the last good version each gave, and the set they feed.

    A file that fails (unreadable, malformed, not co-signed) keeps the version it last gave, so
    an operator's half-written edit stops nothing, but only while that version's own bytes
    still verify against the registry held now: a version whose signer was revoked since, or
    whose signatures lapsed, is dropped like any other. A file that disappears takes its
    version with it. Every verified version goes to :attr:`accords`, which decides what is in
    force.
    """

    def __init__(self, accords: AccordSet | None = None) -> None:
        self.accords = accords or AccordSet()
        self._by_path: dict[str, _Good] = {}

    @classmethod
    def holding(cls, versions: Iterable[AccordInForce], *, now: dt.datetime) -> AccordFiles:
        """Hold ``versions`` as if read from files (for tools and tests that have them)."""
        files = cls()
        held = {f"{v.accord.accord} v{v.accord.version}": v for v in versions}
        refusals = files.accords.replace(held.values(), now=now)
        if refusals:
            raise errors.PolicyError(f"{refusals[0].source}: {refusals[0].reason}")
        return files

    def book(self, now: dt.datetime) -> AccordBook:
        """The accord that decides for each pair at ``now``."""
        return self.accords.book(now)

    def statuses(self, now: dt.datetime) -> list[AccordStatus]:
        """Where each accord held stands at ``now``."""
        return self.accords.statuses(now)

    def read(
        self,
        paths: Iterable[pathlib.Path],
        *,
        registry: Registry,
        now: dt.datetime,
        unsafe_allow_unsigned: bool = False,
    ) -> Reading:
        """Read every accord file in ``paths`` and hold what verifies, then apply each accord's
        signed acts (``<accord id>.acts.json`` beside its file); one refusal per problem."""
        fresh: dict[str, _Good] = {}
        refusals: list[Refusal] = []
        floors = self.accords.floors
        for path in paths:
            try:
                files = _AccordBytes.read(path, signed=not unsafe_allow_unsigned)
                held = files.verify(path, registry, now)
                floor = floors.get(held.accord.accord_id, 0)
                if held.accord.version < floor:
                    raise errors.PolicyError(
                        f"{held.accord.accord} v{held.accord.version} is older than version "
                        f"{floor}, which has been in force (rollback refused)"
                    )
                fresh[str(path)] = _Good(held, files)
            except errors.BrokerError as exc:
                kept = self._keep_last(path, registry, now)
                if kept is not None:
                    fresh[str(path)] = kept
                    refusals.append(Refusal(str(path), exc.diagnostics() + kept.kept_note))
                else:
                    refusals.append(Refusal(str(path), exc.diagnostics()))
        self._by_path = fresh
        versions = {source: good.version for source, good in fresh.items()}
        refusals += self.accords.replace(versions.values(), now=now)
        chains, unreadable = _read_acts(versions)
        applied_refusals, applied = self.accords.apply_acts(chains, registry=registry, now=now)
        return Reading(tuple(refusals + unreadable + applied_refusals), tuple(applied))

    def _keep_last(self, path: pathlib.Path, registry: Registry, now: dt.datetime) -> _Good | None:
        """The version ``path`` last gave, if its own bytes still verify now."""
        last = self._by_path.get(str(path))
        if last is None:
            return None
        try:
            last.files.verify(path, registry, now)
        except errors.BrokerError as exc:
            _log.warning(
                "accord_last_good_dropped",
                path=str(path),
                accord=last.version.accord.accord,
                version=last.version.accord.version,
                why=exc.diagnostics(),
            )
            return None
        return last


@dataclasses.dataclass(frozen=True, slots=True)
class _AccordBytes:
    """An accord file's bytes and its signature file's (None when signatures are not read)."""

    accord: bytes
    signatures: bytes | None

    @classmethod
    def read(cls, path: pathlib.Path, *, signed: bool) -> _AccordBytes:
        accord = _read(path, MAX_ACCORD_BYTES)
        if not signed:
            return cls(accord, None)
        return cls(accord, _read(cosign.signature_path(path), cosign.MAX_SIGNATURE_FILE_BYTES))

    def verify(self, path: pathlib.Path, registry: Registry, now: dt.datetime) -> AccordInForce:
        """The accord these bytes hold, its co-signatures checked against ``registry`` at
        ``now`` (unless they were read unsigned: local demos only, with a warning)."""
        accord = parse_accord(self.accord, source=str(path))
        if self.signatures is None:
            _log.warning(
                "UNSAFE: accord loaded without checking co-signatures",
                path=str(path),
                accord=accord.accord,
                version=accord.version,
            )
            return AccordInForce(accord, cosign.accord_digest(accord))
        sigs = cosign.signature_path(path)
        signatures = cosign.parse_signature_file(self.signatures, source=str(sigs))
        verified = cosign.verify_accord(accord, signatures, registry=registry, now=now)
        return AccordInForce(accord, verified.digest)


@dataclasses.dataclass(frozen=True, slots=True)
class _Good:
    """A verified version and the bytes it was verified from."""

    version: AccordInForce
    files: _AccordBytes

    @property
    def kept_note(self) -> str:
        return f" (keeping {self.version.accord.accord} v{self.version.accord.version} from it)"


def acts_path(accord_file: pathlib.Path, accord: AccordId) -> pathlib.Path:
    """Where the signed acts on ``accord`` live: ``<accord id>.acts.json`` beside its file."""
    return accord_file.with_name(f"{accord}.acts.json")


def _read_acts(
    held: dict[str, AccordInForce],
) -> tuple[dict[AccordId, ActsFile], list[Refusal]]:
    chains: dict[AccordId, ActsFile] = {}
    refusals: list[Refusal] = []
    for source, version in sorted(held.items()):
        accord_id = version.accord.accord_id
        path = acts_path(pathlib.Path(source), accord_id)
        if accord_id in chains or not path.exists():
            continue
        try:
            chain = parse_acts_file(_read(path, MAX_ACTS_FILE_BYTES), source=str(path))
        except errors.BrokerError as exc:
            refusals.append(Refusal(str(path), exc.diagnostics()))
            continue
        if chain.accord != accord_id:
            refusals.append(Refusal(str(path), f"the file is for accord {chain.accord}"))
            continue
        chains[accord_id] = chain
    return chains, refusals


def _read(path: pathlib.Path, limit: int) -> bytes:
    return read_bounded(
        path, limit=limit, what="it", too_large=errors.PolicyError, unreadable=errors.PolicyError
    )
