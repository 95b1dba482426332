"""The history check itself: pure, from client histories and what the partners hold.

Definitions (docs/RELIABILITY.md, after section A9 of the reliability anchors). For a logical
message ``k`` (a history key) and a recipient ``r``:

- acked: the client's history has ``ok`` for ``k``; ``allowed(k)`` is the ``invoke``'s
  ``allowed`` (default: every requested recipient) minus the recipients the sender refused.
- **lost**: ``k`` acked, ``r`` in ``allowed(k)``, and no message of ``k`` in ``r``'s inbox at
  the final read (taken after the drain timeout).
- **duplicated**: more than one stored message of ``k`` at ``r`` (the store keys by envelope
  id, so this catches a message re-sealed under a new id), or one envelope stored twice.
- **unauthorised**: a stored message of ``k`` at an ``r`` outside ``allowed(k)`` (or never
  requested), or any stored envelope with no ``allow`` audit record for that recipient.
- **unaccounted rejections**: an audit ``deny`` for (envelope, recipient) without exactly one
  quarantine record for it, a quarantine record with no audit ``deny``, or an envelope the
  client named as forbidden that is not quarantined exactly once.
- **unseen**: an audit ``allow`` for (envelope, recipient) whose envelope is not in that
  recipient's inbox at the final read: the gateway let it through and it never arrived.
- **rejected by recipient**: a view the gateway let through that its recipient's adapter
  refused and recorded in its ``rejected`` table with a reason (e.g. the sender's key was
  revoked under the recipient's newer registry). Such a view is quarantined with a reason, as
  §A9 allows, so it is neither lost nor unseen; it is listed separately with its reason code.
  A refusal accounts for a view only if it names the view: its envelope id for ``unseen``, its
  case id (the history key) for ``lost``, both taken from what the gateway attested.
- **unexpected refusals**: the sender refused a recipient the client expected to be allowed.

Sends with no definite outcome (``info`` or none) may be delivered once or not at all; they
are counted as ``indeterminate`` and still checked for duplication and authorisation.
Repeated audit records for one decision (a gateway crash between producing and committing)
are reported as ``audit_repeats``: the log stays verifiable, so they are a finding, not a fail.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from broker.checker.history import Event, EventType

__all__ = [
    "Audited",
    "Observations",
    "Quarantined",
    "Refused",
    "Stored",
    "Verdict",
    "check",
    "percentile",
]


@dataclasses.dataclass(frozen=True)
class Stored:
    """One message in a recipient's inbox store (metadata only)."""

    recipient: str
    message_id: str
    sender: str
    #: the case id inside the message: the history key of a driver's message
    key: str | None
    received_at: float
    receipt: bool = False


@dataclasses.dataclass(frozen=True)
class Quarantined:
    """One record of the quarantine topic."""

    id: str
    message_id: str | None
    sender: str | None
    recipient: str | None
    reason_code: str


@dataclasses.dataclass(frozen=True)
class Audited:
    """One audit record: the gateway's decision about one envelope for one recipient."""

    message_id: str | None
    sender: str | None
    recipient: str | None
    decision: str
    reason_code: str | None
    kind: str = "disclosure"
    #: for a ``refusal-summary``: how many quarantined refusals of ``sender`` it counts
    summarized: int = 0


@dataclasses.dataclass(frozen=True)
class Refused:
    """One delivery a recipient's adapter refused and recorded in its ``rejected`` table."""

    recipient: str
    #: the envelope id and sender, as verified or attested; ``None`` when nothing verified
    message_id: str | None
    sender: str | None
    #: the case id of the attested envelope: the history key of a driver's message
    key: str | None
    reason_code: str


@dataclasses.dataclass(frozen=True)
class Observations:
    """Everything read at the end of a run."""

    stored: Sequence[Stored]
    quarantined: Sequence[Quarantined]
    audited: Sequence[Audited]
    refused: Sequence[Refused] = ()
    #: records on the quarantine and audit topics that are not the gateway's (any bytes a
    #: writer put there): counted, never believed, never a reason to stop reading
    foreign: int = 0


