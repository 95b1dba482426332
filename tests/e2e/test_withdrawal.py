"""Withdrawal and correction through the running exchange, as operators would do them.

RS sends GB a report, then withdraws it: GB's adapter destroys its content and delivery file
and keeps the reason. RS corrects another: GB gets the corrected view and the old one is
destroyed, naming its replacement. MK, which also has an accord with GB, tries to withdraw
RS's view: it changes nothing at GB, which raises a security alert and tells MK nothing.
Every daemon is a real process on a real Kafka-protocol broker; every command its own process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.adapter import write_submission
from broker.demo.federation import Federation
from broker.demo.tracker import receipt_file
from broker.ids import PartnerCode, new_message_id
from broker.schema import message_bytes, parse_message
from broker.transport.testing import KafkaUnderTest

from .harness import cli, delivered, report, running, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

_TIMEOUT_S = 60.0

_DAEMONS = ("gateway", "GB", "RS", "MK")


@pytest.fixture(scope="module")
def federation(
    kafka: KafkaUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    with running(tmp_path_factory.mktemp("federation"), kafka, _DAEMONS) as federation:
        yield federation


def _send_report(federation: Federation, tmp_path: Path, case: str) -> tuple[str, Path]:
    """RS sends GB a report; its view id and GB's delivery file of it."""
    path = tmp_path / f"{case}.json"
    path.write_bytes(message_bytes(report(case)))
    said = json.loads(cli(federation, "send", str(path), "--to", "GB", "--json", partner="RS"))
    (view,) = said["views"]
    at_gb = wait_for(
        lambda: delivered(federation, "GB", {"case_id": case}),
        timeout_s=_TIMEOUT_S,
        what=f"{case} at GB",
    )
    assert at_gb.stem == view["message_id"]
    return str(view["message_id"]), at_gb


def _shown(federation: Federation, message_id: str) -> str:
    return cli(federation, "inbox", "show", message_id, partner="GB", expect=2)


def test_a_withdrawn_view_is_destroyed_at_its_recipient_with_the_reason(
    federation: Federation, tmp_path: Path
) -> None:
    view, at_gb = _send_report(federation, tmp_path, f"RS-E2E-{uuid.uuid4().hex[:8].upper()}")
    said = json.loads(
        cli(federation, "withdraw", view, "--reason", "source retracted", "--json", partner="RS")
    )
    (notice,) = said["views"]
    wait_for(lambda: not at_gb.exists(), timeout_s=_TIMEOUT_S, what="GB's file to be deleted")
    refused = _shown(federation, view)
    assert f"withdrawn by RS ({notice['message_id']}): source retracted" in refused
    # the notice itself is a message GB holds, and RS gets GB's receipt for it
    wait_for(
        lambda: receipt_file(federation.delivery_dir("RS"), notice["message_id"]),
        timeout_s=_TIMEOUT_S,
        what="GB's receipt for the withdrawal at RS",
    )
    # an id RS never sent is refused before anything is queued
    cli(federation, "withdraw", "0" * 8, "--reason", "x", partner="RS", expect=2)


def test_a_corrected_view_is_replaced_and_the_old_one_names_its_replacement(
    federation: Federation, tmp_path: Path
) -> None:
    case = f"RS-E2E-{uuid.uuid4().hex[:8].upper()}"
    view, at_gb = _send_report(federation, tmp_path, case)
    corrected = tmp_path / "corrected.json"
    document = json.loads(message_bytes(report(case)))
    document["body"]["summary"] = "Corrected: the group uses two boats, not three."
    corrected.write_text(json.dumps(document))
    said = json.loads(
        cli(federation, "correct", view, str(corrected), "--reason", "boat count wrong",
             "--json", partner="RS")
    )  # fmt: skip
    replacement, notice = (v["message_id"] for v in said["views"])
    new_file = federation.delivery_dir("GB") / f"{replacement}.json"
    wait_for(new_file.exists, timeout_s=_TIMEOUT_S, what="the corrected view at GB")
    wait_for(lambda: not at_gb.exists(), timeout_s=_TIMEOUT_S, what="the old view's file to go")
    refused = _shown(federation, view)
    assert f"corrected by RS ({notice}), replaced by {replacement}: boat count wrong" in refused
    shown = json.loads(cli(federation, "inbox", "show", replacement, partner="GB"))
    assert shown["message"]["body"]["summary"].startswith("Corrected:")


def test_a_partner_cannot_withdraw_a_view_another_partner_sent(
    federation: Federation, tmp_path: Path
) -> None:
    view, at_gb = _send_report(federation, tmp_path, f"RS-E2E-{uuid.uuid4().hex[:8].upper()}")
    forged = {
        "type": "withdrawal",
        "schema_version": 1,
        "classification": "OFFICIAL",
        "tlp": "GREEN",
        "handling": "H0",
        "purposes": ["people-smuggling"],
        "body": {"withdraws": view, "reason": "please delete"},
    }
    # MK's own spool (`broker send` refuses withdrawals: `broker withdraw` takes back only
    # views sent from here), as any writer of its spool could
    notice = {"message_id": new_message_id()}
    gb = PartnerCode("GB")
    write_submission(
        federation.spool_dir("MK"),
        parse_message(json.dumps(forged).encode()),
        [gb],
        ids={gb: notice["message_id"]},
    )
    receipt = wait_for(
        lambda: receipt_file(federation.delivery_dir("MK"), notice["message_id"]),
        timeout_s=_TIMEOUT_S,
        what="GB's receipt at MK",
    )
    # told nothing: the receipt is the one any notice gets, saying neither that the view is
    # there nor whose it is
    (line,) = json.loads(receipt.read_bytes())["message"]["body"]["items"]
    assert (line["receipt_for"], line["status"]) == (notice["message_id"], "accepted")
    assert at_gb.exists()
    kept = json.loads(cli(federation, "inbox", "show", view, partner="GB"))
    assert kept["message"]["case_id"].startswith("RS-E2E-")
    alerts = [
        json.loads(line)
        for line in federation.log_path("GB").read_text().splitlines()
        if '"foreign_withdrawal"' in line
    ]
    assert any(a["message_id"] == notice["message_id"] for a in alerts), alerts
    # and RS can still withdraw its own view
    cli(federation, "withdraw", view, "--reason", "superseded", partner="RS")
    wait_for(lambda: not at_gb.exists(), timeout_s=_TIMEOUT_S, what="RS's own withdrawal")
