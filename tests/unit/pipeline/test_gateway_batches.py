"""The gateway signs the attestations of an output batch together, one head per recipient's
inbox: each delivery verifies alone, and no recipient learns what went to another. The batch's
audit records share one head of their own."""

from __future__ import annotations

import pathlib

from broker.clock import FixedClock
from broker.pipeline import verify_audit_record, verify_delivery
from broker.pipeline.gateway import Deliver, sign_outcomes

from ..adapter.world import (
    GATEWAY_KEY,
    GB,
    MK,
    NOW,
    RS,
    WORLD,
    make_adapter,
    report,
    route_at_gateway,
)


def _decided(tmp_path: pathlib.Path) -> list[Deliver]:
    uk = make_adapter(GB, tmp_path / "gb", clock=FixedClock(NOW))
    for n in range(3):
        uk.submit(report().model_copy(update={"case_id": f"GB-CASE-{n}"}), to=[RS, MK])
    outcomes = []
    for offset, entry in enumerate(uk.journal.pending(limit=100)):
        outcome = route_at_gateway("xb.outbox.GB", entry.envelope, (), offset=offset, sign=False)
        assert isinstance(outcome, Deliver), outcome
        assert outcome.frame == b""
        outcomes.append(outcome)
    return outcomes


def test_each_inbox_gets_its_own_head_and_every_frame_verifies(tmp_path: pathlib.Path) -> None:
    signed = sign_outcomes(_decided(tmp_path), gateway_key=GATEWAY_KEY)
    signatures: dict[str, set[bytes]] = {}
    for outcome in signed:
        assert isinstance(outcome, Deliver)
        assert outcome.frame[:4] == b"XBD2"
        recipient = RS if outcome.topic.endswith(RS) else MK
        delivered = verify_delivery(
            outcome.frame, registry=WORLD.registry, recipient=recipient, now=NOW
        )
        n = int.from_bytes(outcome.frame[4:8], "big")
        signatures.setdefault(outcome.topic, set()).add(outcome.frame[12 + n : 12 + n + 64])
        assert delivered.attestation.recipient == recipient
    assert len(signatures) == 2
    assert all(len(s) == 1 for s in signatures.values())
    assert signatures["xb.inbox.RS"] != signatures["xb.inbox.MK"]


def test_the_audit_records_of_a_batch_are_signed_under_one_head(tmp_path: pathlib.Path) -> None:
    decided = _decided(tmp_path)
    assert all(not o.audit.signature for o in decided), "route leaves them drafts"
    signed = sign_outcomes(decided, gateway_key=GATEWAY_KEY)
    audits = [o.audit for o in signed if isinstance(o, Deliver)]
    assert len(audits) == 6
    assert {a.v for a in audits} == {2}
    assert len({a.signature for a in audits}) == 1
    for audit in audits:
        assert verify_audit_record(audit.to_bytes(), registry=WORLD.registry) == audit
