"""An accord expiring mid-stream, with the real daemons on the real clock.

While the gateway and the GB and RS adapters run, GB-RS version 2 is installed, co-signed by
both parties' policy keys as provisioning signs accords, with ``expires`` a timestamp a few
seconds ahead; both daemons reload it. Reports flow GB -> RS through GB's spool across that
instant. The instant is the only thing the test fixes: what happened to each report is read
back from the recorded times and outcomes, never assumed from the timing, so a slow machine
changes the counts, not the verdict:

- submitted at or after the expiry: refused by GB's own adapter (``rejected/``, the reason
  naming the accord's expiry instant); nothing sealed;
- sealed and routed before it: delivered to RS exactly once;
- sealed before it but routed after it (the natural stragglers, plus one envelope the test
  seals before the instant and publishes after it, so the case always occurs): quarantined
  by the gateway as ``accord_expired`` exactly once, stored nowhere;
- the history checker: 0 lost, 0 duplicated, 0 unauthorised; every daemon still running;
- restarted after the instant, the gateway and GB's adapter start (the lapsed accord stops
  nothing) and refuse by name from the start: GB's adapter refuses a new report as
  ``accord_expired``, the gateway quarantines an envelope sealed around it the same way.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from benchmarks.soak.audit_check import check_audit
from benchmarks.soak.driver import SpoolDriver, read_topic, report, verdict_of, wait_until
from broker import envelope
from broker.adapter import SendJournal, journal_beside
from broker.checker import Event, EventType, HistoryWriter, read_history, read_inboxes
from broker.config import outbox_topic, quarantine_topic
from broker.cosign import sign_accord, signature_path, write_signature_file
from broker.demo.federation import GATEWAY, Federation
from broker.ids import PartnerCode
from broker.keys.testing import RegistryFixture
from broker.policy import load_accord
from broker.schema import DataCategory, redact
from tests.e2e.harness import produce, seal_as

from .rekey import take_over_keys

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RS = PartnerCode("RS")
#: from installing version 2 to its expiry: room for both reloads (polled every 2 s) and a
#: few seconds of deliveries before the instant, even on a slow, loaded machine
EXPIRES_IN_S = 12
#: how long reports keep coming after the instant
AFTER_S = 2.0
#: reports submitted every half second
BURST = 2
#: the history key of the view the test seals before the instant and publishes after it
LATE_KEY = "GB-EXPIRY-LATE"
_RELOAD_S = EXPIRES_IN_S - 2.0
_SETTLE_S = 60.0


@dataclasses.dataclass(frozen=True)
class Held:
    """One record of the quarantine topic, as the gateway wrote it."""

    reason_code: str
    sender: str | None
    recipient: str | None
    message_id: str | None
    quarantined_at: dt.datetime
    envelope: bytes


def _reloads(federation: Federation, name: str) -> int:
    return federation.log_path(name).read_text(errors="replace").count('"accords_reloaded"')


def _install_expiring(
    federation: Federation, fixture: RegistryFixture, *, expires: dt.datetime
) -> Path:
    """Write GB-RS version 2, expiring at ``expires``, co-signed by GB and RS (signatures
    first, each file replaced atomically, so a reload sees an old or a new pair)."""
    path = federation.accords_dir / "gb-rs.yaml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^version: 1$", "version: 2", text, count=1)
    stamp = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    text, replaced = re.subn(r"(?m)^expires: .*$", f"expires: {stamp}", text, count=1)
    assert replaced == 1
    staged = path.with_name(".gb-rs.yaml.new")
    staged.write_text(text, encoding="utf-8")
    accord = load_accord(staged)
    assert (accord.version, accord.expires_at()) == (2, expires)
    signatures = None
    for party in sorted(accord.party_codes):
        signatures = sign_accord(
            accord, signatures, key=fixture.partners[party].policy, partner=party
        )
    assert signatures is not None
    staged_sigs = path.with_name(".gb-rs.sigs.new")
    write_signature_file(staged_sigs, signatures)
    os.replace(staged_sigs, signature_path(path))
    os.replace(staged, path)
    return path


def _read_quarantine(federation: Federation) -> list[Held]:
    records = asyncio.run(
        read_topic(federation.bootstrap, quarantine_topic(federation.prefix), quiet_s=2.0)
    )
    held = []
    for record in records:
        if record.value is None:
            continue
        raw = json.loads(record.value)
        # the record keeps a prefix of what it refused; these envelopes are far shorter
        assert raw["value_size"] == len(base64.b64decode(raw["value_prefix_b64"]))
        held.append(
            Held(
                reason_code=raw["reason_code"],
                sender=raw["sender"],
                recipient=raw["recipient"],
                message_id=raw["message_id"],
                quarantined_at=dt.datetime.fromisoformat(raw["quarantined_at"]),
                envelope=base64.b64decode(raw["value_prefix_b64"]),
            )
        )
    return held


def _case_id(federation: Federation, data: bytes) -> str | None:
    """Open a quarantined GB -> RS view with RS's own key: which report was it?"""
    now = dt.datetime.now(dt.UTC)
    opened = envelope.open(
        data,
        registry=federation.registry(now=now),
        recipient=RS,
        decryption_keys=federation.decryption_keys("RS"),
        now=now,
    )
    assert opened.message is not None
    return None if opened.message.case_id is None else str(opened.message.case_id)


