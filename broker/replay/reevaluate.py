"""Replay: re-evaluate every recorded policy decision with the accord version it names.

Each audit record of a policy decision names the accord digest it was decided under and the
time (``decided_at``). Replay looks that exact accord version up (never the one in force
today), calls :func:`broker.policy.evaluate` with the recorded time as ``now``, and compares
the outcome and the rule ids with the record. Anything else is a disagreement.

Records verification found not to be authenticated gateway records (``exclude``) are not
re-evaluated: they are counted as ``unauthenticated``, so a forged decision never reads as one
the accord allowed. Not every record is a policy decision: a refusal before the policy step
(malformed, bad signature, unknown key, replay conflict...) has nothing to re-evaluate and is
counted by its reason. Rate counters are daemon state, not in the record: a refusal recorded as
``rate_limited`` is re-evaluated with its flow's counter at the limit, so everything else in
it is still checked; an allowed decision is re-evaluated with no counts.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Container, Iterable, Mapping

from broker import errors
from broker.ids import PartnerCode
from broker.ledger import is_checkpoint_record
from broker.pipeline.records import (
    AuditKind,
    AuditRecord,
    ReasonCode,
    parse_audit_record,
    parse_time,
)
from broker.policy import Accord, Outcome, Request, evaluate
from broker.replay.acts import ActEvidence
from broker.replay.bundle import Entry

__all__ = ["Disagreement", "ReplayReport", "replay_entries"]

#: reason codes the policy engine itself produces: the decisions replay can check
_POLICY_REASONS = frozenset(
    {
        ReasonCode.POLICY_DENIED,
        ReasonCode.RATE_LIMITED,
        ReasonCode.ACCORD_EXPIRED,
        ReasonCode.ACCORD_NOT_YET_EFFECTIVE,
    }
)
_HALTS = frozenset({ReasonCode.ACCORD_SUSPENDED, ReasonCode.ACCORD_TERMINATED})
_PROGRESS_EVERY = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Disagreement:
    """A recorded decision that the named accord version does not reproduce."""

    index: int
    message_id: str | None
    detail: str


@dataclasses.dataclass(frozen=True)
class ReplayReport:
    """What replay found. Ask ``.agrees``; it has no truth value."""

    records: int
    reevaluated: int
    disagreements: tuple[Disagreement, ...]
    #: records not re-evaluated, by why (the refusal reason, or ``unreadable``)
    skipped: Mapping[str, int]
    #: how many decisions each accord version (``<id> v<version>``) re-evaluated
    by_accord: Mapping[str, int]
    #: ``accord_act`` records proven against the acts files given (0 when none were given)
    acts_proven: int = 0
    #: ``accord_act`` records left unproven because no acts files were given
    acts_unproven: int = 0

    @property
    def agrees(self) -> bool:
        """Every re-evaluated decision came out as recorded."""
        return not self.disagreements

    def __bool__(self) -> bool:
        raise TypeError("a ReplayReport has no truth value; use .agrees")


def replay_entries(
    entries: Iterable[Entry],
    *,
    accords: Mapping[str, Accord],
    exclude: Container[int] = frozenset(),
    progress: Callable[[int], None] | None = None,
    acts: ActEvidence | None = None,
) -> ReplayReport:
    """Re-evaluate every policy decision in ``entries`` (streamed, one record at a time).

    ``accords`` maps accord digests to accords; ``exclude`` holds the record indices to leave
    out (:attr:`VerifyReport.unauthenticated`); ``progress`` is called with the number of
    records done every thousand records and at the end; ``acts``, when given, must prove every
    ``accord_act`` record (an unproven one is a disagreement).
    """
    index = reevaluated = 0
    disagreements: list[Disagreement] = []
    skipped: collections.Counter[str] = collections.Counter()
    by_accord: collections.Counter[str] = collections.Counter()
    halted: dict[str, ReasonCode] = {}  # accord id -> suspended or terminated, as logged
    act_records = acts_proven = 0
    for entry in entries:
        if not entry.damaged and is_checkpoint_record(entry.value):
            continue
        if index in exclude:
            skipped["unauthenticated"] += 1
        else:
            record = _parse(entry)
            if record is None:
                skipped["unreadable"] += 1
            else:
                if record.kind is AuditKind.ACCORD_ACT:
                    act_records += 1
                    problem = None if acts is None else acts.problem(record)
                    if problem is not None:
                        disagreements.append(Disagreement(index, None, problem))
                    elif acts is not None:
                        acts_proven += 1
                reevaluated += _replay_one(
                    index, record, accords, disagreements, skipped, by_accord, halted
                )
        index += 1
        if progress is not None and index % _PROGRESS_EVERY == 0:
            progress(index)
    if progress is not None:
        progress(index)
    return ReplayReport(
        index,
        reevaluated,
        tuple(disagreements),
        dict(skipped),
        dict(by_accord),
        acts_proven=acts_proven,
        acts_unproven=act_records if acts is None else 0,
    )


def _parse(entry: Entry) -> AuditRecord | None:
    try:
        return parse_audit_record(entry.value)
    except errors.SchemaError:
        return None


def _replay_one(
    index: int,
    record: AuditRecord,
    accords: Mapping[str, Accord],
    disagreements: list[Disagreement],
    skipped: collections.Counter[str],
    by_accord: collections.Counter[str],
    halted: dict[str, ReasonCode],
) -> int:
    """Re-evaluate one record; 1 if it was a policy decision, else 0 (counted by why)."""
    problem = _against_acts(record, halted)
    if problem is not None:
        disagreements.append(Disagreement(index, record.message_id, problem))
    inputs = _policy_inputs(record)
    if isinstance(inputs, str):
        skipped[inputs] += 1
        return 0
    problem = _reevaluate(record, *inputs, accords=accords, by_accord=by_accord)
    if problem is not None:
        disagreements.append(Disagreement(index, record.message_id, problem))
    return 1


def _against_acts(record: AuditRecord, halted: dict[str, ReasonCode]) -> str | None:
    """Follow the signed acts in the log: nothing is delivered under an accord while a party
    has it suspended or terminated, and nothing is refused as such unless it is."""
    accord = record.accord_id
    if accord is None:
        return None
    if record.kind is AuditKind.ACCORD_ACT:
        if record.reason_code is None:
            halted.pop(accord, None)
        else:
            halted[accord] = record.reason_code
        return None
    halt = halted.get(accord)
    if halt is not None and record.decision == "allow":
        return f"delivered under {accord} while the log shows it {halt}"
    if record.reason_code in _HALTS and record.reason_code is not halt:
        return f"refused as {record.reason_code}, but the log shows no such act on {accord}"
    return None


def _policy_inputs(record: AuditRecord) -> tuple[Request, str] | str:
    """The request and accord digest of a policy decision, or why the record is not one."""
    if record.reason_code is not None and record.reason_code not in _POLICY_REASONS:
        return str(record.reason_code)
    labels, sender, recipient = record.labels, record.sender, record.recipient
    if labels is None or sender is None or recipient is None or record.accord_digest is None:
        return "incomplete"
    request = Request(labels=labels, sender=PartnerCode(sender), recipient=PartnerCode(recipient))
    return request, record.accord_digest


def _reevaluate(
    record: AuditRecord,
    request: Request,
    digest: str,
    *,
    accords: Mapping[str, Accord],
    by_accord: collections.Counter[str],
) -> str | None:
    accord = accords.get(digest)
    if accord is None:
        return f"accord version {digest[:16]}... is not in the bundle"
    if accord.accord != record.accord_id or accord.version != record.accord_version:
        return (
            f"the record names {record.accord_id} v{record.accord_version} but its digest is "
            f"{accord.accord} v{accord.version}"
        )
    by_accord[f"{accord.accord} v{accord.version}"] += 1
    counters = _recorded_counters(record, accord)
    decision = evaluate(accord, request, now=parse_time(record.decided_at), counters=counters)
    outcome = "allow" if decision.outcome is Outcome.ALLOW else "deny"
    if outcome != record.decision:
        return (
            f"recorded {record.decision}, the accord gives {outcome}: {'; '.join(decision.reasons)}"
        )
    if tuple(decision.rule_ids) != tuple(record.rule_ids):
        return (
            f"recorded rules {', '.join(record.rule_ids) or '(none)'}, the accord gives "
            f"{', '.join(decision.rule_ids) or '(none)'}"
        )
    return None


def _recorded_counters(record: AuditRecord, accord: Accord) -> dict[str, int]:
    if record.reason_code is not ReasonCode.RATE_LIMITED:
        return {}
    limited = {rule.removesuffix(".rate-limit") for rule in record.rule_ids}
    return {
        flow.id: flow.rate.count
        for flow in accord.flows
        if flow.id in limited and flow.rate is not None
    }
