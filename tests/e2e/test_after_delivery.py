"""After delivery, with the real daemons: RS keeps GB's report as long as the accord says and
says so, proves it to a third party with a disclosure bundle, erases it on request while its
adapter runs, and no plaintext copy outlives what it belongs to; GB keeps RS's signed receipt
as evidence it can disclose in turn, and its spool keeps no copy once Kafka acknowledged."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from broker.demo.federation import Federation
from broker.demo.tracker import receipt_file
from broker.schema import message_bytes
from broker.transport.testing import KafkaUnderTest

from .harness import cli, delivered, new_federation, report, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def federation(
    kafka: KafkaUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    """The gateway, GB and RS; RS allowed to keep anything ten years, so the accord decides."""
    with new_federation(tmp_path_factory.mktemp("federation"), kafka) as federation:
        yaml = YAML(typ="safe")
        config = federation.config_path("RS")
        document = yaml.load(config.read_text())
        document["store"]["retention_days"] = 3650
        with config.open("w") as handle:
            yaml.dump(document, handle)
        federation.start_many(["gateway", "GB", "RS"])
        yield federation


def _verify(federation: Federation, bundle: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "broker", "disclosure", "verify", str(bundle), "--json",
         "--registry", str(federation.registry_path)],
        capture_output=True, text=True, timeout=_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_view_is_kept_as_its_accord_says_proven_and_erased_leaving_no_copy(
    federation: Federation, tmp_path: Path
) -> None:
    case = f"GB-E2E-{uuid.uuid4().hex[:8].upper()}"
    message = tmp_path / "report.json"
    message.write_bytes(message_bytes(report(case)))
    cli(federation, "send", str(message), "--to", "RS", partner="GB")
    at_rs = wait_for(
        lambda: delivered(federation, "RS", {"case_id": case}),
        timeout_s=_TIMEOUT_S,
        what="the report in RS's delivery directory",
    )
    message_id = at_rs.stem

    # kept as long as the accord's flow says, not RS's laxer maximum, and said so
    shown = json.loads(cli(federation, "inbox", "show", message_id, partner="RS"))
    assert shown["retention"]["rule"] == "accord"
    assert "flow GB-RS-OPS of accord gb-rs v" in shown["retention"]["why"]
    assert shown["retention"]["why"].endswith("keeps at most 730 days")

    # GB's spool copy goes once Kafka has acknowledged the view
    sent = federation.spool_dir("GB") / "sent"
    wait_for(
        lambda: not list(sent.glob("*.json")),
        timeout_s=_TIMEOUT_S,
        what="GB's sent/ copy to be removed",
    )

    # RS proves to a third party what it received: one field, checked with the registry alone
    bundle = tmp_path / "rs.bundle.json"
    cli(
        federation,
        "disclose",
        message_id,
        "--fields",
        "case_id",
        "--out",
        str(bundle),
        partner="RS",
    )
    proven = _verify(federation, bundle)
    assert proven["disclosed"] == {"case_id": case}
    assert (proven["message_id"], proven["sender"], proven["recipient"]) == (message_id, "GB", "RS")

    # GB keeps RS's signed receipt as evidence and can disclose it in turn
    receipt = wait_for(
        lambda: receipt_file(federation.delivery_dir("GB"), message_id),
        timeout_s=_TIMEOUT_S,
        what="RS's receipt at GB",
    )
    receipt_bundle = tmp_path / "gb.receipt.json"
    cli(federation, "disclose", receipt.stem, "--fields", "body.items",
         "--out", str(receipt_bundle), partner="GB")  # fmt: skip
    acknowledged = _verify(federation, receipt_bundle)
    lines = {line["receipt_for"]: line for line in acknowledged["disclosed"]["body.items"]}
    assert lines[message_id]["status"] == "accepted"
    assert (acknowledged["sender"], acknowledged["recipient"]) == ("RS", "GB")

    # erased on request while RS's adapter runs: the delivery file goes with the key
    said = cli(
        federation, "inbox", "erase", message_id, "--reason", "request 2026/17", partner="RS"
    )
    assert "by erasure: request 2026/17" in said
    assert not at_rs.exists()
    refused = cli(federation, "inbox", "show", message_id, partner="RS", expect=2)
    assert "by erasure: request 2026/17" in refused
    again = tmp_path / "again.json"
    cli(federation, "disclose", message_id, "--fields", "case_id", "--out", str(again),
         partner="RS", expect=2)  # fmt: skip
    assert not again.exists()
    assert federation.is_running("RS")
    up = {
        k: v for k, v in federation.metrics("RS").items() if k.startswith("xb_background_task_up")
    }
    assert up, "RS reports its tasks"
    assert all(value == 1.0 for value in up.values()), up
