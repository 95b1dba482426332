"""No rename, no restart and no stale registry moves the gateway or an adapter back in trust.

With the gateway and the GB and RS adapters running as processes on keys the test holds:

- **rollback by rename**: gb-rs version 2 (GB -> RS at most TLP:GREEN) is installed; version 1
  (TLP:AMBER allowed), still co-signed and unexpired, is then copied in as another file. Both
  daemons keep deciding with version 2: GB's adapter refuses an AMBER report, the gateway
  quarantines one sealed around the adapter under version 2;
- **rollback by restart**: both are stopped, version 1 put back in place of version 2 and the
  registry file replaced by its older version; restarted, they refuse version 1 (the pair has
  no accord: ``no_accord``) and keep registry version 2 (`broker trust show`);
- **an expired registry pauses both alike**: a registry expiring seconds ahead is installed;
  past that instant the gateway and GB's adapter both report not ready, and both are ready again
  once a fresh registry is installed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import keys
from broker.config import outbox_topic, quarantine_topic
from broker.cosign import sign_accord, signature_path, write_signature_file
from broker.demo.federation import GATEWAY, Federation
from broker.keys.testing import RegistryFixture
from broker.pipeline import parse_quarantine_record
from broker.policy import load_accord
from broker.schema import TLP, DataCategory, message_bytes, redact
from broker.transport.testing import KafkaUnderTest
from tests.faults.rekey import classic_accords, install_registry, take_over_keys

from .harness import TopicReader, new_federation, produce, report, seal_as, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

_TIMEOUT_S = 60.0
_DAEMONS = (GATEWAY, "GB", "RS")
_DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def held(
    kafka: KafkaUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Federation, RegistryFixture]]:
    """GB, RS and the gateway on keys this module holds (roots and policy keys included)."""
    root = tmp_path_factory.mktemp("trust") / "federation"
    # the rollback goes from a version 2 made here back to the shipped version 1 of gb-rs
    accords = classic_accords(root.with_name("accords"))
    with new_federation(root, kafka, accords=accords) as federation:
        fixture = take_over_keys(federation, now=dt.datetime.now(dt.UTC))
        federation.start_many(_DAEMONS)
        yield federation, fixture


def _install_accord(
    federation: Federation, fixture: RegistryFixture, text: str, *, name: str = "gb-rs.yaml"
) -> None:
    """Co-sign ``text`` with GB's and RS's policy keys and install it as ``name``."""
    path = federation.accords_dir / name
    staged = path.with_name(f".{name}.new")
    staged.write_text(text, encoding="utf-8")
    accord = load_accord(staged)
    signatures = None
    for party in sorted(accord.party_codes):
        signatures = sign_accord(
            accord, signatures, key=fixture.partners[party].policy, partner=party
        )
    assert signatures is not None
    write_signature_file(signature_path(path), signatures)
    staged.replace(path)


def _reloads(federation: Federation, name: str) -> int:
    return federation.log_path(name).read_text(errors="replace").count('"accords_reloaded"')


def _await_reloads(federation: Federation, before: dict[str, int]) -> None:
    wait_for(
        lambda: all(_reloads(federation, n) > before[n] for n in before) or None,
        timeout_s=_TIMEOUT_S,
        what="the gateway and GB to reload the accords",
    )


def _amber_refused_by_gb(federation: Federation, scratch: Path) -> str:
    """`broker send` of a TLP:AMBER report from GB to RS; the refusal GB's adapter records
    (queued past `broker send`'s own check, which reads the same accords, so that the daemon's
    decision is the one under test)."""
    message = report(f"GB-TRUST-{uuid.uuid4().hex[:6].upper()}").model_copy(
        update={"tlp": TLP.AMBER}
    )
    source = scratch / f"{uuid.uuid4().hex}.json"
    source.write_bytes(message_bytes(message))
    result = subprocess.run(
        [sys.executable, "-m", "broker", "send", "--config", str(federation.config_path("GB")),
         "--to", "RS", "--no-precheck", str(source)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    spooled = Path(result.stdout.strip().rpartition(": ")[2])
    reason = spooled.parent.parent / "rejected" / f"{spooled.name}.reason"
    return wait_for(
        lambda: reason.read_text() if reason.exists() else None,
        timeout_s=_TIMEOUT_S,
        what="GB's adapter to refuse the AMBER report",
    )


def _quarantined_around_gb(federation: Federation) -> tuple[str, object]:
    """An AMBER report sealed with GB's key around its adapter: the quarantine's reason code
    and decision."""
    message = redact(
        report(f"GB-TRUST-{uuid.uuid4().hex[:6].upper()}").model_copy(update={"tlp": TLP.AMBER}),
        [DataCategory.BIOMETRIC],
    )
    message_id, sealed = seal_as(federation, "GB", "RS", message, accord="gb-rs")
    asyncio.run(
        produce(
            federation.bootstrap,
            outbox_topic(federation.prefix, "GB"),
            sealed,
            headers=[("xb-recipient", b"RS")],
        )
    )

    def found() -> tuple[str, object] | None:
        for record in TopicReader(federation.bootstrap, quarantine_topic(federation.prefix)).read():
            parsed = parse_quarantine_record(record.value or b"")
            if parsed.message_id == message_id:
                return str(parsed.reason_code), parsed.decision
        return None

    return wait_for(found, timeout_s=_TIMEOUT_S, what="the gateway to quarantine it")


def _trust_show(federation: Federation, name: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "broker", "trust", "show", "--json", "--config",
         str(federation.config_path(name))],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    shown: dict[str, object] = json.loads(result.stdout)
    return shown


def _next_version(fixture: RegistryFixture, data: bytes, *, expires: dt.datetime) -> bytes:
    """The registry ``data`` with a new expiry: the next version, signed by every root."""
    draft = keys.RegistryDraft.from_bytes(data)
    draft.set_expires(expires)
    for root in fixture.roots:
        draft.sign(root)
    return draft.to_bytes()


def _registry_v2(fixture: RegistryFixture) -> bytes:
    """Registry version 2: version 1 with a day more (the same bytes every time)."""
    return _next_version(fixture, fixture.data, expires=fixture.registry.expires + _DAY)


def _ready(federation: Federation, name: str) -> bool:
    try:
        url = f"http://127.0.0.1:{federation.port(name)}/readyz"
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_an_older_accord_under_another_name_never_decides(
    held: tuple[Federation, RegistryFixture], tmp_path: Path
) -> None:
    """With version 2 in force, version 1 copied in as gb-rs-old.yaml changes nothing."""
    federation, fixture = held
    shipped = (federation.accords_dir / "gb-rs.yaml").read_text(encoding="utf-8")
    (tmp_path / "v1.yaml").write_text(shipped, encoding="utf-8")
    stricter = re.sub(r"(?m)^version: 1$", "version: 2", shipped, count=1)
    stricter, narrowed = re.subn(r"(?m)^(    max_tlp: )AMBER$", r"\1GREEN", stricter, count=1)
    assert narrowed == 1
    before = {n: _reloads(federation, n) for n in (GATEWAY, "GB")}
    _install_accord(federation, fixture, stricter)
    _await_reloads(federation, before)
    before = {n: _reloads(federation, n) for n in (GATEWAY, "GB")}
    _install_accord(federation, fixture, shipped, name="gb-rs-old.yaml")
    _await_reloads(federation, before)
    assert _amber_refused_by_gb(federation, tmp_path).startswith("RS: policy_denied: ")
    code, decision = _quarantined_around_gb(federation)
    assert code == "policy_denied"
    assert isinstance(decision, dict)
    assert decision["accord_version"] == 2
    for name in (GATEWAY, "GB"):
        log = federation.log_path(name).read_text(errors="replace")
        assert "gb-rs v1 is older than version 2, which has been in force" in log


def test_after_a_restart_older_files_are_refused(
    held: tuple[Federation, RegistryFixture], tmp_path: Path
) -> None:
    """Stopped, version 1 put in place of version 2 and registry version 1 back in place of
    version 2; restarted, both daemons keep version 2 of the registry and take no accord."""
    federation, fixture = held
    install_registry(federation, _registry_v2(fixture))
    wait_for(
        lambda: (
            all(
                '"registry_reloaded"' in federation.log_path(n).read_text(errors="replace")
                for n in (GATEWAY, "GB")
            )
            or None
        ),
        timeout_s=_TIMEOUT_S,
        what="the daemons to adopt registry version 2",
    )
    for name in (GATEWAY, "GB"):
        assert federation.stop(name) == 0
    (federation.accords_dir / "gb-rs-old.yaml").unlink()
    signature_path(federation.accords_dir / "gb-rs-old.yaml").unlink()
    version_1 = (federation.accords_dir / "gb-rs.yaml").read_text(encoding="utf-8")
    version_1 = re.sub(r"(?m)^version: 2$", "version: 1", version_1, count=1)
    version_1 = re.sub(r"(?m)^(    max_tlp: )GREEN$", r"\1AMBER", version_1, count=1)
    _install_accord(federation, fixture, version_1)
    install_registry(federation, fixture.data)
    federation.start_many([GATEWAY, "GB"])
    for name in (GATEWAY, "GB"):
        shown = _trust_show(federation, name)
        assert shown["registry"] == {
            "version": 2,
            "expires": keys.format_timestamp(fixture.registry.expires + _DAY),
        }
        floors = shown["floors"]
        assert isinstance(floors, dict)
        assert floors["gb-rs"] == 2
        log = federation.log_path(name).read_text(errors="replace")
        assert "rollback refused" in log
    assert _amber_refused_by_gb(federation, tmp_path).startswith("RS: no_accord: ")
    code, _ = _quarantined_around_gb(federation)
    assert code == "no_accord"


def test_an_expired_registry_pauses_the_gateway_and_the_adapter_alike(
    held: tuple[Federation, RegistryFixture],
) -> None:
    """Past the registry's expiry both report not ready; a fresh registry revives both."""
    federation, fixture = held
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expiring = _next_version(fixture, _registry_v2(fixture), expires=now + dt.timedelta(seconds=12))
    install_registry(federation, expiring)
    wait_for(
        lambda: not any(_ready(federation, n) for n in (GATEWAY, "GB")) or None,
        timeout_s=_TIMEOUT_S,
        what="the gateway and GB to pause on the expired registry",
    )
    for name in (GATEWAY, "GB"):
        assert '"registry_expired_paused"' in federation.log_path(name).read_text(errors="replace")
    install_registry(
        federation, _next_version(fixture, expiring, expires=now + dt.timedelta(days=30))
    )
    wait_for(
        lambda: all(_ready(federation, n) for n in (GATEWAY, "GB")) or None,
        timeout_s=_TIMEOUT_S,
        what="the gateway and GB to resume on a fresh registry",
    )
