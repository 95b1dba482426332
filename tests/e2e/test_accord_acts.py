"""A party suspends an accord, and it takes effect at once everywhere; resuming needs both.

With the gateway and the GB and RS adapters running as processes: RS signs a suspension of
gb-rs with `broker policy suspend`; from the daemons' next reload GB's adapter refuses a new
report as ``accord_suspended``, the gateway quarantines one sealed around GB's adapter the
same way, and the gateway's audit log records the act. GB's resumption alone changes
nothing; once RS co-signs it, reports flow again, and the audit log verifies and replays
(replay follows the acts in the log).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.soak.audit_check import check_audit
from broker.config import audit_topic, outbox_topic, quarantine_topic
from broker.demo.federation import GATEWAY, Federation
from broker.pipeline import parse_audit_record, parse_quarantine_record
from broker.schema import DataCategory, message_bytes, redact
from broker.transport.testing import KafkaUnderTest

from .harness import TopicReader, inbox, new_federation, produce, report, seal_as, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

_TIMEOUT_S = 60.0
_DAEMONS = (GATEWAY, "GB", "RS")
_IN_FORCE = 'xb_accord_in_force{accord="gb-rs"}'


@pytest.fixture(scope="module")
def federation(
    kafka: KafkaUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    """The gateway, GB and RS, running on their own topics."""
    with new_federation(tmp_path_factory.mktemp("acts") / "federation", kafka) as running:
        running.start_many(_DAEMONS)
        yield running


def _policy(federation: Federation, kind: str, partner: str) -> str:
    """`broker policy KIND accords/gb-rs.yaml --partner PARTNER` with PARTNER's policy key."""
    result = subprocess.run(
        [sys.executable, "-m", "broker", "policy", kind,
         str(federation.accords_dir / "gb-rs.yaml"), "--partner", partner,
         "--key", str(federation.policy_key_path(partner)),
         "--passphrase-file", str(federation.passphrase_file(partner)),
         "--registry", str(federation.registry_path), "--reason", f"{kind} in a test"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def _sharing_everywhere(federation: Federation, value: float) -> None:
    """Wait until the gateway and both adapters report gb-rs in force (1) or halted (0)."""
    wait_for(
        lambda: all(federation.metrics(n).get(_IN_FORCE) == value for n in _DAEMONS) or None,
        timeout_s=_TIMEOUT_S,
        what=f"{_IN_FORCE} == {value} at every daemon",
    )


def _reloads(federation: Federation) -> int:
    return federation.log_path(GATEWAY).read_text(errors="replace").count('"accords_reloaded"')


def _run_send(
    federation: Federation, case_id: str, scratch: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    source = scratch / f"{case_id}.json"
    source.write_bytes(message_bytes(report(case_id)))
    return subprocess.run(
        [sys.executable, "-m", "broker", "send", "--config", str(federation.config_path("GB")),
         "--to", "RS", *options, str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def _send(federation: Federation, case_id: str, scratch: Path, *options: str) -> Path:
    """`broker send --to RS` from GB; the spool file it queued."""
    result = _run_send(federation, case_id, scratch, *options)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().rpartition(": ")[2])


def _delivered(federation: Federation, case_id: str) -> None:
    wait_for(
        lambda: any(r.message.case_id == case_id for r in inbox(federation, "RS").values()) or None,
        timeout_s=_TIMEOUT_S,
        what=f"{case_id} stored at RS",
    )


def test_a_suspension_stops_every_flow_at_once_and_resuming_takes_both(
    federation: Federation, tmp_path: Path
) -> None:
    """Suspended by RS alone: refused at GB's adapter, quarantined at the gateway, audited;
    resumed only when GB and RS have both signed."""
    _send(federation, case := f"GB-ACT-{uuid.uuid4().hex[:6].upper()}", tmp_path)
    _delivered(federation, case)

    printed = _policy(federation, "suspend", "RS")
    assert "gb-rs act 1 suspend, signed by RS" in printed
    _sharing_everywhere(federation, 0.0)

    # broker send refuses up front, naming the suspension, and queues nothing
    refused = _run_send(federation, f"GB-ACT-{uuid.uuid4().hex[:6].upper()}", tmp_path)
    assert refused.returncode == 10, refused.stdout + refused.stderr
    assert "accord_suspended" in refused.stdout + refused.stderr

    # queued past that check, GB's adapter refuses it, naming the suspension
    spooled = _send(federation, f"GB-ACT-{uuid.uuid4().hex[:6].upper()}", tmp_path, "--no-precheck")
    reason = spooled.parent.parent / "rejected" / f"{spooled.name}.reason"
    text = wait_for(
        lambda: reason.read_text() if reason.exists() else None,
        timeout_s=_TIMEOUT_S,
        what="GB's adapter to refuse the report",
    )
    assert text.startswith("RS: accord_suspended: RS suspended accord gb-rs at ")

    # the gateway quarantines what is written around GB's adapter
    message = redact(report(f"GB-ACT-{uuid.uuid4().hex[:6].upper()}"), [DataCategory.BIOMETRIC])
    message_id, sealed = seal_as(federation, "GB", "RS", message, accord="gb-rs")
    asyncio.run(
        produce(
            federation.bootstrap,
            outbox_topic(federation.prefix, "GB"),
            sealed,
            headers=[("xb-recipient", b"RS")],
        )
    )

    def held() -> str | None:
        records = TopicReader(federation.bootstrap, quarantine_topic(federation.prefix)).read()
        for record in records:
            parsed = parse_quarantine_record(record.value or b"")
            if parsed.message_id == message_id:
                return str(parsed.reason_code)
        return None

    assert wait_for(held, timeout_s=_TIMEOUT_S, what="the quarantine") == "accord_suspended"

    # GB's resumption alone changes nothing
    before = _reloads(federation)
    assert "awaiting RS" in _policy(federation, "resume", "GB")
    wait_for(lambda: _reloads(federation) > before or None, timeout_s=_TIMEOUT_S, what="a reload")
    assert all(federation.metrics(n).get(_IN_FORCE) == 0.0 for n in _DAEMONS)

    # RS co-signs: sharing resumes
    assert "gb-rs act 2 resume, signed by GB, RS" in _policy(federation, "resume", "RS")
    _sharing_everywhere(federation, 1.0)
    _send(federation, after := f"GB-ACT-{uuid.uuid4().hex[:6].upper()}", tmp_path)
    _delivered(federation, after)

    # both acts are in the audit log, in order, and the log verifies and replays
    acts = [
        parse_audit_record(r.value)
        for r in TopicReader(federation.bootstrap, audit_topic(federation.prefix)).read()
        if r.value is not None and b'"kind":"accord_act"' in r.value
    ]
    assert [(a.rule_ids, a.sender, a.reason_code) for a in acts] == [
        (("gb-rs.suspend",), "RS", "accord_suspended"),
        (("gb-rs.resume",), "GB", None),
    ]
    bundle = tmp_path / "audit.bundle"
    audit = check_audit(federation, bundle=bundle, quiet_s=2.0)
    assert audit.passed, audit.problems
    # an auditor proves both acts from the parties' signatures in the acts file
    replayed = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker",
            "audit",
            "replay",
            str(bundle),
            "--acts",
            str(federation.accords_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "signed acts proven: 2" in replayed.stdout