def _amend(history: Path, target: Path, expired: dict[str, str]) -> None:
    """The client's model, completed from what the recorded times showed: a report whose
    view was sealed before the expiry but routed after it may reach nobody, and that view
    must be quarantined exactly once (``allowed`` empty, the envelope named)."""
    with HistoryWriter(target) as writer:
        for event in read_history([history]):
            if event.type is EventType.INVOKE and event.key in expired:
                event = dataclasses.replace(event, allowed=(), envelopes={"RS": expired[event.key]})
            writer.write(event)


def test_accord_expiring_mid_stream(federation: Federation, tmp_path: Path) -> None:
    """Before the instant reports arrive once each; from it GB's adapter refuses with the
    expiry named, and views caught in flight are quarantined as accord_expired; the
    checker finds nothing lost, doubled or leaked, and the daemons keep running."""
    fixture = take_over_keys(federation, now=dt.datetime.now(dt.UTC))
    names = (GATEWAY, "GB", "RS")
    with federation:
        federation.start_many(names)
        before = {name: _reloads(federation, name) for name in (GATEWAY, "GB")}
        expires = dt.datetime.fromtimestamp(math.ceil(time.time()) + EXPIRES_IN_S, dt.UTC)
        stamp = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        # version 1, which the audit replay needs for decisions made before version 2
        version_1 = tmp_path / "gb-rs-v1.yaml"
        shutil.copyfile(federation.accords_dir / "gb-rs.yaml", version_1)
        _install_expiring(federation, fixture, expires=expires)
        assert wait_until(
            lambda: all(_reloads(federation, n) > before[n] for n in before), timeout_s=_RELOAD_S
        ), "the daemons did not reload version 2 in time"
        deadline = expires.timestamp()
        assert time.time() < deadline - 1, "reloaded too late to see reports before the expiry"

        # An envelope sealed now, before the instant, and published only after it.
        late_id, late_sealed = seal_as(
            federation,
            "GB",
            "RS",
            redact(report(LATE_KEY), [DataCategory.BIOMETRIC, DataCategory.HEALTH]),
            accord="gb-rs",
        )
        late_created = envelope.parse(late_sealed).header.created
        assert dt.datetime.fromisoformat(late_created) < expires

        late_history = tmp_path / "late.jsonl"
        driver, invoked = _stream_across(
            federation,
            tmp_path / "gb.jsonl",
            late_history,
            deadline=deadline,
            late=(late_id, late_sealed),
        )
        assert driver.settle(timeout_s=_SETTLE_S)
        driver.close()
        sent = {e.key for e in read_history([driver.history]) if e.type is EventType.OK}
        failed = {
            e.key: e.detail for e in read_history([driver.history]) if e.type is EventType.FAIL
        }
        assert sent | set(failed) == set(invoked)

        # Refused by the sender: every submission from the instant on, each naming it.
        assert {k for k, at in invoked.items() if at >= deadline} <= set(failed)
        for key, detail in failed.items():
            assert detail.startswith("RS: accord_expired: "), (key, detail)
            assert f"accord gb-rs v2 expired at {stamp}" in detail, (key, detail)

        # Wait until the gateway decided every view and every batch receipt RS sent: those of
        # the views stored well before the instant at least (a view stored after it, on a slow
        # machine, has its receipt refused by RS's own adapter under the lapsed accord: the
        # gateway never sees one). RS writes nothing but receipts to its outbox.
        rs_journal = journal_beside(federation.inbox_path("RS"))

        def decided() -> bool:
            early = [
                row.message_id
                for row in read_inboxes({"RS": federation.inbox_path("RS")})
                if not row.receipt and row.received_at < deadline - 1
            ]
            with SendJournal.open(rs_journal, create=False) as journal:
                if len(journal) or not all(journal.has_source(f"receipt:{m}") for m in early):
                    return False  # a receipt still to seal or to produce
            outbox = outbox_topic(federation.prefix, PartnerCode("RS"))
            receipts = len(asyncio.run(read_topic(federation.bootstrap, outbox, quiet_s=0.5)))
            decisions = federation.metrics(GATEWAY).get("xb_gateway_decisions_total", 0)
            return decisions >= len(sent) + 1 + receipts

        assert wait_until(decided, timeout_s=_SETTLE_S, interval_s=1.0)

        # Classify by the recorded times: what the gateway quarantined, and why.
        held = _read_quarantine(federation)
        views = [h for h in held if (h.sender, h.recipient) == ("GB", "RS")]
        assert {h.reason_code for h in held} <= {"accord_expired"}, held
        expired: dict[str, str] = {}
        for view in views:
            assert view.quarantined_at >= expires  # never before the instant
            created = envelope.parse(view.envelope).header.created
            assert dt.datetime.fromisoformat(created) < expires  # sealed while in force
            case = _case_id(federation, view.envelope)
            assert case is not None
            assert view.message_id is not None
            assert case not in expired, f"{case} quarantined twice"
            expired[case] = view.message_id
        assert expired.pop(LATE_KEY) == late_id
        assert set(expired) <= sent

        amended = tmp_path / "gb-amended.jsonl"
        _amend(driver.history, amended, expired)
        verdict = verdict_of(federation, [amended, late_history], quiet_s=2.0)
        print(
            f"\nexpiry {stamp}: {len(invoked)} submitted, {len(sent)} sealed before it "
            f"({len(sent) - len(expired)} delivered, {len(expired)} caught in flight and "
            f"quarantined), {len(failed)} refused by the sender; {verdict.summary()}"
        )
        assert verdict.passed, verdict.to_json()
        audit = check_audit(federation, accords=[version_1], quiet_s=2.0)
        print(audit.summary())
        assert audit.passed, audit.problems
        delivered = [r for r in read_inboxes({"RS": federation.inbox_path("RS")}) if not r.receipt]
        assert sorted(str(r.key) for r in delivered) == sorted(sent - set(expired))
        assert len(sent) - len(expired) >= 1, "nothing was delivered before the expiry"
        assert failed, "nothing was submitted after the expiry"
        assert all(federation.is_running(name) for name in names)
        counted = federation.metrics(GATEWAY)
        assert counted['xb_gateway_quarantined_total{reason_code="accord_expired"}'] == len(held)
        _restart_after_the_instant(federation, tmp_path, stamp=stamp)


