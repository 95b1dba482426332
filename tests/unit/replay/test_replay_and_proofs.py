"""Replay re-evaluates each decision under the accord version it names; inclusion proofs work
offline from a bundle; the report counts only authenticated records."""

from __future__ import annotations

import json
import pathlib

import pytest

from broker import errors
from broker.cosign import accord_digest
from broker.ledger import is_checkpoint_record
from broker.pipeline.records import parse_audit_record
from broker.replay import (
    iter_entries,
    prove_message,
    read_header,
    render_html,
    replay_entries,
    summarize,
    verify_entries,
    verify_proof,
)
from broker.replay.report import Verdict
from broker.schema.labels import Classification, DataCategory
from tests.unit.replay.audit_log import NOW, AuditLog, checkpointed_topic, decide, labels

SENSITIVE = labels(classification=Classification.OFFICIAL_SENSITIVE)


@pytest.fixture(scope="module")
def log() -> AuditLog:
    """One registry and gateway key, accords gb-rs v1 and v2."""
    return AuditLog.create()


async def _bundle(log: AuditLog, values: list[bytes], tmp_path: pathlib.Path) -> pathlib.Path:
    topic = await checkpointed_topic(values, key=log.gateway_key, registry=log.fixture.registry)
    path = tmp_path / "audit.bundle"
    path.write_bytes(log.bundle_bytes(topic.contents()))
    return path


async def test_decisions_under_the_old_accord_replay_valid_after_an_accord_change(
    log: AuditLog, tmp_path: pathlib.Path
) -> None:
    """An OFFICIAL-SENSITIVE alert allowed under v1 and refused under v2 (which lowered the
    ceiling) both replay as recorded: each is re-evaluated under its own version."""
    v1, v2 = log.accords
    values = [decide(v1, SENSITIVE, key=log.gateway_key, at=NOW) for _ in range(3)]
    values += [decide(v2, SENSITIVE, key=log.gateway_key, at=NOW) for _ in range(2)]
    assert [parse_audit_record(v).decision for v in values] == ["allow"] * 3 + ["deny"] * 2
    path = await _bundle(log, values, tmp_path)
    progress: list[int] = []
    report = replay_entries(
        iter_entries(path), accords=read_header(path).accords(), progress=progress.append
    )
    assert report.agrees, report.disagreements
    assert report.reevaluated == 5
    assert report.by_accord == {"gb-rs v1": 3, "gb-rs v2": 2}
    assert progress[-1] == 5


async def test_a_decision_the_named_accord_does_not_give_is_a_disagreement(
    log: AuditLog, tmp_path: pathlib.Path
) -> None:
    """A record claiming v2 allowed what v2 refuses (signed, so not tampering: a wrong
    decision) is reported with its index and message id."""
    v1, v2 = log.accords
    honest = decide(v1, SENSITIVE, key=log.gateway_key, at=NOW)
    # v1's decision, relabelled as made under v2
    wrong = parse_audit_record(decide(v1, SENSITIVE, key=log.gateway_key, at=NOW))
    from broker.pipeline.records import sign_audit_record

    fields = wrong.model_dump(exclude={"gateway_key_id", "signature"})
    fields.update(accord_version=2, accord_digest=accord_digest(v2), labels=SENSITIVE)
    forged = sign_audit_record(fields, gateway_key=log.gateway_key).to_bytes()
    path = await _bundle(log, [honest, forged], tmp_path)
    report = replay_entries(iter_entries(path), accords=read_header(path).accords())
    assert [(d.index, d.message_id) for d in report.disagreements] == [(1, wrong.message_id)]
    assert "gives deny" in report.disagreements[0].detail


async def test_a_record_naming_an_accord_not_in_the_bundle_is_a_disagreement(
    log: AuditLog, tmp_path: pathlib.Path
) -> None:
    """Replay never falls back to another version: a missing accord version is reported."""
    values = [decide(log.accords[0], labels(), key=log.gateway_key, at=NOW)]
    path = await _bundle(log, values, tmp_path)
    report = replay_entries(iter_entries(path), accords={})
    assert len(report.disagreements) == 1
    assert "not in the bundle" in report.disagreements[0].detail


