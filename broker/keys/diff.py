"""What changes between two versions of the registry, in the words a root holder reviews it in.

A root holder asked to sign version N+1 needs to see what signing it does: which partners and
keys come and go, which validity windows move, which keys are revoked, which units a partner
declares, whether the roots or
their threshold change, and when the registry expires. Each change says whether it *grants*
trust (a new key or partner, a longer window, a lower threshold, a later expiry) or *withdraws*
it, so the grants can be read first.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator

from broker.clock import format_instant
from broker.ids import PartnerCode
from broker.keys.registry import KeyRecord, PartnerUnit, Registry

__all__ = ["RegistryChange", "TrustEffect", "diff_registries"]


class TrustEffect(enum.StrEnum):
    """Whether a change makes the registry trust more (grants) or less (withdraws)."""

    GRANTS = "grants"
    WITHDRAWS = "withdraws"
    CHANGES = "changes"


@dataclasses.dataclass(frozen=True)
class RegistryChange:
    """One difference, phrased for people."""

    effect: TrustEffect
    text: str

    def __str__(self) -> str:
        return f"[{self.effect}] {self.text}"


def diff_registries(old: Registry, new: Registry) -> list[RegistryChange]:
    """Every change from ``old`` to ``new``, grants first."""
    changes = [*_header(old, new), *_partners(old, new), *_keys(old, new), *_roots(old, new)]
    order = {TrustEffect.GRANTS: 0, TrustEffect.WITHDRAWS: 1, TrustEffect.CHANGES: 2}
    return sorted(changes, key=lambda change: order[change.effect])


def _header(old: Registry, new: Registry) -> Iterator[RegistryChange]:
    if new.version <= old.version:
        yield RegistryChange(
            TrustEffect.CHANGES,
            f"version {new.version} does not follow {old.version}: daemons refuse it as a rollback",
        )
    if new.expires != old.expires:
        effect = TrustEffect.GRANTS if new.expires > old.expires else TrustEffect.WITHDRAWS
        yield RegistryChange(
            effect, f"expires {format_instant(new.expires)} (was {format_instant(old.expires)})"
        )


def _partners(old: Registry, new: Registry) -> Iterator[RegistryChange]:
    for code in sorted(set(new.partners) - set(old.partners)):
        yield RegistryChange(TrustEffect.GRANTS, f"partner {code} ({new.name_of(code)}) joins")
        units = new.units_of(code)
        if units is not None:
            yield RegistryChange(
                TrustEffect.CHANGES, f"partner {code} lists units: {_listed(units)}"
            )
    for code in sorted(set(old.partners) - set(new.partners)):
        yield RegistryChange(TrustEffect.WITHDRAWS, f"partner {code} ({old.name_of(code)}) leaves")
    for code in sorted(set(old.partners) & set(new.partners)):
        if old.name_of(code) != new.name_of(code):
            yield RegistryChange(
                TrustEffect.CHANGES,
                f"partner {code} renamed {old.name_of(code)!r} -> {new.name_of(code)!r}",
            )
        yield from _units(code, old.units_of(code), new.units_of(code))


def _units(
    code: PartnerCode,
    old: tuple[PartnerUnit, ...] | None,
    new: tuple[PartnerUnit, ...] | None,
) -> Iterator[RegistryChange]:
    """A declared list narrows what a partner's officers may name; no list checks nothing."""
    if old is None and new is not None:
        yield RegistryChange(
            TrustEffect.WITHDRAWS,
            f"partner {code} declares its units: {_listed(new)}; a view naming another is refused",
        )
    elif old is not None and new is None:
        yield RegistryChange(
            TrustEffect.GRANTS,
            f"partner {code} no longer declares its units (was {_listed(old)}): none are checked",
        )
    elif old is not None and new is not None:
        for unit in sorted(set(new) - set(old)):
            yield RegistryChange(TrustEffect.GRANTS, f"partner {code} adds unit {unit}")
        for unit in sorted(set(old) - set(new)):
            yield RegistryChange(TrustEffect.WITHDRAWS, f"partner {code} removes unit {unit}")


