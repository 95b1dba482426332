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
    an operator's half-written edit stops nothing; a file that disappears takes its version with
    it. Every verified version goes to :attr:`accords`, which decides what is in force.
    """

    def __init__(self, accords: AccordSet | None = None) -> None:
        self.accords = accords or AccordSet()
        self._by_path: dict[str, AccordInForce] = {}

    @classmethod
    def holding(cls, versions: Iterable[AccordInForce], *, now: dt.datetime) -> AccordFiles:
        """Hold ``versions`` as if read from files (for tools and tests that have them)."""
        files = cls()
        files._by_path = {f"{v.accord.accord} v{v.accord.version}": v for v in versions}
        refusals = files.accords.replace(files._by_path.values(), now=now)
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
        fresh: dict[str, AccordInForce] = {}
        refusals: list[Refusal] = []
        floors = self.accords.floors
        for path in paths:
            try:
                held = _read_one(path, registry, now, unsafe_allow_unsigned=unsafe_allow_unsigned)
                floor = floors.get(held.accord.accord_id, 0)
                if held.accord.version < floor:
                    raise errors.PolicyError(
                        f"{held.accord.accord} v{held.accord.version} is older than version "
                        f"{floor}, which has been in force (rollback refused)"
                    )
                fresh[str(path)] = held
            except errors.BrokerError as exc:
                last = self._by_path.get(str(path))
                kept = ""
                if last is not None:
                    fresh[str(path)] = last
                    kept = f" (keeping {last.accord.accord} v{last.accord.version} from it)"
                refusals.append(Refusal(str(path), exc.diagnostics() + kept))
        self._by_path = fresh
        refusals += self.accords.replace(fresh.values(), now=now)
        chains, unreadable = _read_acts(fresh)
        applied_refusals, applied = self.accords.apply_acts(chains, registry=registry, now=now)
        return Reading(tuple(refusals + unreadable + applied_refusals), tuple(applied))


def _read_one(
    path: pathlib.Path, registry: Registry, now: dt.datetime, *, unsafe_allow_unsigned: bool
) -> AccordInForce:
    accord = parse_accord(_read(path, MAX_ACCORD_BYTES), source=str(path))
    if unsafe_allow_unsigned:
        _log.warning(
            "UNSAFE: accord loaded without checking co-signatures",
            path=str(path),
            accord=accord.accord,
            version=accord.version,
        )
        return AccordInForce(accord, cosign.accord_digest(accord))
    sigs = cosign.signature_path(path)
    signatures = cosign.parse_signature_file(
        _read(sigs, cosign.MAX_SIGNATURE_FILE_BYTES), source=str(sigs)
    )
    verified = cosign.verify_accord(accord, signatures, registry=registry, now=now)
    return AccordInForce(accord, verified.digest)


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
