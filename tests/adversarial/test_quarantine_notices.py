"""The gateway's quarantine notices, attacked from the documents (GATEWAY.md, "Quarantine
notice"): XK, which can write any topic of the embedded broker, tries to make GB believe its
views were quarantined, or to make the gateway tell GB anything.

- notices XK signs itself (under the gateway's key id, or its own) are refused by GB's
  adapter as ``bad_gateway_signature`` / ``unknown_gateway_key``;
- a genuine notice the gateway wrote to XK about XK's own view, copied onto GB's inbox, is
  refused (it speaks of a view of XK's, ``bad_attestation``);
- GB's genuine envelope replayed on XK's outbox is quarantined ``sender_mismatch`` and the
  gateway writes GB no notice.
"""

from __future__ import annotations

import json
import uuid

import pytest

from . import wire
from .conftest import Exchange, case_id, eventually, run
from .rawkafka import RawKafka, Written

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def _write(exchange: Exchange, stem: str, value: bytes, recipient: str | None) -> Written:
    headers = [] if recipient is None else [(b"xb-recipient", recipient.encode())]
    async with RawKafka(exchange.bootstrap) as kafka:
        return await kafka.send(exchange.topic(stem), value, headers=headers)


def _notices(exchange: Exchange, partner: str) -> list[bytes]:
    async def read() -> list[bytes]:
        async with RawKafka(exchange.bootstrap) as kafka:
            found = await kafka.read(exchange.topic(f"inbox.{partner}"))
        return [r.value or b"" for records in found.values() for r in records]

    return [value for value in run(read()) if value.startswith(wire.NOTICE_MAGIC)]


def test_forged_notices_on_an_inbox_are_refused(exchange: Exchange) -> None:
    xk = exchange.signing_key("XK")
    claimed = str(uuid.uuid4())
    forged = {}
    for reason_code, key_id in (
        ("bad_gateway_signature", exchange.registry.gateway_key_id()),
        ("unknown_gateway_key", wire.key_id(wire.raw_public(xk))),
    ):
        frame = wire.notice_frame(
            signer=xk,
            gateway_key_id=key_id,
            message_id=claimed,
            sender="GB",
            recipient="RS",
            reason_code="policy_denied",
            reason="forged by XK",
        )
        forged[reason_code] = run(_write(exchange, "inbox.GB", frame, None)).position
    rows = exchange.rejected("GB", *forged.values())
    for reason_code, position in forged.items():
        assert rows[position]["reason_code"] == reason_code
    exchange.flows("GB", "RS")


def test_a_genuine_notice_for_xk_does_not_pass_for_one_to_gb(exchange: Exchange) -> None:
    """XK gets its own notice by sending a TLP:RED report, which gb-xk refuses, then copies it
    onto GB's inbox."""
    red = exchange.seal("XK", "GB", "gb-xk", message=wire.envelope_message(
        case_id=case_id(), tlp="RED"
    ))  # fmt: skip
    written = run(_write(exchange, "outbox.XK", red.to_bytes(), "GB"))
    assert exchange.quarantined(written.position)["reason_code"] == "policy_denied"
    message_id = red.header_fields["message_id"]
    own = eventually(
        lambda: [n for n in _notices(exchange, "XK") if message_id.encode() in n],
        what="the gateway's notice to XK",
    )
    copied = run(_write(exchange, "inbox.GB", own[0], None)).position
    assert exchange.rejected("GB", copied)[copied]["reason_code"] == "bad_attestation"


def test_no_notice_goes_to_a_partner_whose_envelope_another_replays(exchange: Exchange) -> None:
    case = exchange.send("GB", "RS")
    eventually(lambda: exchange.delivered("RS", case), what="GB's report at RS")
    (genuine,) = exchange.envelopes("outbox.GB", case)
    written = run(_write(exchange, "outbox.XK", genuine, "RS"))
    assert exchange.quarantined(written.position)["reason_code"] == "sender_mismatch"
    message_id = wire.parse_envelope(genuine).header_fields["message_id"]
    assert not [n for n in _notices(exchange, "GB") if message_id.encode() in n]


def test_a_copy_of_a_delivered_view_quarantined_elsewhere_never_marks_it(
    exchange: Exchange,
) -> None:
    """GB's delivered report, written back onto GB's own outbox under a routing header naming
    MK: the gateway quarantines the copy (recipient_mismatch) and tells GB, but the notice
    names the copy's position, and `broker status` still shows the view receipted."""
    case = exchange.send("GB", "RS")
    eventually(lambda: exchange.delivered("RS", case), what="GB's report at RS")
    (genuine,) = exchange.envelopes("outbox.GB", case)
    message_id = wire.parse_envelope(genuine).header_fields["message_id"]

    def receipted() -> str | None:
        (fate,) = json.loads(exchange.cli("status", "--json", message_id, config="GB"))["views"]
        return str(fate["state"]) if fate["state"] == "receipted" else None

    eventually(receipted, what="RS's receipt at GB")
    written = run(_write(exchange, "outbox.GB", genuine, "MK"))
    assert exchange.quarantined(written.position)["reason_code"] == "recipient_mismatch"
    eventually(
        lambda: [n for n in _notices(exchange, "GB") if message_id.encode() in n],
        what="the gateway's notice of the copy to GB",
    )
    (fate,) = json.loads(exchange.cli("status", "--json", message_id, config="GB"))["views"]
    assert fate["state"] == "receipted"
    assert fate["quarantined"] is None