def _restart_after_the_instant(federation: Federation, tmp_path: Path, *, stamp: str) -> None:
    """Stop and start the gateway and GB's adapter with version 2 lapsed: both become ready,
    the accord's gauges say it is not in force, and both refuse by name from the start."""
    for name in (GATEWAY, "GB"):
        assert federation.stop(name) == 0
    federation.start_many([GATEWAY, "GB"])
    for name in (GATEWAY, "GB"):
        assert federation.metrics(name)['xb_accord_in_force{accord="gb-rs"}'] == 0
    driver = SpoolDriver(federation, tmp_path / "after-restart.jsonl")
    driver.submit("GB-EXPIRY-RESTART", ["RS"])
    assert driver.settle(timeout_s=_SETTLE_S)
    driver.close()
    [refused] = [e for e in read_history([driver.history]) if e.type is EventType.FAIL]
    assert refused.detail.startswith("RS: accord_expired: "), refused.detail
    assert f"accord gb-rs v2 expired at {stamp}" in refused.detail
    series = 'xb_gateway_quarantined_total{reason_code="accord_expired"}'
    before = federation.metrics(GATEWAY).get(series, 0.0)
    _, sealed = seal_as(federation, "GB", "RS", report("GB-EXPIRY-AROUND"), accord="gb-rs")
    asyncio.run(
        produce(
            federation.bootstrap,
            outbox_topic(federation.prefix, "GB"),
            sealed,
            headers=[("xb-recipient", b"RS")],
        )
    )
    assert wait_until(
        lambda: federation.metrics(GATEWAY).get(series, 0.0) > before, timeout_s=_SETTLE_S
    ), "the restarted gateway did not quarantine the envelope sealed around GB's adapter"


def _stream_across(
    federation: Federation,
    history: Path,
    late_history: Path,
    *,
    deadline: float,
    late: tuple[str, bytes],
) -> tuple[SpoolDriver, dict[str, float]]:
    """Submit BURST reports to RS every half second until AFTER_S past ``deadline``, and
    publish the ``late`` envelope (sealed before it) on GB's outbox just after it; returns
    the driver and each report's submission time."""
    late_id, late_sealed = late
    driver = SpoolDriver(federation, history)
    invoked: dict[str, float] = {}
    number = 0
    published = False
    with HistoryWriter(late_history) as late_writer:
        while time.time() < deadline + AFTER_S:
            for _ in range(BURST):
                key = f"GB-EXPIRY-{number:05d}"
                invoked[key] = time.time()
                driver.submit(key, ["RS"])
                number += 1
            driver.poll()
            if not published and time.time() >= deadline:
                late_writer.write(
                    Event(
                        EventType.INVOKE,
                        "GB",
                        LATE_KEY,
                        time.time(),
                        recipients=("RS",),
                        allowed=(),
                        envelopes={"RS": late_id},
                    )
                )
                asyncio.run(
                    produce(
                        federation.bootstrap,
                        outbox_topic(federation.prefix, "GB"),
                        late_sealed,
                        headers=[("xb-recipient", b"RS")],
                    )
                )
                late_writer.write(
                    Event(EventType.OK, "GB", LATE_KEY, time.time(), recipients=("RS",))
                )
                published = True
            time.sleep(0.5)  # pacing the stream, not waiting for anything
    assert published
    return driver, invoked