async def test_an_inclusion_proof_verifies_offline_and_fails_when_altered(
    log: AuditLog, tmp_path: pathlib.Path
) -> None:
    """``prove_message`` proves a message's record against a signed checkpoint; the proof
    verifies with the registry alone, and any change to the record or path fails it."""
    values = [decide(log.accords[0], labels(), key=log.gateway_key, at=NOW) for _ in range(9)]
    target = parse_audit_record(values[6]).message_id
    assert target is not None
    path = await _bundle(log, values, tmp_path)
    registry = read_header(path).registry()
    proof = prove_message(lambda: iter_entries(path), message_id=target, registry=registry)
    proven = verify_proof(proof, registry=registry)
    assert [(p.index, p.record.message_id) for p in proven] == [(6, target)]
    document = json.loads(proof)
    document["entries"][0]["index"] = 5
    with pytest.raises(errors.AuditError):
        verify_proof(json.dumps(document).encode(), registry=registry)
    document = json.loads(proof)
    document["entries"][0]["record"] = document["entries"][0]["record"].replace("GB", "AL", 1)
    with pytest.raises(errors.AuditError):
        verify_proof(json.dumps(document).encode(), registry=registry)
    with pytest.raises(errors.UsageError):
        prove_message(lambda: iter_entries(path), message_id="nope", registry=registry)


async def test_replay_and_the_report_leave_out_records_that_do_not_verify(
    log: AuditLog, tmp_path: pathlib.Path
) -> None:
    """A forged disclosure (signed by a key the registry does not list) after the last
    checkpoint is named by verify and left out of the replay and of every report count."""
    from broker.crypto import SigningKey, Suite

    values = [decide(log.accords[0], labels(), key=log.gateway_key, at=NOW) for _ in range(4)]
    topic = await checkpointed_topic(values, key=log.gateway_key, registry=log.fixture.registry)
    forged = decide(log.accords[0], labels(), key=SigningKey.generate(Suite.CLASSIC), at=NOW)
    path = tmp_path / "audit.bundle"
    path.write_bytes(log.bundle_bytes([*topic.contents(), forged]))
    verified = verify_entries(iter_entries(path), registry=read_header(path).registry())
    problem = verified.first_problem
    assert problem is not None
    assert (problem.kind, problem.index) == ("invalid_record", 4)
    assert verified.unauthenticated == {4}
    replayed = replay_entries(
        iter_entries(path), accords=read_header(path).accords(), exclude=verified.unauthenticated
    )
    assert (replayed.reevaluated, replayed.skipped) == (4, {"unauthenticated": 1})
    summary = summarize(iter_entries(path), exclude=verified.unauthenticated)
    assert (summary.records, summary.excluded) == (4, 1)
    assert summary.matrix[("GB", "RS", str(DataCategory.IDENTITY))] == 4
    page = render_html(summary, title="t", verdict=Verdict.of(verified))
    assert 'class="verification failed" data-verified="false"' in page
    assert 'data-first-bad-index="4"' in page


async def test_the_report_counts_the_matrix_and_escapes_what_it_shows(
    log: AuditLog, tmp_path: pathlib.Path
) -> None:
    """Disclosures are counted per sender, recipient and category; refusals by reason; and
    text from the log never reaches the page unescaped."""
    v1, v2 = log.accords
    values = [decide(v1, labels(), key=log.gateway_key, at=NOW) for _ in range(3)]
    values += [decide(v2, SENSITIVE, key=log.gateway_key, at=NOW)]
    path = await _bundle(log, values, tmp_path)
    summary = summarize(iter_entries(path))
    assert summary.matrix[("GB", "RS", str(DataCategory.IDENTITY))] == 3
    assert summary.refusals == {"policy_denied": 1}
    verdict = Verdict(verified=True, text="ok & fine")
    page = render_html(summary, title="<script>alert(1)</script>", verdict=verdict)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert "ok &amp; fine" in page
    assert 'class="verification ok" data-verified="true"' in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert sum(1 for v in values if not is_checkpoint_record(v)) == summary.records
