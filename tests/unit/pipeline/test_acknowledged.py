"""A receipt names the message it acknowledges to the gateway, which checks the name against
the receipt's signed commitment and writes it into the receipt's audit record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker import strictjson
from broker.adapter import JournalEntry
from broker.clock import FixedClock
from broker.pipeline.gateway import Deliver, Quarantine
from broker.pipeline.revealed import ACKNOWLEDGES_HEADER
from broker.pipeline.send import Outgoing
from broker.reasons import ReasonCode

from ..adapter.world import (
    GB,
    NOW,
    RS,
    deliver,
    make_adapter,
    report,
    route_at_gateway,
)


@pytest.fixture(scope="module")
def receipt(tmp_path_factory: pytest.TempPathFactory) -> tuple[JournalEntry, str]:
    """Serbia's receipt for a UK report, as journalled to be produced, and the report's id."""
    root: Path = tmp_path_factory.mktemp("acknowledged")
    clock = FixedClock(NOW)
    uk, serbia = (
        make_adapter(GB, root / "gb", clock=clock),
        make_adapter(RS, root / "rs", clock=clock),
    )
    (view,) = uk.submit(report(), to=[RS])
    assert isinstance(view, Outgoing)
    assert serbia.receive(deliver(view.envelope, recipient=RS)) == "stored"
    (entry,) = [e for e in serbia.journal.pending() if e.recipient == GB]
    return entry, view.message_id


def _route(entry: JournalEntry, headers: tuple[tuple[str, bytes], ...]) -> Deliver | Quarantine:
    return route_at_gateway("xb.outbox.RS", entry.envelope, headers)


def test_a_receipts_audit_record_names_the_message_it_acknowledges(
    receipt: tuple[JournalEntry, str],
) -> None:
    entry, acknowledged = receipt
    assert entry.gateway_header is not None
    assert entry.gateway_header[0] == ACKNOWLEDGES_HEADER
    outcome = _route(entry, (entry.gateway_header,))
    assert isinstance(outcome, Deliver), outcome
    assert outcome.audit.kind == "receipt"
    assert f"acknowledges {acknowledged}" in outcome.audit.reasons


def test_a_receipt_naming_another_message_than_it_commits_to_is_quarantined(
    receipt: tuple[JournalEntry, str],
) -> None:
    entry, _ = receipt
    assert entry.gateway_header is not None
    claimed = json.loads(entry.gateway_header[1])
    claimed["value"] = "01900000-0000-7000-8000-0000000000cc"
    lying = (ACKNOWLEDGES_HEADER, strictjson.canonical(claimed))
    for headers in (
        (lying,),
        (entry.gateway_header, entry.gateway_header),
        ((ACKNOWLEDGES_HEADER, b"[]"),),
    ):
        outcome = _route(entry, headers)
        assert isinstance(outcome, Quarantine), headers
        assert outcome.record.reason_code is ReasonCode.MALFORMED


def test_a_receipt_without_the_header_is_routed_and_says_so(
    receipt: tuple[JournalEntry, str],
) -> None:
    """An adapter from before this header: its receipts still reach the sender."""
    entry, _ = receipt
    outcome = _route(entry, ())
    assert isinstance(outcome, Deliver)
    assert "acknowledges a message it does not name to the gateway" in outcome.audit.reasons
