"""The history checker on synthetic histories: a clean run passes, and each anomaly of the
§A9 definitions is detected, by itself, in its own class."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.checker import (
    Audited,
    Event,
    EventType,
    Observations,
    Quarantined,
    Refused,
    Stored,
    Verdict,
    check,
    percentile,
)

T0 = 1_800_000_000.0


def _send(key: str, to: tuple[str, ...], *, allowed: tuple[str, ...] | None = None) -> list[Event]:
    return [
        Event(EventType.INVOKE, "GB", key, T0, recipients=to, allowed=allowed),
        Event(EventType.OK, "GB", key, T0 + 0.1, recipients=to),
    ]


@dataclasses.dataclass
class Run:
    """A history and observations that can be spoiled one way at a time."""

    history: list[Event]
    stored: list[Stored]
    quarantined: list[Quarantined]
    audited: list[Audited]
    refused: list[Refused] = dataclasses.field(default_factory=list)

    def verdict(self) -> Verdict:
        return check(
            self.history,
            Observations(self.stored, self.quarantined, self.audited, self.refused),
        )


def _clean() -> Run:
    """k1 to RS and MK (both delivered); k2 to RS and XK with XK forbidden (quarantined)."""
    history = [
        *_send("k1", ("RS", "MK")),
        Event(
            EventType.INVOKE,
            "GB",
            "k2",
            T0,
            recipients=("RS", "XK"),
            allowed=("RS",),
            envelopes={"XK": "e2x"},
        ),
        Event(EventType.OK, "GB", "k2", T0 + 0.1, recipients=("RS", "XK")),
    ]
    stored = [
        Stored("RS", "e1r", "GB", "k1", T0 + 0.5),
        Stored("MK", "e1m", "GB", "k1", T0 + 0.7),
        Stored("RS", "e2r", "GB", "k2", T0 + 0.4),
        Stored("GB", "rc1", "RS", "k1", T0 + 0.9, receipt=True),
    ]
    audited = [
        Audited("e1r", "GB", "RS", "allow", None),
        Audited("e1m", "GB", "MK", "allow", None),
        Audited("e2r", "GB", "RS", "allow", None),
        Audited("e2x", "GB", "XK", "deny", "policy_denied", kind="refusal"),
        Audited("rc1", "RS", "GB", "allow", None, kind="receipt"),
    ]
    quarantined = [Quarantined("o.GB/0/7", "e2x", "GB", "XK", "policy_denied")]
    return Run(history, stored, quarantined, audited)


def test_a_clean_run_passes_and_reports_the_worst_lag() -> None:
    """Everything acked and allowed is stored once, the refusal is quarantined once."""
    verdict = _clean().verdict()
    assert verdict.passed, verdict.summary()
    assert verdict.worst_lag_s == pytest.approx(0.7)
    # each stored view's invocation and first storage, for a soak's drain after a fault
    assert len(verdict.stored_s) == len(verdict.lags_s)
    assert [s - i for i, s in verdict.stored_s] == pytest.approx(list(verdict.lags_s))
    assert {i for i, _ in verdict.stored_s} <= {T0}
    assert verdict.counts["acked"] == 2
    assert verdict.audit_repeats == 0


def _lose(run: Run) -> None:
    run.stored = [s for s in run.stored if s.message_id != "e1m"]
    run.audited = [a for a in run.audited if a.message_id != "e1m"]


def _drop_after_gateway(run: Run) -> None:
    run.stored = [s for s in run.stored if s.message_id != "e1m"]


def _resealed(run: Run) -> None:
    run.stored.append(Stored("MK", "e1m-again", "GB", "k1", T0 + 2))
    run.audited.append(Audited("e1m-again", "GB", "MK", "allow", None))


def _envelope_twice(run: Run) -> None:
    run.stored.append(run.stored[0])


def _forbidden_stored(run: Run) -> None:
    run.stored.append(Stored("XK", "e2x", "GB", "k2", T0 + 1))
    run.audited.append(Audited("e2x", "GB", "XK", "allow", None))


def _never_requested(run: Run) -> None:
    run.stored.append(Stored("AL", "e1a", "GB", "k1", T0 + 1))
    run.audited.append(Audited("e1a", "GB", "AL", "allow", None))


def _no_audit(run: Run) -> None:
    run.audited = [a for a in run.audited if a.message_id != "e1r"]


def _unknown_key(run: Run) -> None:
    run.stored.append(Stored("RS", "e9", "GB", "k9", T0 + 1))
    run.audited.append(Audited("e9", "GB", "RS", "allow", None))


def _quarantine_missing(run: Run) -> None:
    run.quarantined = []


def _quarantine_twice(run: Run) -> None:
    run.quarantined.append(Quarantined("o.GB/1/3", "e2x", "GB", "XK", "policy_denied"))


def _quarantine_unaudited(run: Run) -> None:
    run.quarantined.append(Quarantined("o.GB/2/1", "e7", "GB", "RS", "bad_signature"))


def _refused_by_sender(run: Run) -> None:
    run.history[1] = dataclasses.replace(run.history[1], refused=("MK",))
    run.stored = [s for s in run.stored if s.message_id != "e1m"]
    run.audited = [a for a in run.audited if a.message_id != "e1m"]


def _stored_after_fail(run: Run) -> None:
    run.history[1] = dataclasses.replace(run.history[1], type=EventType.FAIL)


CASES: dict[str, tuple[Callable[[Run], None], str]] = {
    "acked view never stored nor routed": (_lose, "lost"),
    "routed view never stored": (_drop_after_gateway, "lost+unseen"),
    "message re-sealed under a new envelope id": (_resealed, "duplicated"),
    "one envelope stored twice": (_envelope_twice, "duplicated"),
    "forbidden recipient got it": (_forbidden_stored, "unauthorised"),
    "a recipient nobody asked for got it": (_never_requested, "unauthorised"),
    "stored with no allow in the audit": (_no_audit, "unauthorised"),
    "stored with no send in any history": (_unknown_key, "unauthorised"),
    "refusal not quarantined": (_quarantine_missing, "unaccounted_rejections"),
    "refusal quarantined twice": (_quarantine_twice, "unaccounted_rejections"),
    "quarantined without an audit deny": (_quarantine_unaudited, "unaccounted_rejections"),
    "sender refused an allowed recipient": (_refused_by_sender, "unexpected_refusals"),
    "stored although the send failed": (_stored_after_fail, "unauthorised"),
}
CLASSES = (
    "lost",
    "duplicated",
    "unauthorised",
    "unaccounted_rejections",
    "unseen",
    "unexpected_refusals",
)


@pytest.mark.parametrize("name", CASES)
def test_each_anomaly_is_detected_in_its_own_class(name: str) -> None:
    """Spoiling a clean run one way fails the verdict in exactly the expected classes."""
    spoil, expected = CASES[name]
    run = _clean()
    spoil(run)
    verdict = run.verdict()
    assert not verdict.passed
    flagged = {c for c in CLASSES if getattr(verdict, c)}
    assert flagged == set(expected.split("+")), verdict.summary()


def test_an_indeterminate_send_may_arrive_once_or_not_at_all() -> None:
    """A send with only ``info`` is neither lost when absent nor wrong when stored once."""
    run = _clean()
    run.history[1] = dataclasses.replace(run.history[1], type=EventType.INFO)
    assert run.verdict().passed
    assert run.verdict().indeterminate == 1
    _drop_after_gateway(run)
    run.audited = [a for a in run.audited if a.message_id != "e1m"]
    assert run.verdict().passed
    _resealed(run)
    _resealed(run)
    assert run.verdict().duplicated


def _forbidden_send(*, outcome: Event) -> Run:
    run = _clean()
    run.history += [
        Event(EventType.INVOKE, "GB", "k3", T0, recipients=("XK",), allowed=()),
        outcome,
    ]
    return run


def test_a_send_the_model_forbids_passes_when_the_sender_refuses_it() -> None:
    """``allowed=()`` means no recipient may get it: a ``fail`` (or an ``ok`` refusing XK) is
    the expected outcome, and a copy stored at XK is unauthorised."""
    failed = _forbidden_send(outcome=Event(EventType.FAIL, "GB", "k3", T0, recipients=("XK",)))
    assert failed.verdict().passed
    refused = _forbidden_send(
        outcome=Event(EventType.OK, "GB", "k3", T0, recipients=("XK",), refused=("XK",))
    )
    assert refused.verdict().passed
    failed.stored.append(Stored("XK", "e3x", "GB", "k3", T0 + 1))
    failed.audited.append(Audited("e3x", "GB", "XK", "allow", None))
    assert {u[:2] for u in failed.verdict().unauthorised} == {("k3", "XK")}


def test_repeated_audit_records_are_a_finding_not_a_failure() -> None:
    """A gateway crash may write one decision twice; the verdict counts it and still passes."""
    run = _clean()
    run.audited.append(run.audited[0])
    verdict = run.verdict()
    assert verdict.passed
    assert verdict.audit_repeats == 1


def test_a_verdict_has_no_truth_value() -> None:
    """``if verdict:`` would be a bug waiting to happen: it raises."""
    with pytest.raises(TypeError):
        bool(_clean().verdict())


def test_the_json_report_counts_every_class() -> None:
    """The report names each anomaly count and gives examples only of what was found."""
    run = _clean()
    _lose(run)
    report = run.verdict().to_json()
    assert report["passed"] is False
    assert report["lost"] == 1
    assert report["examples"] == {"lost": [["k1", "MK"]]}


def test_a_view_its_recipient_refused_with_a_reason_is_quarantined_not_lost() -> None:
    """The revocation race: the gateway allowed e1m to MK, MK's adapter refused it and recorded
    why. Quarantined with a reason, as §A9 allows: the run passes and the view is reported in
    its own class with its reason code."""
    run = _clean()
    _drop_after_gateway(run)
    run.refused = [Refused("MK", "e1m", "GB", "k1", "unknown_key")]
    verdict = run.verdict()
    assert verdict.passed, verdict.summary()
    assert (verdict.lost, verdict.unseen) == ((), ())
    assert verdict.rejected_by_recipient == (("e1m", "MK", "unknown_key"),)
    report = verdict.to_json()
    assert report["rejected_by_recipient"] == 1
    assert report["rejected_by_recipient_reasons"] == {"unknown_key": 1}
    assert report["examples"] == {"rejected_by_recipient": [["e1m", "MK", "unknown_key"]]}
    assert "rejected by recipient 1" in verdict.summary()


_NOT_THIS_VIEW = {
    "nothing verified names it": Refused("MK", None, None, None, "bad_attestation"),
    "another recipient refused it": Refused("RS", "e1m", "GB", "k1", "unknown_key"),
    "another message was refused": Refused("MK", "e9", "GB", "k9", "unknown_key"),
}


@pytest.mark.parametrize("refusal", _NOT_THIS_VIEW.values(), ids=list(_NOT_THIS_VIEW))
def test_a_refusal_accounts_only_for_the_view_it_names(refusal: Refused) -> None:
    """A refused delivery that does not name the missing view leaves it lost and unseen."""
    run = _clean()
    _drop_after_gateway(run)
    run.refused = [refusal]
    verdict = run.verdict()
    assert {c for c in CLASSES if getattr(verdict, c)} == {"lost", "unseen"}
    assert verdict.rejected_by_recipient == ()
    assert verdict.counts["refused_by_recipients"] == 1


def test_a_refused_receipt_is_not_unseen() -> None:
    """Receipts have no history key: the envelope id alone accounts for one GB refused."""
    run = _clean()
    run.stored = [s for s in run.stored if s.message_id != "rc1"]
    assert run.verdict().unseen == (("rc1", "GB"),)
    run.refused = [Refused("GB", "rc1", "RS", None, "bad_signature")]
    verdict = run.verdict()
    assert verdict.passed, verdict.summary()
    assert verdict.rejected_by_recipient == (("rc1", "GB", "bad_signature"),)


def test_a_refused_copy_of_a_stored_view_is_only_counted() -> None:
    """A refusal of a view that also arrived (e.g. a tampered second copy) hides nothing."""
    run = _clean()
    run.refused = [Refused("MK", "e1m", "GB", "k1", "bad_gateway_signature")]
    verdict = run.verdict()
    assert verdict.passed
    assert verdict.rejected_by_recipient == ()
    assert verdict.counts["refused_by_recipients"] == 1


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1), st.floats(0.01, 1.0))
def test_percentile_is_an_element_bounded_by_min_and_max(values: list[float], q: float) -> None:
    """The nearest-rank percentile is one of the values, between the smallest and largest."""
    p = percentile(values, q)
    assert p in values
    assert min(values) <= p <= max(values)
    assert percentile(values, 1.0) == max(values)


def test_percentile_of_nothing_is_none() -> None:
    """No samples, no percentile."""
    assert percentile([], 0.5) is None
