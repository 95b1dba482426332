"""What changes between two versions of an accord, in the words an operator reviews it in.

Each change says whether it *opens* or *closes* something, *widens* or *narrows* what a flow
lets through, or only *changes* an obligation, so a reviewer can find every loosening first.
Flows are matched by direction and message type, so renaming a rule id is not a change.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator

from broker.policy.model import Accord, Flow
from broker.schema.labels import DataCategory, MessageType

__all__ = ["Change", "ChangeKind", "diff_accords"]


class ChangeKind(enum.StrEnum):
    """Whether a change lets more through (opens, widens) or less (closes, narrows)."""

    OPENS = "opens"
    CLOSES = "closes"
    WIDENS = "widens"
    NARROWS = "narrows"
    CHANGES = "changes"


@dataclasses.dataclass(frozen=True)
class Change:
    """One difference, already phrased for people."""

    kind: ChangeKind
    text: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.text}"


# A category's permissiveness: deny < redact < allow.
_CATEGORY_RANK = {"unlisted": 0, "deny": 0, "redact": 1, "allow": 2}
_CATEGORY_WORD = {
    "unlisted": "refused (not listed)",
    "deny": "denied",
    "redact": "redacted",
    "allow": "allowed",
}


def diff_accords(old: Accord, new: Accord) -> list[Change]:
    """Every difference between ``old`` and ``new`` that changes what can flow or on what terms."""
    changes: list[Change] = []
    if new.accord != old.accord:
        changes.append(
            Change(
                ChangeKind.CHANGES, f"these are different accords: {old.accord} and {new.accord}"
            )
        )
    elif new.version <= old.version:
        changes.append(
            Change(
                ChangeKind.CHANGES,
                f"version {new.version} is not above "
                f"{old.version}: gateways will refuse it as a rollback",
            )
        )
    for party in sorted(set(new.parties) - set(old.parties)):
        changes.append(Change(ChangeKind.OPENS, f"{party} joins the accord"))
    for party in sorted(set(old.parties) - set(new.parties)):
        changes.append(Change(ChangeKind.CLOSES, f"{party} leaves the accord"))
    # Dates and timestamps compare as the instants they name (a date is midnight UTC); a
    # rewrite naming the same instant still changes the signed text, so it is listed too.
    if new.effective_text != old.effective_text:
        kind = _kind_of(
            widens=new.effective_from() < old.effective_from(),
            narrows=new.effective_from() > old.effective_from(),
        )
        changes.append(
            Change(kind, f"takes effect {new.effective_text} (was {old.effective_text})")
        )
    if new.expires_text != old.expires_text:
        kind = _kind_of(
            widens=new.expires_at() > old.expires_at(), narrows=new.expires_at() < old.expires_at()
        )
        changes.append(Change(kind, f"expires {new.expires_text} (was {old.expires_text})"))
    if new.suite != old.suite:
        changes.append(Change(ChangeKind.CHANGES, f"envelope suite {new.suite} (was {old.suite})"))
    old_routes, new_routes = _routes(old), _routes(new)
    for key in sorted(old_routes.keys() | new_routes.keys()):
        sender, recipient, message_type = key
        before, after = old_routes.get(key), new_routes.get(key)
        head = f"{sender} -> {recipient} {message_type}"
        if before is None and after is not None:
            changes.append(
                Change(ChangeKind.OPENS, f"{head}: flow opens ({after.id}, {after.tier} tier)")
            )
        elif after is None and before is not None:
            changes.append(Change(ChangeKind.CLOSES, f"{head}: flow closes (was {before.id})"))
        elif before is not None and after is not None:
            changes += [
                Change(kind, f"{head}: {text}") for kind, text in _flow_changes(before, after)
            ]
    return _merge_types(changes)


def _kind_of(*, widens: bool, narrows: bool) -> ChangeKind:
    return ChangeKind.WIDENS if widens else (ChangeKind.NARROWS if narrows else ChangeKind.CHANGES)


def _routes(accord: Accord) -> dict[tuple[str, str, MessageType], Flow]:
    return {(f.sender, f.recipient, t): f for f in accord.flows for t in f.types}


def _merge_types(changes: list[Change]) -> list[Change]:
    # The same change on several message types of one direction reads better once.
    merged: dict[tuple[ChangeKind, str, str], list[str]] = {}
    order: list[tuple[ChangeKind, str, str]] = []
    plain: list[Change] = []
    for change in changes:
        head, sep, rest = change.text.partition(": ")
        parts = head.split(" ")
        if not sep or len(parts) != 4:
            plain.append(change)
            continue
        key = (change.kind, " ".join(parts[:3]), rest)
        if key not in merged:
            merged[key] = []
            order.append(key)
        merged[key].append(parts[3])
    return plain + [
        Change(kind, f"{direction} ({', '.join(merged[(kind, direction, rest)])}): {rest}")
        for kind, direction, rest in order
    ]


def _flow_changes(old: Flow, new: Flow) -> Iterator[tuple[ChangeKind, str]]:
    if new.tier != old.tier:
        kind = ChangeKind.WIDENS if new.tier == "operational" else ChangeKind.NARROWS
        yield kind, f"tier {new.tier} (was {old.tier})"
    for purpose in sorted(new.purposes - old.purposes):
        yield ChangeKind.WIDENS, f"purpose {purpose} now allowed"
    for purpose in sorted(old.purposes - new.purposes):
        yield ChangeKind.NARROWS, f"purpose {purpose} no longer allowed"
    for name, before, after in (
        ("classification ceiling", old.max_classification, new.max_classification),
        ("TLP ceiling", old.max_tlp, new.max_tlp),
    ):
        if after.rank > before.rank:
            yield ChangeKind.WIDENS, f"{name} raised from {before} to {after}"
        elif after.rank < before.rank:
            yield ChangeKind.NARROWS, f"{name} lowered from {before} to {after}"
    for code in sorted(new.handling_codes - old.handling_codes):
        yield ChangeKind.WIDENS, f"handling code {code} now accepted"
    for code in sorted(old.handling_codes - new.handling_codes):
        yield ChangeKind.NARROWS, f"handling code {code} no longer accepted"
    for category in DataCategory:
        before_rule = old.categories.rule_for(category)
        after_rule = new.categories.rule_for(category)
        if _CATEGORY_WORD[before_rule] == _CATEGORY_WORD[after_rule]:
            continue
        rank_change = _CATEGORY_RANK[after_rule] - _CATEGORY_RANK[before_rule]
        kind = (
            ChangeKind.WIDENS
            if rank_change > 0
            else (ChangeKind.NARROWS if rank_change < 0 else ChangeKind.CHANGES)
        )
        yield (
            kind,
            (
                f"data category {category} now {_CATEGORY_WORD[after_rule]} "
                f"(was {_CATEGORY_WORD[before_rule]})"
            ),
        )
    old_onward, new_onward = old.handling.onward_sharing, new.handling.onward_sharing
    if new_onward != old_onward:
        kind = (
            ChangeKind.WIDENS
            if new_onward.strictness < old_onward.strictness
            else (ChangeKind.NARROWS)
        )
        yield kind, f"onward sharing: {new_onward} (was {old_onward})"
    old_days, new_days = old.handling.retention_days, new.handling.retention_days
    if new_days != old_days:
        word = "extended" if new_days > old_days else "shortened"
        kind = ChangeKind.WIDENS if new_days > old_days else ChangeKind.NARROWS
        yield kind, f"retention {word} from {old_days} to {new_days} days"
    if new.rate_limit != old.rate_limit:
        kind = ChangeKind.WIDENS if _per_day(new) > _per_day(old) else ChangeKind.NARROWS
        yield kind, f"rate limit {new.rate_limit or 'none'} (was {old.rate_limit or 'none'})"


def _per_day(flow: Flow) -> float:
    rate = flow.rate
    if rate is None:
        return float("inf")
    return float(rate.count * (24 if rate.window == "hour" else 1))
