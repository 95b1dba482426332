"""The pure decision engine: an accord, a request and a time in, a decision out.

Nothing here reads the clock, keeps state or does I/O: the daemon passes ``now`` and the rate
counters, replay passes the recorded ones, and the same inputs always give the same decision.

Semantics (Cedar-like): default deny; a message must match exactly one flow (direction and
type) and pass every check of it; any failed check denies, and every failed check is reported,
not only the first, so an operator sees everything that has to change. Data categories are
allowed, redacted or denied per flow; a category the flow does not list is denied.

The gateway decides on the signed labels of a view that the sender has already redacted, so a
category marked ``redact`` still present in those labels means the sender did not redact: deny.
The sending adapter decides on the full content (:func:`evaluate_content`), where the same
category becomes an obligation to redact before sealing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any, NoReturn

from broker.errors import UsageError
from broker.ids import AccordId, PartnerCode
from broker.policy.model import PERSONAL_CATEGORIES, Accord, Flow, OnwardSharing, RateLimit
from broker.reasons import ReasonCode
from broker.schema import equivalence_partners, from_gsc
from broker.schema.labels import TLP, Classification, DataCategory, HandlingCode, Labels

__all__ = [
    "Decision",
    "Outcome",
    "Request",
    "evaluate",
    "evaluate_content",
    "out_of_force",
    "rule_ids",
]


class Outcome(enum.StrEnum):
    """What happens to a message on a flow."""

    ALLOW = "allow"
    REDACT = "redact"  # allowed once the listed categories are removed (sender side only)
    DENY = "deny"


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """What a decision is about: the labels of one view, who sends it and to whom."""

    labels: Labels
    sender: PartnerCode
    recipient: PartnerCode


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The outcome with its explanation record and the obligations the recipient accepts.

    Deliberately not truthy: write ``decision.permits`` or compare ``decision.outcome``.
    """

    outcome: Outcome
    accord: AccordId
    accord_version: int
    flow: str | None
    rule_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    redact: frozenset[DataCategory] = frozenset()
    retention_days: int | None = None
    onward_sharing: OnwardSharing | None = None
    rate_counter: str | None = None  # the counter the caller increments when it delivers
    #: the limit ``rate_counter`` counts against (its window), when the flow has one
    rate: RateLimit | None = None
    #: why, when the outcome is DENY: the stable code senders and the gateway report
    reason_code: ReasonCode | None = None

    @property
    def permits(self) -> bool:
        """True when the message (or its redacted view) may be delivered."""
        return self.outcome is not Outcome.DENY

    def __bool__(self) -> NoReturn:
        raise TypeError("a Decision is not a boolean; use .permits or .outcome")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record for audit logs and ``broker policy explain --json``."""
        return {
            "outcome": str(self.outcome),
            "accord": self.accord,
            "accord_version": self.accord_version,
            "flow": self.flow,
            "rule_ids": list(self.rule_ids),
            "reasons": list(self.reasons),
            "redact": sorted(str(c) for c in self.redact),
            "retention_days": self.retention_days,
            "onward_sharing": None if self.onward_sharing is None else str(self.onward_sharing),
        }


def evaluate(
    accord: Accord,
    request: Request,
    *,
    now: dt.datetime,
    counters: Mapping[str, int],
) -> Decision:
    """The gateway's decision on the labels of an already-redacted view."""
    return _decide(accord, request, now=now, counters=counters, content_side=False)


def evaluate_content(
    accord: Accord,
    request: Request,
    *,
    now: dt.datetime,
    counters: Mapping[str, int],
) -> Decision:
    """The sender's decision on the full content's labels: redact categories become obligations."""
    return _decide(accord, request, now=now, counters=counters, content_side=True)


def rule_ids(accord: Accord) -> tuple[str, ...]:
    """Every rule id a decision on this accord can cite (for test coverage reports)."""
    ids = [f"{accord.accord}.parties", f"{accord.accord}.in-force", f"{accord.accord}.no-flow"]
    for flow in accord.flows:
        ids += [flow.id, *(f"{flow.id}.{check}" for check in _CHECKS)]
        if flow.categories.redact:
            ids.append(f"{flow.id}.categories.redact")
        if flow.categories.deny:
            ids.append(f"{flow.id}.categories.deny")
        if set(DataCategory) - (
            flow.categories.allow | flow.categories.redact | flow.categories.deny
        ):
            ids.append(f"{flow.id}.categories.unlisted")
        if flow.rate_limit is not None:
            ids.append(f"{flow.id}.rate-limit")
    return tuple(ids)


