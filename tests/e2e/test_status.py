"""`broker send` then `broker status`, as an operator would, against the running exchange: every
daemon a real process on a real Kafka-protocol broker, every command a process of its own."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid

import pytest
from ruamel.yaml import YAML

from broker.demo.federation import Federation
from broker.schema import message_bytes
from broker.transport.testing import KafkaUnderTest

from .harness import new_federation, report, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

_TIMEOUT_S = 60.0
MONITORING = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "monitoring"


def _broker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker", *args], capture_output=True, text=True, check=False
    )


def test_status_shows_each_recipients_fate_up_to_its_receipt(
    exchange: Federation, tmp_path: pathlib.Path
) -> None:
    """GB sends to RS, MK and QQ: QQ is refused at once (no accord); RS's and MK's views are
    acknowledged by Kafka at an outbox position and then receipted by their recipients, with
    the time each says it received its view."""
    source = tmp_path / "report.json"
    source.write_bytes(message_bytes(report(f"GB-STATUS-{uuid.uuid4().hex[:8].upper()}")))
    config = str(exchange.config_path("GB"))
    sent = _broker("send", "--json", "--config", config, "--to", "RS,MK,QQ", str(source))
    assert sent.returncode == 0, sent.stderr
    views = {view["recipient"]: view for view in json.loads(sent.stdout)["views"]}
    assert views["QQ"]["reason_code"] == "no_accord"
    rs_id = views["RS"]["message_id"]

    def receipted() -> dict[str, dict[str, object]] | None:
        status = _broker("status", "--json", "--config", config, rs_id)
        assert status.returncode == 0, status.stderr
        fates = {view["recipient"]: view for view in json.loads(status.stdout)["views"]}
        done = all(fate["state"] == "receipted" for fate in fates.values())
        return fates if done else None

    fates = wait_for(receipted, timeout_s=_TIMEOUT_S, what="receipts from RS and MK")
    assert set(fates) == {"RS", "MK"}
    for recipient, fate in fates.items():
        assert fate["message_id"] == views[recipient]["message_id"]
        assert fate["position"]["topic"] == f"{exchange.prefix}outbox.GB"  # type: ignore[index]
        receipt = fate["receipt"]
        assert isinstance(receipt, dict)
        assert receipt["status"] == "accepted"
        assert str(fate["acknowledged_at"]) <= str(receipt["stored_at"])

    text = _broker("status", "--config", config, rs_id[:18])
    assert text.returncode == 0, text.stderr
    assert f"RS  {rs_id}  receipt accepted by RS" in text.stdout
    assert "acknowledged by Kafka at " in text.stdout


def test_a_view_the_gateway_quarantines_shows_as_quarantined_with_its_reason(
    kafka: KafkaUnderTest, tmp_path: pathlib.Path
) -> None:
    """GB's adapter holds gb-xk, the gateway does not (its accords directory lacks it): GB's
    report to XK passes GB's own check and is quarantined by the gateway, which tells GB,
    signed, on GB's inbox. `broker status` then says so, with the reason code and the
    reason, instead of "no receipt yet" for ever."""
    with new_federation(tmp_path / "federation", kafka) as federation:
        held = tmp_path / "gateway-accords"
        held.mkdir()
        for path in federation.accords_dir.iterdir():
            if not path.name.startswith("gb-xk."):
                shutil.copy(path, held / path.name)
        yaml = YAML(typ="safe")
        gateway_config = federation.config_path("gateway")
        document = yaml.load(gateway_config.read_text())
        document["accords"] = {"dir": str(held)}
        with gateway_config.open("w") as handle:
            yaml.dump(document, handle)
        federation.start_many(["gateway", "GB", "XK"])

        source = tmp_path / "report.json"
        source.write_bytes(message_bytes(report(f"GB-NOTICE-{uuid.uuid4().hex[:8].upper()}")))
        config = str(federation.config_path("GB"))
        sent = _broker("send", "--json", "--config", config, "--to", "XK", str(source))
        assert sent.returncode == 0, sent.stderr
        (view,) = json.loads(sent.stdout)["views"]

        def quarantined() -> dict[str, object] | None:
            status = _broker("status", "--json", "--config", config, view["message_id"])
            if status.returncode != 0:  # not yet taken from the spool
                return None
            (fate,) = json.loads(status.stdout)["views"]
            return fate if fate["state"] == "quarantined" else None

        fate = wait_for(quarantined, timeout_s=_TIMEOUT_S, what="the gateway's notice at GB")
        notice = fate["quarantined"]
        assert isinstance(notice, dict)
        assert notice["reason_code"] == "no_accord"
        assert notice["reason"] == "no accord between GB and XK"
        text = _broker("status", "--config", config, view["message_id"])
        assert "quarantined by the gateway: no_accord" in text.stdout


def test_a_received_report_is_indexed_while_idle_and_found_by_a_name_in_another_script(
    exchange: Federation, tmp_path: pathlib.Path
) -> None:
    """RS's adapter indexes what it stored once it has nothing to read (not while
    delivering); `broker inbox search` then finds the report by a place written in Cyrillic
    that the report spells in Latin (Preševo)."""
    case = f"GB-SEARCH-{uuid.uuid4().hex[:8].upper()}"
    source = tmp_path / "report.json"
    source.write_bytes(message_bytes(report(case)))
    sent = _broker("send", "--json", "--config", str(exchange.config_path("GB")), "--to", "RS",
                   str(source))  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    (view,) = json.loads(sent.stdout)["views"]

    def indexed() -> bool | None:
        if not exchange.inbox_path("RS").exists():
            return None
        with sqlite3.connect(exchange.inbox_path("RS")) as conn:
            stored = conn.execute(
                "SELECT 1 FROM messages WHERE message_id = ?", (view["message_id"],)
            ).fetchone()
            waiting = conn.execute("SELECT count(*) FROM search_pending").fetchone()[0]
        return True if stored and not waiting else None

    wait_for(indexed, timeout_s=_TIMEOUT_S, what="RS to store and index the report")
    config = str(exchange.config_path("RS"))
    found = _broker("inbox", "search", "--config", config, "--case", case, "--json", "Прешево")
    assert found.returncode == 0, found.stderr
    assert [json.loads(line)["message_id"] for line in found.stdout.splitlines()] == [
        view["message_id"]
    ]
    missing = _broker("inbox", "search", "--config", config, "--case", case, "Скопје")
    assert missing.returncode == 0, missing.stderr
    assert view["message_id"] not in missing.stdout


def test_every_stage_is_timed_and_every_known_series_exported(exchange: Federation) -> None:
    """After the exchange above, each daemon's /metrics has a latency histogram per stage it
    runs (seal at the sender, route at the gateway, open and end to end at a receiver), its
    reason-code series at zero or more, the expiry gauges and the process series."""
    sender, gateway, receiver = (exchange.metrics(name) for name in ("GB", "gateway", "RS"))
    assert sender["xb_adapter_seal_seconds_count"] >= 1
    assert gateway["xb_gateway_route_seconds_count"] >= 2  # the view and its receipt
    assert receiver["xb_adapter_open_seconds_count"] >= 1
    assert receiver["xb_adapter_end_to_end_seconds_count"] >= 1
    assert receiver['xb_adapter_end_to_end_seconds_bucket{le="+Inf"}'] >= 1
    assert gateway['xb_gateway_quarantined_total{reason_code="revoked_key"}'] >= 0
    assert sender['xb_adapter_refused_total{reason_code="rate_limited"}'] >= 0
    for metrics in (sender, gateway, receiver):
        assert metrics["xb_registry_expiry_seconds"] > 0
        assert metrics["process_resident_memory_bytes"] > 0
        assert metrics['xb_key_expiry_seconds{owner="GB",role="signing"}'] > 0
    assert gateway["xb_audit_last_checkpoint_timestamp_seconds"] >= 0


def test_every_series_the_dashboard_and_alerts_read_is_served(exchange: Federation) -> None:
    """deploy/monitoring names only series that running daemons serve, from their first
    scrape (labelled ones at zero before any event); only the certificate gauge is absent
    here, because the embedded broker speaks no TLS."""
    served = {
        series.split("{")[0]
        for name in ("GB", "RS", "gateway")
        for series in exchange.metrics(name)
    }
    board = json.loads((MONITORING / "dashboard.json").read_text())
    exprs = [t["expr"] for p in board["panels"] if p["type"] != "row" for t in p["targets"]]
    rules = YAML(typ="safe").load((MONITORING / "alerts.yaml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    named = {name for expr in exprs for name in re.findall(r"\b((?:xb|process)_[a-z0-9_]+)", expr)}
    assert named - served == {"xb_certificate_expiry_seconds"}
