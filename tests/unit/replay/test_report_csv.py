"""The report's CSV: one row per authenticated decision, nothing a spreadsheet would run."""

from __future__ import annotations

import csv
import io

from broker.pipeline.records import parse_audit_record, sign_audit_record
from broker.replay import Entry, write_csv

from .audit_log import NOW, AuditLog, decide, labels


def test_a_cell_a_spreadsheet_would_run_is_written_inert() -> None:
    """Reasons can carry text a partner chose: a formula there is defused with an apostrophe,
    and the rows left out (here: index 1) are not written."""
    log = AuditLog.create()
    record = parse_audit_record(decide(log.accords[0], labels(), key=log.gateway_key, at=NOW))
    fields = record.model_dump(exclude={"gateway_key_id", "signature"})
    fields["reasons"] = ('=HYPERLINK("http://x.example","click")', "plain")
    hostile = sign_audit_record(fields, gateway_key=log.gateway_key).to_bytes()
    out = io.StringIO()
    rows = write_csv([Entry(0, hostile), Entry(1, hostile)], out, exclude=frozenset({1}))
    assert rows == 1
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert row["reasons"] == '\'=HYPERLINK("http://x.example","click") | plain'
    assert row["index"] == "0"