_CHECKS = ("purposes", "classification", "tlp", "handling")

# What a handling code and a TLP level already imply for onward sharing, whatever the accord says.
_IMPLIED_BY_HANDLING = {HandlingCode.H2: OnwardSharing.WITH_ORIGINATOR_CONSENT}
_IMPLIED_BY_TLP = {
    TLP.AMBER_STRICT: OnwardSharing.WITH_ORIGINATOR_CONSENT,
    TLP.RED: OnwardSharing.NEVER,
}


def _national(partner: str, level: Classification) -> str:
    # The recipient's own marking for the ceiling, from broker.schema's equivalence tables.
    code = PartnerCode(partner)
    if code not in equivalence_partners():
        return ""
    marking = from_gsc(code, level)
    if marking.marking is None:
        return f" ({partner}: unmarked)"
    latin = f" / {marking.latin}" if marking.latin and marking.latin != marking.marking else ""
    return f" ({partner}: {marking.marking}{latin})"


def _decide(
    accord: Accord,
    request: Request,
    *,
    now: dt.datetime,
    counters: Mapping[str, int],
    content_side: bool,
) -> Decision:
    if now.tzinfo is None:
        raise UsageError("policy decisions need a timezone-aware time")
    labels, sender, recipient = request.labels, request.sender, request.recipient

    def deny(rule: str, code: ReasonCode, *reasons: str) -> Decision:
        return Decision(
            Outcome.DENY,
            accord.accord_id,
            accord.version,
            None,
            (rule,),
            reasons,
            reason_code=code,
        )

    parties = accord.parties
    strangers = (
        []
        if sender in parties and recipient in parties
        else [p for p in (sender, recipient) if p not in parties]
    )
    if strangers:
        return deny(
            f"{accord.accord}.parties",
            ReasonCode.POLICY_DENIED,
            f"{' and '.join(strangers)} {'is' if len(strangers) == 1 else 'are'} not a "
            f"party to accord {accord.accord} (parties: {', '.join(accord.parties)})",
        )
    lapsed = out_of_force(accord, now=now)
    if lapsed is not None:
        return lapsed
    # The loader guarantees at most one flow per direction and type.
    flow = accord.routes.get((sender, recipient, labels.message_type))
    if flow is not None:
        return _decide_on_flow(accord, flow, labels, counters, content_side=content_side)
    if (sender, recipient) not in accord.directions:
        return deny(
            f"{accord.accord}.no-flow",
            ReasonCode.POLICY_DENIED,
            f"the accord opens no flow from {sender} to {recipient}",
        )
    carried = sorted(
        {
            str(t)
            for f in accord.flows
            if (f.sender, f.recipient) == (sender, recipient)
            for t in f.types
        }
    )
    return deny(
        f"{accord.accord}.no-flow",
        ReasonCode.POLICY_DENIED,
        f"{labels.message_type} is not a message type the accord allows from "
        f"{sender} to {recipient} (allowed: {', '.join(carried)})",
    )


def out_of_force(accord: Accord, *, now: dt.datetime) -> Decision | None:
    """The denial of every flow of ``accord`` when it is not in force at ``now``, else None."""
    effective_from, expires_at = accord.in_force
    if effective_from <= now < expires_at:
        return None
    if now < effective_from:
        code = ReasonCode.ACCORD_NOT_YET_EFFECTIVE
        why = (
            f"accord {accord.accord} v{accord.version} is not in force until "
            f"{accord.effective_text}"
        )
    else:
        code = ReasonCode.ACCORD_EXPIRED
        why = f"accord {accord.accord} v{accord.version} expired {accord.expires_when}"
    return Decision(
        Outcome.DENY,
        accord.accord_id,
        accord.version,
        None,
        (f"{accord.accord}.in-force",),
        (why,),
        reason_code=code,
    )


