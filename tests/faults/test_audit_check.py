"""The audit check at the end of every fault test and soak (§A9.6): on a real exchange's audit
topic it passes; a record altered and written back with a plain producer fails it, named by
index and kind, and the gateway's checkpointer refuses to sign it into the log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from benchmarks.soak.audit_check import AuditCheck, check_audit
from benchmarks.soak.driver import SpoolDriver, read_topic, receipted_views, wait_until
from broker.checker import read_inboxes
from broker.config import audit_topic
from broker.demo.federation import Federation
from broker.keys import load_trusted_registry
from broker.ledger import is_checkpoint_record
from broker.replay import iter_entries, verify_entries
from tests.e2e.harness import produce

#: reports GB sends RS
REPORTS = 4


def _exchange(federation: Federation, history: Path) -> int:
    """GB sends REPORTS reports to RS; returns once RS holds them and GB their receipts, with
    how many audit records that made (a disclosure per report, a receipt per batch receipt)."""
    driver = SpoolDriver(federation, history)
    for number in range(REPORTS):
        driver.submit(f"GB-AUDIT-{number:02d}", ["RS"])
    assert driver.settle(timeout_s=60)
    driver.close()
    inboxes = {"RS": federation.inbox_path("RS")}
    assert wait_until(
        lambda: len(read_inboxes(inboxes)) == REPORTS and receipted_views(federation) == REPORTS,
        timeout_s=60,
    )
    receipts = len(read_inboxes({"GB": federation.inbox_path("GB")}))
    assert 1 <= receipts <= REPORTS
    return REPORTS + receipts


def _altered_disclosure(federation: Federation) -> tuple[str, bytes]:
    """The first disclosure on the audit topic, its decision turned to ``deny`` and nothing
    else changed (so its signature no longer matches): its message id and bytes."""
    topic = audit_topic(federation.prefix)
    records = asyncio.run(read_topic(federation.bootstrap, topic, quiet_s=1.0))
    values = [r.value for r in records if r.value is not None]
    first = next(v for v in values if not is_checkpoint_record(v) and b'"allow"' in v)
    altered = first.replace(b'"decision":"allow"', b'"decision":"deny"', 1)
    assert altered != first
    return str(json.loads(first)["message_id"]), altered


@pytest.mark.kafka
@pytest.mark.slow
def test_passes_on_an_exchange_and_names_an_altered_record(
    federation: Federation, tmp_path: Path
) -> None:
    """A clean, fully checkpointed log passes with every decision replayed. A disclosure
    altered to ``deny`` and appended fails it twice over: its own signature (``invalid_record``
    at its index) and replay (the accord allows what the record says was denied). The gateway,
    started again, does not sign it into the log: its checkpointer refuses it (an alert on
    its metrics) and lists it, so even the default verification names it."""
    with federation:
        federation.start_many(("gateway", "GB", "RS"))
        records = _exchange(federation, tmp_path / "gb.jsonl")
        # a stopping gateway signs what is left: the whole log is under checkpoints
        assert federation.stop("gateway") == 0

        clean = check_audit(federation, quiet_s=1.0)
        print(f"\n{clean.summary()}")
        assert clean.passed, clean.problems
        assert (clean.records, clean.signed, clean.unsigned_tail) == (records, records, 0)
        assert clean.checkpoints >= 1
        assert clean.reevaluated == records
        assert clean.replay_mismatches == 0

        message_id, altered = _altered_disclosure(federation)
        topic = audit_topic(federation.prefix)
        asyncio.run(produce(federation.bootstrap, topic, altered, headers=[]))
        forged = check_audit(federation, quiet_s=1.0)
        print(forged.summary())
        assert not forged.passed
        # a record that is not a valid gateway record is no leaf, signed or not
        assert (forged.records, forged.unsigned_tail) == (records + 1, 0)
        assert forged.replay_mismatches == 1
        index = records
        assert forged.problems[0].startswith(f"verify: invalid_record at index {index}: ")
        assert forged.problems[1].startswith(f"replay: index {index} message {message_id}: ")
        assert "recorded deny, the accord gives allow" in forged.problems[1]

        # the gateway starts again: its checkpointer refuses the altered record and says so
        federation.start("gateway")
        alert = 'xb_audit_refused_records_total{reason_code="bad_signature"}'
        assert wait_until(lambda: federation.metrics("gateway").get(alert) == 1, timeout_s=60)
        assert federation.stop("gateway") == 0
        bundle = tmp_path / "audit.bundle"
        signed = check_audit(federation, bundle=bundle, quiet_s=1.0)
        print(signed.summary())
        assert (signed.signed, signed.unsigned_tail) == (records, 0)
        assert not signed.passed
        assert signed.problems[0].startswith(f"verify: invalid_record at index {index}: ")
        assert "refused (bad_signature)" in signed.problems[0]
        # the default check names it too: no checkpoint covers it as valid
        registry = load_trusted_registry(federation.registry_path.read_bytes())
        problem = verify_entries(iter_entries(bundle), registry=registry).first_problem
        assert problem is not None
        assert (problem.kind, problem.index) == ("invalid_record", index)


CASES = {
    "clean": ((), "audit PASS: 3 records"),
    "one problem": (("verify: modified at index 2: x",), "first: verify: modified at index 2"),
}


@pytest.mark.parametrize(("problems", "expected"), CASES.values(), ids=CASES.keys())
def test_result_gates_on_problems_and_has_no_truth_value(
    problems: tuple[str, ...], expected: str
) -> None:
    """``passed`` is exactly "no problems"; the summary names the first; ``bool()`` raises."""
    result = AuditCheck(
        records=3,
        checkpoints=1,
        signed=3,
        unsigned_tail=0,
        reevaluated=3,
        replay_mismatches=0,
        problems=problems,
    )
    assert result.passed is (not problems)
    assert expected in result.summary()
    assert result.to_json()["passed"] is result.passed
    with pytest.raises(TypeError, match="no truth value"):
        bool(result)
