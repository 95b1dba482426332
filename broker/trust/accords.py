"""The accords a daemon holds, and which version of each decides at a given instant.

A directory of accords may hold several versions of one accord: the one in force and a renewal
co-signed ahead of its ``effective`` date, say. Versions are identified by accord id and
version, never by file name. At any instant each accord id is decided by one version:

1. the highest version in force at that instant (``effective <= now < expires``);
2. else, if some version has expired, the highest expired one (the accord has lapsed: every
   flow of it is refused as ``accord_expired``);
3. else the version that takes effect first (refused as ``accord_not_yet_effective``).

No version lower than one that has already been in force is ever used again (the *floor*): a
renewal that took over is never undone by an older, still signed and possibly laxer version,
whatever its file is called. The caller persists the floors across restarts.

An accord that expires, or not yet in force, never stops a daemon: it is held and decides
(by refusing), while every other accord goes on. Nothing here reads the clock or a file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Literal

from broker.errors import PolicyError
from broker.ids import AccordId, PartnerCode
from broker.keys import Registry
from broker.policy import Accord
from broker.reasons import ReasonCode
from broker.trust.acts import Act, ActMemory, ActsFile, Halt, stand

__all__ = [
    "AccordBook",
    "AccordInForce",
    "AccordSet",
    "AccordState",
    "AccordStatus",
    "Refusal",
]

AccordState = Literal["in_force", "expired", "not_yet_effective"]


@dataclasses.dataclass(frozen=True, slots=True)
class AccordInForce:
    """One verified accord version with the digest its parties co-signed, and, when a party
    has suspended or terminated the accord, why its flows are refused whatever its rules."""

    accord: Accord
    digest: str
    halt: Halt | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    """An accord version (or file) not taken, and why."""

    source: str
    reason: str


class AccordBook:
    """The accord that decides for each pair of parties, at one instant: a snapshot."""

    def __init__(
        self,
        accords: Iterable[tuple[Accord, str]],
        *,
        halts: Mapping[AccordId, Halt] | None = None,
    ) -> None:
        """Index ``(accord, digest)`` pairs, one version per accord id; ``halts`` are the
        accords a party has suspended or terminated."""
        self._by_pair: dict[frozenset[PartnerCode], AccordInForce] = {}
        self._digests: dict[AccordId, str] = {}
        halts = halts or {}
        for accord, digest in accords:
            held = AccordInForce(accord, digest, halts.get(accord.accord_id))
            for pair in _pairs(accord):
                other = self._by_pair.get(pair)
                if other is not None and other.accord.accord != accord.accord:
                    first, second = sorted(pair)
                    raise PolicyError(
                        f"accords {other.accord.accord} and {accord.accord} both cover "
                        f"{first}-{second}; one accord per pair"
                    )
                self._by_pair[pair] = held
            self._digests[accord.accord_id] = digest

    def for_pair(self, a: PartnerCode, b: PartnerCode) -> Accord | None:
        """The accord that decides between ``a`` and ``b``, or None."""
        held = self._by_pair.get(frozenset((a, b)))
        return None if held is None else held.accord

    def held_for_pair(self, a: PartnerCode, b: PartnerCode) -> AccordInForce | None:
        """The accord between ``a`` and ``b`` with its digest, or None."""
        return self._by_pair.get(frozenset((a, b)))

    def digest(self, accord: Accord) -> str:
        """The digest of an accord held here."""
        return self._digests[accord.accord_id]

    def halt(self, accord: Accord) -> Halt | None:
        """Why ``accord``'s flows are refused whatever its rules (suspended, terminated)."""
        for held in self._by_pair.values():
            if held.accord.accord_id == accord.accord_id:
                return held.halt
        return None

    def counterparts(self, me: PartnerCode) -> dict[PartnerCode, AccordInForce]:
        """The accord ``me`` shares with each other party, by that party."""
        return {
            other: held
            for pair, held in self._by_pair.items()
            if me in pair
            for other in pair - {me}
        }

    @property
    def accords(self) -> tuple[Accord, ...]:
        """Every accord held, once each."""
        return tuple({h.accord.accord: h.accord for h in self._by_pair.values()}.values())


@dataclasses.dataclass(frozen=True, slots=True)
class AccordStatus:
    """Where one accord stands at an instant, for warnings, gauges and ``policy verify``."""

    #: the version that decides now
    deciding: Accord
    state: AccordState
    #: the renewal on file that takes over from ``deciding`` without a gap, if any
    successor: Accord | None
    #: the last version of the chain that follows on from ``deciding`` without a gap (itself
    #: when no renewal is on file): the accord lapses when this one expires
    last: Accord
    #: a party's suspension or termination, if the accord is halted
    halt: Halt | None = None

    @property
    def accord(self) -> AccordId:
        """The accord's id."""
        return self.deciding.accord_id

    @property
    def version(self) -> int:
        """The deciding version."""
        return self.deciding.version

    @property
    def lapses_at(self) -> dt.datetime:
        """When no version of the accord will be in force any more (as things stand)."""
        return self.last.expires_at()


