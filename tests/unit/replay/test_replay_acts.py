"""Replay follows the parties' signed acts in the log: while the log shows an accord suspended
or terminated nothing may be delivered under it, and nothing refused as such unless it is."""

from __future__ import annotations

import datetime as dt

from broker.cosign import accord_digest
from broker.ids import PartnerCode
from broker.keys.testing import build_registry
from broker.pipeline.gateway import audit_accord_act
from broker.pipeline.records import parse_audit_record, sign_audit_record
from broker.replay import ActEvidence, Entry, replay_entries
from broker.trust.acts import ActsFile, add_act

from .audit_log import NOW, AuditLog, accord_v1, decide, labels

WORLD = build_registry(now=NOW, partners=("GB", "RS"), roots=1, threshold=1)
PARTIES = frozenset({PartnerCode("GB"), PartnerCode("RS")})


def act_record(log: AuditLog, chain: ActsFile, kind: str, by: str) -> tuple[ActsFile, bytes]:
    partner = PartnerCode(by)
    chain = add_act(
        chain,
        kind=kind,  # type: ignore[arg-type]
        key=WORLD.partners[partner].policy,
        partner=partner,
        parties=PARTIES,
        at=NOW,
        reason="test",
    )
    if kind == "resume":  # every party signs a resumption
        other = next(iter(PARTIES - {partner}))
        chain = add_act(
            chain,
            kind="resume",
            key=WORLD.partners[other].policy,
            partner=other,
            parties=PARTIES,
            at=NOW,
            reason="test",
        )
    act = chain.acts[-1].act
    record = audit_accord_act(act, gateway_key=log.gateway_key, now=NOW)
    return chain, record.to_bytes()


def replay(values: list[bytes]) -> list[str]:
    accord = accord_v1()
    report = replay_entries(
        (Entry(offset=i, value=v) for i, v in enumerate(values)),
        accords={accord_digest(accord): accord},
    )
    return [d.detail for d in report.disagreements]


def test_a_disclosure_while_suspended_is_a_disagreement() -> None:
    """Delivered after the suspension record and before the resumption: flagged, naming it."""
    log = AuditLog.create()
    allowed = decide(accord_v1(), labels(), key=log.gateway_key, at=NOW)
    chain, suspended = act_record(log, ActsFile(accord="gb-rs"), "suspend", "RS")
    _, resumed = act_record(log, chain, "resume", "GB")
    assert replay([allowed, suspended, resumed, allowed]) == []
    problems = replay([suspended, allowed, resumed])
    assert problems == ["delivered under gb-rs while the log shows it accord_suspended"]


def test_a_refusal_as_suspended_without_a_suspension_in_the_log_is_a_disagreement() -> None:
    """A gateway cannot invent a suspension: the act must be in the log before the refusal."""
    log = AuditLog.create()
    refused = decide(accord_v1(), labels(), key=log.gateway_key, at=NOW + dt.timedelta(seconds=1))
    record = parse_audit_record(refused)
    fields = record.model_dump(exclude={"gateway_key_id", "signature"})
    fields.update(kind="refusal", decision="deny", reason_code="accord_suspended")
    forged = sign_audit_record(fields, gateway_key=log.gateway_key).to_bytes()
    assert replay([forged]) == [
        "refused as accord_suspended, but the log shows no such act on gb-rs"
    ]


def _replay_with(values: list[bytes], chains: list[ActsFile]) -> tuple[int, list[str]]:
    accord = accord_v1()
    report = replay_entries(
        (Entry(offset=i, value=v) for i, v in enumerate(values)),
        accords={accord_digest(accord): accord},
        acts=ActEvidence(chains, accords=[accord], registry=WORLD.registry),
    )
    return report.acts_proven, [d.detail for d in report.disagreements]


def test_the_acts_files_prove_every_act_the_log_records() -> None:
    """With the acts files, an auditor checks each recorded act's signatures itself."""
    log = AuditLog.create()
    chain, suspended = act_record(log, ActsFile(accord="gb-rs"), "suspend", "RS")
    chain, resumed = act_record(log, chain, "resume", "GB")
    assert _replay_with([suspended, resumed], [chain]) == (2, [])


def test_an_act_record_without_its_signed_act_is_a_disagreement() -> None:
    """A gateway key alone can write an accord_act record; without the parties' signed act
    behind it, replay says so."""
    log = AuditLog.create()
    _, suspended = act_record(log, ActsFile(accord="gb-rs"), "suspend", "RS")
    proven, problems = _replay_with([suspended], [])
    assert proven == 0
    assert len(problems) == 1
    assert "found in no acts file given" in problems[0]


def test_an_act_signed_by_a_key_that_was_not_the_partys_is_a_disagreement() -> None:
    """The act is in the file, but RS's signature is by GB's policy key."""
    log = AuditLog.create()
    forged = add_act(
        ActsFile(accord="gb-rs"),
        kind="suspend",
        key=WORLD.partners[PartnerCode("GB")].policy,
        partner=PartnerCode("RS"),
        parties=PARTIES,
        at=NOW,
        reason="test",
    )
    record = audit_accord_act(forged.acts[-1].act, gateway_key=log.gateway_key, now=NOW)
    proven, problems = _replay_with([record.to_bytes()], [forged])
    assert proven == 0
    assert problems == [
        f"the suspend of gb-rs lacks a valid signature by RS at {forged.acts[-1].act.at}"
    ]