def _listed(units: tuple[PartnerUnit, ...]) -> str:
    return ", ".join(str(unit) for unit in units)


def _keys(old: Registry, new: Registry) -> Iterator[RegistryChange]:
    before = {record.key_id: record for record in old.key_records()}
    after = {record.key_id: record for record in new.key_records()}
    for key_id in sorted(set(after) - set(before)):
        record = after[key_id]
        yield RegistryChange(
            TrustEffect.GRANTS,
            f"new {_named(record)}, valid {_window(record)}"
            + ("" if record.revoked_at is None else f", revoked {_revocation(record)}"),
        )
    for key_id in sorted(set(before) - set(after)):
        yield RegistryChange(TrustEffect.WITHDRAWS, f"{_named(before[key_id])} removed")
    for key_id in sorted(set(before) & set(after)):
        yield from _key_changes(before[key_id], after[key_id])


def _key_changes(old: KeyRecord, new: KeyRecord) -> Iterator[RegistryChange]:
    name = _named(new)
    if (old.role, old.owner) != (new.role, new.owner):
        yield RegistryChange(
            TrustEffect.CHANGES, f"{name} was the {old.role} key of {old.owner}: a key moved"
        )
    if new.not_before < old.not_before or new.not_after > old.not_after:
        yield RegistryChange(
            TrustEffect.GRANTS, f"{name} valid {_window(new)} (was {_window(old)})"
        )
    elif (new.not_before, new.not_after) != (old.not_before, old.not_after):
        yield RegistryChange(
            TrustEffect.WITHDRAWS, f"{name} valid {_window(new)} (was {_window(old)})"
        )
    if old.revoked_at is None and new.revoked_at is not None:
        yield RegistryChange(TrustEffect.WITHDRAWS, f"{name} revoked {_revocation(new)}")
    elif old.revoked_at is not None and new.revoked_at is None:
        yield RegistryChange(
            TrustEffect.GRANTS, f"{name} no longer revoked (was {_revocation(old)})"
        )
    elif (
        old.revoked_at is not None
        and new.revoked_at is not None
        and new.revoked_at != old.revoked_at
    ):
        effect = TrustEffect.WITHDRAWS if new.revoked_at < old.revoked_at else TrustEffect.GRANTS
        yield RegistryChange(effect, f"{name} revoked {_revocation(new)} (was {_revocation(old)})")


def _roots(old: Registry, new: Registry) -> Iterator[RegistryChange]:
    before = {root.key_id: root.name for root in old.roots}
    after = {root.key_id: root.name for root in new.roots}
    for key_id in sorted(set(after) - set(before)):
        yield RegistryChange(TrustEffect.GRANTS, f"new root {key_id} ({after[key_id]})")
    for key_id in sorted(set(before) - set(after)):
        yield RegistryChange(TrustEffect.WITHDRAWS, f"root {key_id} ({before[key_id]}) removed")
    if new.root_threshold != old.root_threshold:
        effect = (
            TrustEffect.GRANTS if new.root_threshold < old.root_threshold else TrustEffect.WITHDRAWS
        )
        yield RegistryChange(
            effect,
            f"root threshold {new.root_threshold} of {len(new.roots)} "
            f"(was {old.root_threshold} of {len(old.roots)})",
        )


def _named(record: KeyRecord) -> str:
    return f"{record.role} key {record.key_id} of {record.owner} ({record.suite.value})"


def _window(record: KeyRecord) -> str:
    return f"{format_instant(record.not_before)} to {format_instant(record.not_after)}"


def _revocation(record: KeyRecord) -> str:
    if record.revoked_at is None:
        return "never"
    return f"from {format_instant(record.revoked_at)}: {record.reason or 'no reason given'}"