class AccordSet:
    """Every verified version of every accord, the floors, and the book at any instant."""

    def __init__(
        self,
        *,
        floors: Mapping[AccordId, int] | None = None,
        acts: Mapping[AccordId, ActMemory] | None = None,
    ) -> None:
        self._floors: dict[AccordId, int] = dict(floors or {})
        self._acts: dict[AccordId, ActMemory] = dict(acts or {})
        #: accords whose acts file this daemon has never verified any of and cannot verify
        #: now: halted until it can (a fresh daemon must not ignore a suspension it cannot
        #: check), never remembered
        self._unverified: dict[AccordId, Halt] = {}
        self._versions: dict[AccordId, tuple[AccordInForce, ...]] = {}
        self._cached: tuple[dt.datetime, dt.datetime, AccordBook] | None = None
        #: counts changes to what must be remembered (floors, acts), so a holder knows when
        #: to persist them
        self.generation = 0

    @property
    def acts(self) -> Mapping[AccordId, ActMemory]:
        """What has been applied of each accord's signed acts (rollback memory)."""
        return dict(self._acts)

    def parties(self, accord_id: AccordId) -> frozenset[PartnerCode] | None:
        """The parties of the accord (of its highest version held), or None if not held."""
        versions = self._versions.get(accord_id)
        return None if not versions else versions[-1].accord.party_codes

    def apply_acts(
        self, chains: Mapping[AccordId, ActsFile], *, registry: Registry, now: dt.datetime
    ) -> tuple[list[Refusal], list[Act]]:
        """Apply each held accord's chain of signed acts (an accord without a file has an
        empty chain); returns the refusals and the acts applied for the first time.

        A chain that is broken, badly signed or shorter than what was applied before is
        refused and the accord keeps its standing: a suspension survives a deleted file. A
        daemon that has applied none of an accord's acts and cannot verify its chain halts the
        accord until it can: the chain may hold a suspension.
        """
        refusals: list[Refusal] = []
        applied: list[Act] = []
        self._unverified = {}
        for accord_id in sorted(set(self._versions) | set(chains) | set(self._acts)):
            parties = self.parties(accord_id)
            chain = chains.get(accord_id, ActsFile(accord=accord_id))
            if parties is None:
                if chain.acts:
                    refusals.append(Refusal(f"{accord_id} acts", "no version of it is held"))
                continue
            try:
                standing = stand(
                    chain,
                    parties=parties,
                    registry=registry,
                    now=now,
                    memory=self._acts.get(accord_id),
                )
            except PolicyError as exc:
                refusals.append(Refusal(f"{accord_id} acts", exc.diagnostics()))
                if accord_id not in self._acts and chain.acts:
                    self._unverified[accord_id] = Halt(
                        ReasonCode.ACCORD_SUSPENDED,
                        f"accord {accord_id} is halted: its signed acts do not verify "
                        f"({exc.diagnostics()})",
                    )
                continue
            if standing.memory.length and standing.memory != self._acts.get(accord_id):
                self._acts[accord_id] = standing.memory
                self.generation += 1
            applied += standing.new_acts
        self._cached = None
        return refusals, applied

    @property
    def floors(self) -> Mapping[AccordId, int]:
        """The highest version of each accord that has been in force (rollback memory)."""
        return dict(self._floors)

    def replace(self, candidates: Iterable[AccordInForce], *, now: dt.datetime) -> list[Refusal]:
        """Hold ``candidates`` (every verified version on file) instead of the versions held,
        and raise the floors of those in force at ``now``.

        Refused, each with a reason, and the rest held: a version below the floor of its
        accord (rollback); two different texts under one accord id and version (both); two
        accords covering the same pair of parties (both, until one is removed).
        """
        refusals: list[Refusal] = []
        by_id: dict[AccordId, dict[int, AccordInForce]] = {}
        conflicting: set[tuple[AccordId, int]] = set()
        for held in candidates:
            accord = held.accord
            floor = self._floors.get(accord.accord_id)
            if floor is not None and accord.version < floor:
                refusals.append(
                    Refusal(
                        _name(accord),
                        f"version {accord.version} is older than version {floor}, which has "
                        "been in force (rollback refused)",
                    )
                )
                continue
            versions = by_id.setdefault(accord.accord_id, {})
            same = versions.get(accord.version)
            if same is not None and same.digest != held.digest:
                conflicting.add((accord.accord_id, accord.version))
            versions.setdefault(accord.version, held)
        for accord_id, version in sorted(conflicting):
            del by_id[accord_id][version]
            refusals.append(
                Refusal(
                    f"{accord_id} v{version}",
                    "two different accords carry this id and version; a changed accord must "
                    "carry a higher version",
                )
            )
        refusals += _refuse_shared_pairs(by_id)
        self._versions = {
            accord_id: tuple(versions[v] for v in sorted(versions))
            for accord_id, versions in by_id.items()
            if versions
        }
        self._cached = None
        self.book(now)  # a version in force from now on is the new floor at once
        return refusals

    def book(self, now: dt.datetime) -> AccordBook:
        """The book of deciding versions at ``now``; raises the floors it moves past."""
        cached = self._cached
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[2]
        chosen = {
            accord_id: held
            for accord_id, versions in self._versions.items()
            if (held := _choose(versions, now, self._floors.get(accord_id, 0))) is not None
        }
        for accord_id, held in chosen.items():
            if _state(held.accord, now) == "in_force":
                floor = self._floors.get(accord_id, 0)
                if held.accord.version > floor:
                    self._floors[accord_id] = held.accord.version
                    self.generation += 1
        halts = {**self._unverified, **self._halts_remembered()}
        book = AccordBook(((held.accord, held.digest) for held in chosen.values()), halts=halts)
        start, end = self._stable_span(now)
        self._cached = (start, end, book)
        return book

    def statuses(self, now: dt.datetime) -> list[AccordStatus]:
        """One status per accord id held, sorted by id."""
        result = []
        for accord_id in sorted(self._versions):
            versions = self._versions[accord_id]
            chosen = _choose(versions, now, self._floors.get(accord_id, 0))
            if chosen is None:
                continue
            last = chosen.accord
            while (follower := _successor(versions, last)) is not None:
                last = follower
            result.append(
                AccordStatus(
                    deciding=chosen.accord,
                    state=_state(chosen.accord, now),
                    successor=_successor(versions, chosen.accord),
                    last=last,
                    halt=self._halt(accord_id),
                )
            )
        return result

    def _halts_remembered(self) -> dict[AccordId, Halt]:
        return {a: m.halt for a, m in self._acts.items() if m.halt is not None}

    def _halt(self, accord_id: AccordId) -> Halt | None:
        memory = self._acts.get(accord_id)
        if memory is not None:
            return memory.halt
        return self._unverified.get(accord_id)

    def _stable_span(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The span around ``now`` in which no version starts or ends: the book holds for it."""
        edges = sorted(
            {
                edge
                for versions in self._versions.values()
                for held in versions
                for edge in held.accord.in_force
            }
        )
        start, end = dt.datetime.min.replace(tzinfo=dt.UTC), dt.datetime.max.replace(tzinfo=dt.UTC)
        for edge in edges:
            if edge <= now:
                start = edge
            else:
                end = edge
                break
        return start, end


def _pairs(accord: Accord) -> list[frozenset[PartnerCode]]:
    parties = sorted(accord.party_codes)
    return [frozenset((a, b)) for i, a in enumerate(parties) for b in parties[i + 1 :]]


def _name(accord: Accord) -> str:
    return f"{accord.accord} v{accord.version}"


def _state(accord: Accord, now: dt.datetime) -> AccordState:
    effective_from, expires_at = accord.in_force
    if now < effective_from:
        return "not_yet_effective"
    return "expired" if now >= expires_at else "in_force"


def _choose(
    versions: tuple[AccordInForce, ...], now: dt.datetime, floor: int
) -> AccordInForce | None:
    """The version that decides at ``now`` (see the module's rules); ``versions`` ascend.

    Versions below ``floor`` never decide, even when their dates would have them in force.
    """
    versions = tuple(h for h in versions if h.accord.version >= floor)
    if not versions:
        return None
    in_force = [h for h in versions if _state(h.accord, now) == "in_force"]
    if in_force:
        return in_force[-1]
    expired = [h for h in versions if _state(h.accord, now) == "expired"]
    if expired:
        return expired[-1]
    return min(versions, key=lambda h: (h.accord.effective_from(), h.accord.version))


def _successor(versions: tuple[AccordInForce, ...], accord: Accord) -> Accord | None:
    """The highest later version that takes over no later than ``accord`` expires."""
    later = [
        h.accord
        for h in versions
        if h.accord.version > accord.version
        and h.accord.effective_from() <= accord.expires_at() < h.accord.expires_at()
    ]
    return later[-1] if later else None


def _refuse_shared_pairs(by_id: dict[AccordId, dict[int, AccordInForce]]) -> list[Refusal]:
    """Refuse (drop) every accord id that covers a pair another accord id also covers."""
    owners: dict[frozenset[PartnerCode], set[AccordId]] = {}
    for accord_id, versions in by_id.items():
        for held in versions.values():
            for pair in _pairs(held.accord):
                owners.setdefault(pair, set()).add(accord_id)
    refusals = []
    dropped: set[AccordId] = set()
    for pair, ids in sorted(owners.items(), key=lambda item: sorted(item[0])):
        if len(ids) < 2:
            continue
        first, second = sorted(pair)
        for accord_id in sorted(ids - dropped):
            dropped.add(accord_id)
            others = ", ".join(sorted(ids - {accord_id}))
            refusals.append(
                Refusal(
                    str(accord_id),
                    f"{accord_id} and {others} both cover {first}-{second}; neither is used "
                    "until one is removed",
                )
            )
    for accord_id in dropped:
        by_id[accord_id].clear()
    return refusals
