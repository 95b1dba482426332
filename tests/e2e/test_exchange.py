"""The exchange end to end, with every daemon a real process on a real Kafka-protocol broker.

GB's adapter takes a report from ``broker send``; the gateway routes the sealed views; RS, MK
and XK each store exactly the view their accord allows. Whatever a compromised sender or
anyone with topic access writes around the adapters (a forbidden flow, tampered bytes, a
replayed envelope or delivery) is quarantined or dropped, and counted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import uuid

import pytest
from stix2validator import ValidationOptions, validate_instance

from broker.config import inbox_topic, outbox_topic, quarantine_topic
from broker.demo.federation import Federation
from broker.ids import PartnerCode
from broker.pipeline import QuarantineRecord, parse_quarantine_record, verify_delivery
from broker.schema import (
    TLP,
    DataCategory,
    Message,
    categories_present,
    message_bytes,
    parse_message,
    redact,
)

from .harness import Received, TopicReader, flip_byte, inbox, produce, report, seal_as, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

_TIMEOUT_S = 60.0
_REPORT_CATEGORIES = frozenset(
    {
        DataCategory.OPERATIONAL,
        DataCategory.IDENTITY,
        DataCategory.LOCATION,
        DataCategory.COMMUNICATIONS,
        DataCategory.VEHICLE,
        DataCategory.TRAVEL_DOCUMENT,
        DataCategory.BIOMETRIC,
    }
)
# what each accord's GB -> partner flow redacts from the report (policies/gb-*.yaml)
_REDACTED = {
    "RS": frozenset({DataCategory.BIOMETRIC}),
    "MK": frozenset({DataCategory.BIOMETRIC, DataCategory.LOCATION, DataCategory.VEHICLE}),
    "XK": _REPORT_CATEGORIES - {DataCategory.OPERATIONAL},
}


def _case_id() -> str:
    return f"GB-E2E-{uuid.uuid4().hex[:8].upper()}"


def _quarantined(federation: Federation, message_id: str) -> list[QuarantineRecord]:
    records = TopicReader(federation.bootstrap, quarantine_topic(federation.prefix)).read()
    parsed = [parse_quarantine_record(r.value) for r in records if r.value is not None]
    return [q for q in parsed if q.message_id == message_id]


def test_report_fixture_carries_every_category_the_accords_treat_differently() -> None:
    """The report used below has exactly the categories the redaction table speaks about."""
    assert categories_present(report("GB-E2E-X")) == _REPORT_CATEGORIES


def test_each_recipient_stores_exactly_its_own_redacted_view(
    exchange: Federation, tmp_path: pytest.TempPathFactory
) -> None:
    """`broker send --to RS,MK,XK`: each inbox holds one view, without what its accord redacts."""
    case_id = _case_id()
    message = report(case_id)
    source = tmp_path / "report.json"  # type: ignore[operator]
    source.write_bytes(message_bytes(message))
    subprocess.run(
        [sys.executable, "-m", "broker", "send", "--config", str(exchange.config_path("GB")),
         "--to", "RS,MK,XK", str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    for partner, redacted in _REDACTED.items():

        def views_of(partner: str = partner) -> list[Message] | None:
            found = [r.message for r in inbox(exchange, partner).values()]
            return [m for m in found if m.case_id == case_id] or None

        views = wait_for(views_of, timeout_s=_TIMEOUT_S, what=f"the report in {partner}'s inbox")
        assert len(views) == 1, partner
        present = categories_present(views[0])
        assert present == _REPORT_CATEGORIES - redacted, partner
        assert not present & redacted, partner
        assert views[0].body.summary == message.body.summary  # type: ignore[attr-defined]

    def receipts() -> list[Received] | None:
        found = [r for r in inbox(exchange, "GB").values() if r.message.case_id == case_id]
        return found if len(found) >= len(_REDACTED) else None

    # each recipient receipted its view back to GB, and that is all GB got about the case
    got = wait_for(receipts, timeout_s=_TIMEOUT_S, what="three receipts in GB's inbox")
    assert sorted((r.sender, r.message.type.value) for r in got) == [
        ("MK", "receipt"),
        ("RS", "receipt"),
        ("XK", "receipt"),
    ]


def test_a_flow_the_accord_forbids_is_quarantined_as_policy_denied(exchange: Federation) -> None:
    """GB's key seals a TLP:AMBER report to XK (strategic: GREEN at most): quarantined, with
    the policy decision, and never delivered."""
    amber = report(_case_id()).model_copy(update={"tlp": TLP.AMBER})
    message_id, sealed = seal_as(exchange, "GB", "XK", amber, accord="gb-xk")
    asyncio.run(
        produce(
            exchange.bootstrap,
            outbox_topic(exchange.prefix, "GB"),
            sealed,
            headers=[("xb-recipient", b"XK")],
        )
    )
    records = wait_for(
        lambda: _quarantined(exchange, message_id), timeout_s=_TIMEOUT_S, what="quarantine"
    )
    assert [(q.reason_code.value, q.sender, q.recipient) for q in records] == [
        ("policy_denied", "GB", "XK")
    ]
    assert records[0].decision is not None
    assert (records[0].value_prefix, records[0].value_is_whole) == (sealed, True)
    assert message_id not in inbox(exchange, "XK")


@pytest.mark.parametrize(
    ("where", "reason_code"),
    [
        pytest.param(-40, "bad_signature", id="ciphertext-byte"),
        pytest.param(-1, "bad_signature", id="last-byte"),
    ],
)
def test_a_tampered_record_on_an_outbox_is_quarantined_and_never_delivered(
    exchange: Federation, where: int, reason_code: str
) -> None:
    """A sealed GB->RS envelope with one bit flipped, written with a plain Kafka client,
    is quarantined with its reason and never reaches RS."""
    message_id, sealed = seal_as(exchange, "GB", "RS", report(_case_id()), accord="gb-rs")
    tampered = flip_byte(sealed, len(sealed) + where)
    asyncio.run(
        produce(
            exchange.bootstrap,
            outbox_topic(exchange.prefix, "GB"),
            tampered,
            headers=[("xb-recipient", b"RS")],
        )
    )
    records = wait_for(
        lambda: _quarantined(exchange, message_id), timeout_s=_TIMEOUT_S, what="quarantine"
    )
    assert [q.reason_code.value for q in records] == [reason_code]
    assert (records[0].value_prefix, records[0].value_is_whole) == (tampered, True)
    assert message_id not in inbox(exchange, "RS")
    frames = TopicReader(exchange.bootstrap, inbox_topic(exchange.prefix, "RS")).read()
    assert all(message_id.encode() not in (f.value or b"") for f in frames)


def _deliver_one(exchange: Federation) -> tuple[str, bytes]:
    """Send one GB->RS envelope through the gateway; its id and envelope once RS stored it."""
    view = redact(report(_case_id()), _REDACTED["RS"])  # as GB's adapter would for RS
    message_id, sealed = seal_as(exchange, "GB", "RS", view, accord="gb-rs")
    asyncio.run(
        produce(
            exchange.bootstrap,
            outbox_topic(exchange.prefix, "GB"),
            sealed,
            headers=[("xb-recipient", b"RS")],
        )
    )
    wait_for(lambda: message_id in inbox(exchange, "RS"), timeout_s=_TIMEOUT_S, what="the delivery")
    return message_id, sealed


def test_a_replayed_delivery_is_dropped_at_the_receiver_and_counted(exchange: Federation) -> None:
    """The gateway's delivery frame written again onto inbox.RS: RS keeps one copy and counts
    the replay."""
    message_id, _ = _deliver_one(exchange)
    registry = exchange.registry(now=dt.datetime.now(dt.UTC))
    frames = [
        r.value
        for r in TopicReader(exchange.bootstrap, inbox_topic(exchange.prefix, "RS")).read()
        if r.value is not None and message_id.encode() in r.value
    ]
    assert len(frames) == 1
    verified = verify_delivery(
        frames[0], registry=registry, recipient=PartnerCode("RS"), now=dt.datetime.now(dt.UTC)
    )
    assert verified.attestation.message_id == message_id
    before = exchange.metrics("RS")["xb_adapter_replays_dropped_total"]
    asyncio.run(
        produce(exchange.bootstrap, inbox_topic(exchange.prefix, "RS"), frames[0], headers=[])
    )
    wait_for(
        lambda: exchange.metrics("RS")["xb_adapter_replays_dropped_total"] == before + 1,
        timeout_s=_TIMEOUT_S,
        what="RS to count the replay",
    )
    stored = [m for m in inbox(exchange, "RS") if m == message_id]
    assert stored == [message_id]


def test_a_replayed_envelope_on_the_outbox_is_a_gateway_duplicate(exchange: Federation) -> None:
    """The same envelope bytes written to outbox.GB again: the gateway skips and counts it,
    and RS still holds one copy."""
    message_id, sealed = _deliver_one(exchange)
    before = exchange.metrics("gateway")["xb_gateway_duplicates_total"]
    asyncio.run(
        produce(
            exchange.bootstrap,
            outbox_topic(exchange.prefix, "GB"),
            sealed,
            headers=[("xb-recipient", b"RS")],
        )
    )
    wait_for(
        lambda: exchange.metrics("gateway")["xb_gateway_duplicates_total"] == before + 1,
        timeout_s=_TIMEOUT_S,
        what="the gateway to count the duplicate",
    )
    frames = TopicReader(exchange.bootstrap, inbox_topic(exchange.prefix, "RS")).read()
    assert len([f for f in frames if message_id.encode() in (f.value or b"")]) == 1


def test_a_received_view_exports_as_a_valid_stix_bundle(
    exchange: Federation, tmp_path: pytest.TempPathFactory
) -> None:
    """RS exports the view it stored (`broker inbox export --format stix`): the OASIS validator
    passes it in strict mode, TLP-marked as sent, with what the accord redacted still absent."""
    case_id = _case_id()
    source = tmp_path / "report.json"  # type: ignore[operator]
    source.write_bytes(message_bytes(report(case_id)))
    subprocess.run(
        [sys.executable, "-m", "broker", "send", "--config", str(exchange.config_path("GB")),
         "--to", "RS", str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    stored = wait_for(
        lambda: (
            [m for m, r in inbox(exchange, "RS").items() if r.message.case_id == case_id] or None
        ),
        timeout_s=_TIMEOUT_S,
        what="the report in RS's inbox",
    )
    out = tmp_path / "rs.stix.json"  # type: ignore[operator]
    subprocess.run(
        [sys.executable, "-m", "broker", "inbox", "export", "--config",
         str(exchange.config_path("RS")), "--message-id", stored[0], "-o", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    bundle = json.loads(out.read_text(encoding="utf-8"))
    result = validate_instance(bundle, ValidationOptions(strict=True))
    assert result.is_valid, [str(e) for e in result.errors]
    (note,) = [o for o in bundle["objects"] if o["type"] == "note"]
    view = parse_message(note["content"].encode())
    assert view.case_id == case_id
    assert DataCategory.BIOMETRIC not in categories_present(view)
    (marking,) = [o for o in bundle["objects"] if o["type"] == "marking-definition"]
    assert marking["name"] == f"TLP:{view.tlp}"


def test_every_daemon_drains_and_exits_zero_on_sigterm(exchange: Federation) -> None:
    """SIGTERM: the gateway and each adapter stop intake, drain, commit and exit 0."""
    assert exchange.stop_all() == {"gateway": 0, "GB": 0, "RS": 0, "MK": 0, "XK": 0}
