"""The demo's tracker reads fates from what operators can see, whatever order files appear in."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from broker.demo.scenario import Route, Step
from broker.demo.tracker import Fate, Tracker
from broker.ids import MessageId, PartnerCode, new_message_id
from broker.pipeline.receipts import Acknowledgement, batch_receipts
from broker.schema import DataCategory, Message, message_bytes, parse_message, redact

EXAMPLE = Path(__file__).resolve().parents[3] / "schemas" / "examples" / "network.report.json"
MESSAGE_ID = new_message_id()


def _write(directory: Path, name: str, sender: str, message: Message) -> None:
    document = {"message_id": name, "sender": sender, "message": json.loads(message_bytes(message))}
    (directory / f"{name}.json").write_text(json.dumps(document))


def test_a_receipt_seen_before_its_view_still_reports_what_the_view_lost(
    tmp_path: Path,
) -> None:
    """GB's directory is read before RS's, so the receipt from RS is on disk first; the row must
    still end as 'receipt back' with the categories RS's view lost, not without them."""
    report = parse_message(EXAMPLE.read_bytes())
    view = redact(report, [DataCategory.BIOMETRIC])
    dirs = {p: tmp_path / p for p in ("GB", "RS")}
    for directory in dirs.values():
        directory.mkdir()
    tracker = Tracker(delivery_dirs=dirs, spool_dirs={}, audit_topic="xb.audit")
    step = Step("UK report", "GB", ("RS",), report, Route.SEND, expected="receipt back")
    tracker.add_step(0, step, message_id=MESSAGE_ID)
    acknowledgement = Acknowledgement.of(
        view,
        to=PartnerCode("GB"),
        message_id=MessageId(MESSAGE_ID),
        content_sha256=bytes(32),
        envelope_sha256=bytes(32),
        received_at=dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
    )
    (receipt,) = (batch.message for batch in batch_receipts([acknowledgement]))
    _write(dirs["GB"], str(new_message_id()), "RS", receipt)
    _write(dirs["RS"], MESSAGE_ID, "GB", view)

    tracker.poll_files()

    (row,) = tracker.rows
    assert row.fate is Fate.RECEIPTED
    assert row.detail == "lost biometric"