Pair = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The checker's findings. ``passed`` is the gate; the object itself has no truth value."""

    lost: tuple[Pair, ...]
    duplicated: tuple[tuple[str, str, int], ...]
    unauthorised: tuple[tuple[str, str, str], ...]
    unaccounted_rejections: tuple[tuple[str, str, str], ...]
    unseen: tuple[Pair, ...]
    unexpected_refusals: tuple[Pair, ...]
    #: (envelope id, recipient, reason code): views quarantined by their recipient, not lost
    rejected_by_recipient: tuple[tuple[str, str, str], ...]
    indeterminate: int
    audit_repeats: int
    counts: dict[str, int]
    lags_s: tuple[float, ...]
    #: (when it was invoked, when it was first stored), per view stored, in the histories' clock
    stored_s: tuple[tuple[float, float], ...] = ()

    @property
    def passed(self) -> bool:
        """0 lost, duplicated, unauthorised, unaccounted, unseen and unexpectedly refused."""
        return not (
            self.lost
            or self.duplicated
            or self.unauthorised
            or self.unaccounted_rejections
            or self.unseen
            or self.unexpected_refusals
        )

    @property
    def worst_lag_s(self) -> float | None:
        """The longest time from ``invoke`` to storage at a recipient, if anything arrived."""
        return max(self.lags_s) if self.lags_s else None

    def __bool__(self) -> NoReturn:
        raise TypeError("a Verdict has no truth value: use .passed")

    def to_json(self) -> dict[str, Any]:
        """Counts and up to 20 examples of each anomaly, for reports."""
        return {
            "passed": self.passed,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "unauthorised": len(self.unauthorised),
            "unaccounted_rejections": len(self.unaccounted_rejections),
            "unseen": len(self.unseen),
            "unexpected_refusals": len(self.unexpected_refusals),
            "rejected_by_recipient": len(self.rejected_by_recipient),
            "rejected_by_recipient_reasons": dict(
                sorted(Counter(code for _, _, code in self.rejected_by_recipient).items())
            ),
            "indeterminate": self.indeterminate,
            "audit_repeats": self.audit_repeats,
            "worst_lag_s": self.worst_lag_s,
            "counts": dict(self.counts),
            "examples": {
                name: [list(item) for item in getattr(self, name)[:20]]
                for name in (
                    "lost",
                    "duplicated",
                    "unauthorised",
                    "unaccounted_rejections",
                    "unseen",
                    "unexpected_refusals",
                    "rejected_by_recipient",
                )
                if getattr(self, name)
            },
        }

    def summary(self) -> str:
        """One line: the verdict and every count."""
        worst = "-" if self.worst_lag_s is None else f"{self.worst_lag_s:.3f} s"
        return (
            f"{'PASS' if self.passed else 'FAIL'}: lost {len(self.lost)}, duplicated "
            f"{len(self.duplicated)}, unauthorised {len(self.unauthorised)}, unaccounted "
            f"rejections {len(self.unaccounted_rejections)}, unseen {len(self.unseen)}, "
            f"unexpected refusals {len(self.unexpected_refusals)}; rejected by recipient "
            f"{len(self.rejected_by_recipient)}, indeterminate "
            f"{self.indeterminate}, audit repeats {self.audit_repeats}, worst lag {worst}; "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        )


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` in (0, 1]) of ``values``, None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclasses.dataclass
class _Send:
    invoke: Event
    outcome: Event | None = None

    @property
    def allowed(self) -> set[str]:
        allowed = _expected(self.invoke) & set(self.invoke.recipients)
        refused = set(self.outcome.refused) if self.outcome is not None else set()
        return allowed - refused


def _expected(invoke: Event) -> set[str]:
    """The client's model: ``allowed`` when given (possibly empty), else every recipient."""
    return set(invoke.recipients if invoke.allowed is None else invoke.allowed)


def _sends(history: Iterable[Event]) -> dict[str, _Send]:
    sends: dict[str, _Send] = {}
    for event in history:
        if event.type is EventType.INVOKE:
            sends[event.key] = _Send(event)
        elif event.key in sends:
            send = sends[event.key]
            # a definite outcome (ok / fail) is never overridden by a later info
            if send.outcome is None or send.outcome.type is EventType.INFO:
                send.outcome = event
    return sends


def check(history: Iterable[Event], observed: Observations) -> Verdict:
    """Check the §A9 conditions of ``history`` against what ``observed`` holds."""
    sends = _sends(history)
    stored_by_pair: dict[Pair, list[Stored]] = defaultdict(list)
    stored_at: dict[str, set[str]] = defaultdict(set)
    envelope_copies = Counter((s.message_id, s.recipient) for s in observed.stored)
    for row in observed.stored:
        if row.key is not None and not row.receipt:
            stored_by_pair[(row.key, row.recipient)].append(row)
            stored_at[row.key].add(row.recipient)

    allowed_audit = {(a.message_id, a.recipient) for a in observed.audited if a.decision == "allow"}
    denied_audit = {(a.message_id, a.recipient) for a in observed.audited if a.decision == "deny"}
    audit_repeats = sum(
        n - 1
        for n in Counter((a.message_id, a.recipient, a.decision) for a in observed.audited).values()
    )
    refused_views: dict[Pair, set[tuple[str, str, str]]] = defaultdict(set)
    refused_envelopes: dict[Pair, set[tuple[str, str, str]]] = defaultdict(set)
    for refusal in observed.refused:
        if refusal.message_id is None:
            continue  # nothing verified names what it was: it accounts for no view
        entry = (refusal.message_id, refusal.recipient, refusal.reason_code)
        refused_envelopes[(refusal.message_id, refusal.recipient)].add(entry)
        if refusal.key is not None:
            refused_views[(refusal.key, refusal.recipient)].add(entry)
    rejected: set[tuple[str, str, str]] = set()
    quarantine_ids: dict[tuple[str | None, str | None], set[str]] = defaultdict(set)
    quarantine_sender: dict[tuple[str | None, str | None], str | None] = {}
    for q in observed.quarantined:
        quarantine_ids[(q.message_id, q.recipient)].add(q.id)
        quarantine_sender[(q.message_id, q.recipient)] = q.sender
    # refusals past the gateway's hourly number are audited by count, per sender, in summaries
    summarized = Counter[str | None]()
    for a in observed.audited:
        summarized[a.sender] += a.summarized

    lost: list[Pair] = []
    unexpected: list[Pair] = []
    duplicated: list[tuple[str, str, int]] = []
    unauthorised: list[tuple[str, str, str]] = []
    unaccounted: list[tuple[str, str, str]] = []
    lags: list[float] = []
    stored_s: list[tuple[float, float]] = []
    indeterminate = 0
    for key, send in sends.items():
        outcome = send.outcome.type if send.outcome is not None else EventType.INFO
        indeterminate += outcome is EventType.INFO
        expected = _expected(send.invoke)
        if send.outcome is not None and outcome is EventType.OK:
            unexpected += [(key, r) for r in sorted(expected & set(send.outcome.refused))]
        allowed = send.allowed if outcome is not EventType.FAIL else set()
        for recipient in sorted(set(send.invoke.recipients) | stored_at[key]):
            rows = stored_by_pair.get((key, recipient), [])
            if len(rows) > 1:
                duplicated.append((key, recipient, len(rows)))
            if rows and recipient not in expected:
                unauthorised.append((key, recipient, "recipient outside the client's model"))
            elif rows and recipient not in allowed and outcome is not EventType.INFO:
                unauthorised.append((key, recipient, "recipient refused by the sender"))
            if rows:
                first = min(r.received_at for r in rows)
                lags.append(first - send.invoke.time)
                stored_s.append((send.invoke.time, first))
            elif outcome is EventType.OK and recipient in allowed:
                if (key, recipient) in refused_views:
                    rejected |= refused_views[(key, recipient)]
                else:
                    lost.append((key, recipient))
        for recipient, message_id in sorted(send.invoke.envelopes.items()):
            if recipient not in expected and len(quarantine_ids[(message_id, recipient)]) != 1:
                unaccounted.append(
                    (message_id, recipient, "forbidden envelope not quarantined exactly once")
                )
    # rows whose key the histories do not know: stored at a recipient nobody sent to
    for (key, recipient), rows in stored_by_pair.items():
        if key not in sends:
            unauthorised.append((key, recipient, f"{len(rows)} stored with no send in history"))

    for (message_id, recipient), copies in envelope_copies.items():
        if copies > 1:
            duplicated.append((message_id, recipient, copies))
        if (message_id, recipient) not in allowed_audit:
            unauthorised.append((message_id, recipient, "stored without an allow in the audit"))
    stored_envelopes = set(envelope_copies)
    unseen: list[Pair] = []
    missing: list[Pair] = sorted(
        (m, r)
        for m, r in allowed_audit
        if m is not None and r is not None and (m, r) not in stored_envelopes
    )
    for m, r in missing:
        if (m, r) in refused_envelopes:
            rejected |= refused_envelopes[(m, r)]
        else:
            unseen.append((m, r))
    for denied in sorted(denied_audit, key=str):
        found = len(quarantine_ids.get(denied, ()))
        if found != 1:
            unaccounted.append(
                (str(denied[0]), str(denied[1]), f"denied, {found} quarantine records")
            )
    for held, ids in quarantine_ids.items():
        if held[0] is not None and held not in denied_audit:
            sender = quarantine_sender[held]
            if summarized[sender] >= len(ids):
                summarized[sender] -= len(ids)  # counted in a refusal summary
                continue
            unaccounted.append(
                (held[0], str(held[1]), f"{len(ids)} quarantined without an audit deny")
            )

    counts = {
        "invoked": len(sends),
        "acked": sum(1 for s in sends.values() if s.outcome and s.outcome.type is EventType.OK),
        "failed": sum(1 for s in sends.values() if s.outcome and s.outcome.type is EventType.FAIL),
        "stored": len(observed.stored),
        "quarantined": sum(len(ids) for ids in quarantine_ids.values()),
        "audited": len(observed.audited),
        "refused_by_recipients": len(observed.refused),
        "foreign_records": observed.foreign,
    }
    return Verdict(
        lost=tuple(lost),
        duplicated=tuple(duplicated),
        unauthorised=tuple(unauthorised),
        unaccounted_rejections=tuple(unaccounted),
        unseen=tuple(unseen),
        unexpected_refusals=tuple(unexpected),
        rejected_by_recipient=tuple(sorted(rejected)),
        indeterminate=indeterminate,
        audit_repeats=audit_repeats,
        counts=counts,
        lags_s=tuple(lags),
        stored_s=tuple(stored_s),
    )
