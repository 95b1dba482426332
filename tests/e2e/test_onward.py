"""Onward sharing with the originator's consent, through the running exchange.

RS sends GB a report. GB asks RS whether it may pass the summary to MK; RS grants it for the
summary alone; GB forwards; MK stores exactly the report's markings and summary, both proven
by RS's signature, with RS's grant beside them. A refused request cannot be forwarded, and a
forward whose grant does not hold is refused by the gateway. Every daemon is a real process
on a real Kafka-protocol broker; every command a process of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.demo.federation import Federation
from broker.schema import message_bytes
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


def _arrived(federation: Federation, partner: str, match: dict[str, Any], what: str) -> Path:
    return wait_for(lambda: delivered(federation, partner, match), timeout_s=_TIMEOUT_S, what=what)


def _queued(output: str) -> str:
    (view,) = json.loads(output)["views"]
    return str(view["message_id"])


def _report_at_gb(federation: Federation, tmp_path: Path) -> tuple[str, str]:
    case = f"RS-E2E-{uuid.uuid4().hex[:8].upper()}"
    path = tmp_path / f"{case}.json"
    path.write_bytes(message_bytes(report(case)))
    view = _queued(cli(federation, "send", str(path), "--to", "GB", "--json", partner="RS"))
    _arrived(federation, "GB", {"case_id": case}, "the report at GB")
    return view, case


def _ask(federation: Federation, view: str) -> str:
    """GB asks RS for the summary of ``view`` for MK; the request's id as RS received it."""
    asked = _queued(
        cli(federation, "onward", "request", view, "--to", "MK", "--fields", "body.summary",
            "--authority", "MoI border police", "--justification", "the same crossing point",
            "--json", partner="GB")
    )  # fmt: skip
    _arrived(federation, "RS", {"original_message": view}, "GB's request at RS")
    return asked


def test_a_granted_summary_reaches_the_third_party_proven_by_the_originator(
    federation: Federation, tmp_path: Path
) -> None:
    view, _ = _report_at_gb(federation, tmp_path)
    request = _ask(federation, view)
    grant = _queued(cli(federation, "onward", "grant", request, "--json", partner="RS"))
    _arrived(federation, "GB", {"request": request, "decision": "granted"}, "RS's grant at GB")
    forward = _queued(cli(federation, "onward", "forward", grant, "--json", partner="GB"))
    # passing it on is a disclosure, in GB's read log before it left (s.62)
    reads = cli(federation, "inbox", "reads", "--json", view, partner="GB").splitlines()
    assert [json.loads(r)["action"] for r in reads] == ["disclose"]
    at_mk = _arrived(federation, "MK", {"type": "onward.forward"}, "GB's forward at MK")
    assert at_mk.stem == forward
    shown = json.loads(cli(federation, "inbox", "show", forward, partner="MK"))
    body = shown["message"]["body"]
    revealed = set(body["original"]["fields"])
    assert "body.summary" in revealed
    assert not {p for p in revealed if p.startswith("body.")} - {"body.summary"}
    assert "case_id" not in revealed  # not granted, so not passed on
    assert json.loads(body["original"]["header"])["sender"] == "RS"
    assert body["grant"]["fields"]["body.third_party_country"]["value"] == "MK"


def test_a_refused_request_cannot_be_forwarded(federation: Federation, tmp_path: Path) -> None:
    view, _ = _report_at_gb(federation, tmp_path)
    request = _ask(federation, view)
    refusal = _queued(
        cli(federation, "onward", "refuse", request, "--reason", "covert deployment",
            "--json", partner="RS")
    )  # fmt: skip
    _arrived(federation, "GB", {"request": request, "decision": "refused"}, "the refusal at GB")
    said = cli(federation, "onward", "forward", refusal, partner="GB", expect=10)
    assert "covert deployment" in said


def test_only_the_originator_can_grant(federation: Federation, tmp_path: Path) -> None:
    """A request about a view RS never sent (GB crafts one, naming an id of its choosing)
    cannot be granted at RS: only a view's originator can consent to passing it on."""
    other = "01900000-0000-7000-8000-0000000000aa"
    crafted = {
        "type": "onward.request",
        "schema_version": 1,
        "classification": "OFFICIAL",
        "tlp": "GREEN",
        "handling": "H0",
        "purposes": ["people-smuggling"],
        "body": {
            "original_message": other,
            "third_party_country": "MK",
            "third_party_authority": "MoI border police",
            "purposes": ["people-smuggling"],
            "fields_requested": ["body.summary"],
            "justification": "crafted",
        },
    }
    path = tmp_path / "crafted.json"
    path.write_text(json.dumps(crafted))
    request = _queued(cli(federation, "send", str(path), "--to", "RS", "--json", partner="GB"))
    _arrived(federation, "RS", {"original_message": other}, "the crafted request at RS")
    said = cli(federation, "onward", "grant", request, partner="RS", expect=2)
    assert f"{other} is not a view this adapter sent to GB" in said