def _decide_on_flow(
    accord: Accord,
    flow: Flow,
    labels: Labels,
    counters: Mapping[str, int],
    *,
    content_side: bool,
) -> Decision:
    denied: list[tuple[str, str]] = []
    if not labels.purposes <= flow.purposes:
        outside = sorted(str(p) for p in labels.purposes - flow.purposes)
        denied.append(
            (
                f"{flow.id}.purposes",
                f"purpose {', '.join(outside)} is not allowed on {flow.direction} "
                f"(allowed: {', '.join(sorted(flow.purposes))})",
            )
        )
    if labels.classification.rank > flow.max_classification.rank:
        denied.append(
            (
                f"{flow.id}.classification",
                f"classification {labels.classification} is above the ceiling "
                f"{flow.max_classification}{_national(flow.recipient, flow.max_classification)} "
                f"for {flow.direction}",
            )
        )
    if labels.tlp.rank > flow.max_tlp.rank:
        denied.append(
            (
                f"{flow.id}.tlp",
                f"TLP:{labels.tlp} is above the ceiling TLP:{flow.max_tlp} for {flow.direction}",
            )
        )
    if labels.handling not in flow.handling_codes:
        denied.append(
            (
                f"{flow.id}.handling",
                f"handling code {labels.handling} is not accepted on {flow.direction} "
                f"(accepted: {', '.join(sorted(flow.handling_codes))})",
            )
        )
    to_redact: set[DataCategory] = set()
    # Most messages carry only allowed categories; the per-category walk is for the rest.
    unusual = () if labels.data_categories <= flow.categories.allow else labels.data_categories
    rule_of = flow.categories.by_category
    for category in sorted(unusual):
        rule = rule_of[category]
        if rule == "deny":
            denied.append(
                (
                    f"{flow.id}.categories.deny",
                    f"data category {category} is never shared on {flow.direction}",
                )
            )
        elif rule == "unlisted":
            why = (
                " (a strategic flow carries no personal data)"
                if flow.tier == "strategic" and category in PERSONAL_CATEGORIES
                else ""
            )
            denied.append(
                (
                    f"{flow.id}.categories.unlisted",
                    f"data category {category} is not permitted on {flow.direction}{why}",
                )
            )
        elif rule == "redact" and not content_side:
            denied.append(
                (
                    f"{flow.id}.categories.redact",
                    f"data category {category} must be redacted before sending to "
                    f"{flow.recipient}, but the labels show it present",
                )
            )
        elif rule == "redact":
            to_redact.add(category)
    limit = flow.rate
    if limit is not None and counters.get(flow.id, 0) >= limit.count:
        denied.append(
            (
                f"{flow.id}.rate-limit",
                f"rate limit {limit} on {flow.direction} reached "
                f"({counters.get(flow.id, 0)} already sent in this window)",
            )
        )
    if denied:
        only_rate = all(rule == f"{flow.id}.rate-limit" for rule, _ in denied)
        return Decision(
            Outcome.DENY,
            accord.accord_id,
            accord.version,
            flow.id,
            tuple(dict.fromkeys(rule for rule, _ in denied)),
            tuple(reason for _, reason in denied),
            reason_code=ReasonCode.RATE_LIMITED if only_rate else ReasonCode.POLICY_DENIED,
        )
    # The strictest of what the accord, the handling code and the TLP level each demand.
    onward = flow.handling.onward_sharing
    for implied in (_IMPLIED_BY_HANDLING.get(labels.handling), _IMPLIED_BY_TLP.get(labels.tlp)):
        if implied is not None and implied.strictness > onward.strictness:
            onward = implied
    allowed, obligations = flow.allow_wording[labels.message_type, onward]
    if to_redact:
        rules: tuple[str, ...] = (flow.id, f"{flow.id}.categories.redact")
        removal = (
            f"remove {', '.join(sorted(to_redact))} before sending "
            f"(the accord requires redaction for {flow.recipient})"
        )
        reasons: tuple[str, ...] = (allowed, removal, obligations)
    else:
        rules, reasons = (flow.id,), (allowed, obligations)
    return Decision(
        Outcome.REDACT if to_redact else Outcome.ALLOW,
        accord.accord_id,
        accord.version,
        flow.id,
        rules,
        reasons,
        redact=frozenset(to_redact),
        retention_days=flow.handling.retention_days,
        onward_sharing=onward,
        rate_counter=flow.id if limit is not None else None,
        rate=limit,
    )
