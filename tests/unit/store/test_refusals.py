"""Per outbox and hour, the first refusals are audited singly and the rest counted for one
signed summary: the audit log's growth under a flood is bounded, and nothing goes uncounted."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path

from broker.keys.testing import build_registry
from broker.pipeline import (
    AuditKind,
    refusal_counts,
    summarize_refusals,
    verify_audit_record,
)
from broker.store.refusals import RefusalWindows

T0 = dt.datetime(2026, 12, 5, 10, 15, tzinfo=dt.UTC)
OUTBOX = "xb.outbox.XK"


def _windows(tmp_path: Path, per_window: int) -> RefusalWindows:
    conn = sqlite3.connect(tmp_path / "gateway.sqlite", isolation_level=None)
    return RefusalWindows(conn, per_window=per_window)


def _flood(windows: RefusalWindows, count: int, *, at: dt.datetime) -> list[bytes]:
    """``count`` refusals from one outbox; the digests of those counted rather than audited."""
    counted = []
    for offset in range(count):
        if windows.admit(OUTBOX, at=at):
            continue
        digest = hashlib.sha256(b"junk %d" % offset).digest()
        windows.summarize(
            OUTBOX,
            at=at,
            reason_code="malformed" if offset % 2 else "oversized",
            partition=offset % 2,
            offset=offset,
            value_sha256=digest,
            size=10,
        )
        counted.append(digest)
    return counted


def test_past_the_hourly_number_refusals_are_counted_not_audited(tmp_path: Path) -> None:
    """Three audited, seven counted, and the hour's window closes only once it is over."""
    windows = _windows(tmp_path, per_window=3)
    counted = _flood(windows, 10, at=T0)
    assert len(counted) == 7
    assert windows.closed(now=T0 + dt.timedelta(minutes=44)) == []
    (window,) = windows.closed(now=T0 + dt.timedelta(minutes=45))
    assert (window.outbox, window.audited, window.summarized) == (OUTBOX, 3, 7)
    assert window.by_reason == {"malformed": 4, "oversized": 3}
    assert window.offsets == {0: (4, 8), 1: (3, 9)}
    assert window.bytes == 70
    chained = b""
    for digest in counted:
        chained = hashlib.sha256(chained + digest).digest()
    assert window.digest == chained
    windows.forget([window])
    assert windows.closed(now=T0 + dt.timedelta(hours=2)) == []


def test_every_hour_and_every_outbox_has_its_own_count(tmp_path: Path) -> None:
    """The next hour starts again from zero; another outbox is counted apart."""
    windows = _windows(tmp_path, per_window=1)
    assert windows.admit(OUTBOX, at=T0)
    assert not windows.admit(OUTBOX, at=T0)
    assert windows.admit("xb.outbox.RS", at=T0)
    assert windows.admit(OUTBOX, at=T0 + dt.timedelta(hours=1))


def test_the_summary_is_a_signed_audit_record_that_counts_them(tmp_path: Path) -> None:
    """It verifies with the gateway key like any audit record, names the sender, and its
    counts read back; its digest commits to every summarized value."""
    windows = _windows(tmp_path, per_window=2)
    _flood(windows, 6, at=T0)
    (window,) = windows.closed(now=T0 + dt.timedelta(hours=1))
    fixture = build_registry(now=T0, partners=("GB", "XK"))
    key = next(iter(fixture.gateways.values()))
    summary = summarize_refusals(
        outbox=window.outbox,
        sender="XK",
        start=window.start,
        end=window.end,
        audited=window.audited,
        by_reason=window.by_reason,
        offsets=window.offsets,
        digest=window.digest,
        total_bytes=window.bytes,
        gateway_key=key,
        now=T0 + dt.timedelta(hours=1),
    )
    record = verify_audit_record(summary.to_bytes(), registry=fixture.registry)
    assert (record.kind, record.sender, record.decision) == (
        AuditKind.REFUSAL_SUMMARY,
        "XK",
        "deny",
    )
    assert refusal_counts(record) == {"malformed": 2, "oversized": 2}
    assert record.envelope_sha256 == window.digest.hex()
    assert "xb.outbox.XK/0: 2..4" in record.reasons
