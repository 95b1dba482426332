"""A hostile partner (XK) forging, replaying, re-routing and relabelling, with its own keys.

Every envelope here is built by :mod:`.wire` from docs/PROTOCOL.md alone, and the first test
shows such an envelope is good enough to be delivered: the attacks that follow fail for the
reason they name, not because the attacker's client is broken. Each test says where the
record ended up (quarantined with which reason code, refused at which adapter, dropped as a
duplicate) and then that legitimate traffic still flows.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from . import wire
from .conftest import Exchange, case_id, eventually, run
from .rawkafka import RawKafka, Written

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def _write(
    exchange: Exchange, stem: str, value: bytes, recipient: str | None = None
) -> Written:
    headers = [] if recipient is None else [(b"xb-recipient", recipient.encode())]
    async with RawKafka(exchange.bootstrap) as kafka:
        return await kafka.send(exchange.topic(stem), value, headers=headers)


def _metric(exchange: Exchange, daemon: str, series: str) -> float:
    return exchange.federation.metrics(daemon).get(series, 0.0)


def test_an_envelope_built_from_the_documents_alone_is_delivered(exchange: Exchange) -> None:
    """The outsider's own client: XK's envelope to GB, sealed from PROTOCOL.md, is delivered
    and opened by GB. (Otherwise every refusal below could be the client's own fault.)"""
    case = case_id()
    envelope = exchange.seal("XK", "GB", "gb-xk", message=wire.envelope_message(case_id=case))
    run(_write(exchange, "outbox.XK", envelope.to_bytes(), recipient="GB"))
    (received,) = eventually(lambda: exchange.delivered("GB", case), what="XK's report at GB")
    assert received["sender"] == "XK"


def test_a_replayed_envelope_is_a_duplicate_and_delivered_once(exchange: Exchange) -> None:
    """GB's envelope copied back onto GB's outbox: the gateway skips it as a duplicate (no
    quarantine, counted); RS holds the report once."""
    case = exchange.send("GB", "RS")
    eventually(lambda: exchange.delivered("RS", case), what="the original delivery")
    (original,) = exchange.envelopes("outbox.GB", case)
    before = _metric(exchange, "gateway", "xb_gateway_duplicates_total")
    where = run(_write(exchange, "outbox.GB", original, recipient="RS"))
    eventually(
        lambda: _metric(exchange, "gateway", "xb_gateway_duplicates_total") > before,
        what="the gateway to count the duplicate",
    )
    assert not [r for r in exchange.quarantine() if r.get("id") == where.position]
    assert len(exchange.delivered("RS", case)) == 1
    exchange.flows("GB", "RS")


def test_a_replayed_delivery_frame_is_dropped_by_the_recipient(exchange: Exchange) -> None:
    """A delivery frame copied back onto RS's inbox: RS drops it as a replay, stores nothing
    twice, refuses nothing."""
    case = exchange.send("GB", "RS")
    eventually(lambda: exchange.delivered("RS", case), what="the original delivery")
    (frame,) = exchange.envelopes("inbox.RS", case)
    before = _metric(exchange, "RS", "xb_adapter_replays_dropped_total")
    run(_write(exchange, "inbox.RS", frame))
    eventually(
        lambda: _metric(exchange, "RS", "xb_adapter_replays_dropped_total") > before,
        what="RS to drop the replay",
    )
    assert len(exchange.delivered("RS", case)) == 1
    exchange.flows("GB", "RS")


def test_re_routing_by_header_or_by_outbox_is_quarantined(exchange: Exchange) -> None:
    """Only the signed header routes: GB's envelope to RS with a routing header naming XK is a
    recipient mismatch; copied onto XK's outbox, or XK's own envelope put on RS's outbox, a
    sender mismatch. Nobody receives any of them."""
    case = exchange.send("GB", "RS")
    eventually(lambda: exchange.delivered("RS", case), what="the original delivery")
    (stolen,) = exchange.envelopes("outbox.GB", case)
    own_case = case_id()
    own = exchange.seal("XK", "GB", "gb-xk", message=wire.envelope_message(case_id=own_case))
    attacks = {
        "recipient_mismatch": run(_write(exchange, "outbox.GB", stolen, recipient="XK")),
        "sender_mismatch": run(_write(exchange, "outbox.XK", stolen, recipient="RS")),
    }
    wrong_outbox = run(_write(exchange, "outbox.RS", own.to_bytes(), recipient="GB"))
    for reason_code, where in attacks.items():
        assert exchange.quarantined(where.position)["reason_code"] == reason_code
    assert exchange.quarantined(wrong_outbox.position)["reason_code"] == "sender_mismatch"
    assert len(exchange.delivered("RS", case)) == 1
    assert exchange.delivered("GB", own_case) == []
    exchange.flows("GB", "RS")


def test_a_forged_gateway_attestation_on_an_inbox_is_refused(exchange: Exchange) -> None:
    """XK writes straight onto GB's inbox a valid envelope in a frame it attested itself:
    with the real gateway's key id the signature fails, with its own key id the key is not
    a gateway's. GB refuses both and stores neither."""
    xk = exchange.signing_key("XK")
    forged = {}
    for reason_code, key_id in (
        ("bad_gateway_signature", exchange.registry.gateway_key_id()),
        ("unknown_gateway_key", wire.key_id(wire.raw_public(xk))),
    ):
        case = case_id()
        envelope = exchange.seal("XK", "GB", "gb-xk", message=wire.envelope_message(case_id=case))
        frame = wire.attestation_frame(
            envelope.to_bytes(),
            signer=xk,
            gateway_key_id=key_id,
            message_id=envelope.header_fields["message_id"],
            sender="XK",
            recipient="GB",
            accord_id="gb-xk",
            accord_digest=exchange.accord_digest("gb-xk"),
        )
        forged[reason_code] = (run(_write(exchange, "inbox.GB", frame)).position, case)
    rows = exchange.rejected("GB", *(position for position, _ in forged.values()))
    for reason_code, (position, case) in forged.items():
        assert rows[position]["reason_code"] == reason_code
        assert exchange.delivered("GB", case) == []
    exchange.flows("RS", "GB")


def test_tampered_labels_are_caught_by_gateway_or_recipient(exchange: Exchange) -> None:
    """Labels changed after signing: the gateway refuses the signature. Labels milder than the
    content (TLP:GREEN on an AMBER report) signed by XK itself: the gateway cannot see the
    content and delivers, and GB refuses it as a label mismatch."""
    honest = exchange.seal("XK", "GB", "gb-xk")
    fields = honest.header_fields
    fields["labels"] = {**fields["labels"], "tlp": "CLEAR"}
    altered = honest.with_header(fields)
    unsigned = run(_write(exchange, "outbox.XK", altered.to_bytes(), recipient="GB"))
    assert exchange.quarantined(unsigned.position)["reason_code"] == "bad_signature"

    case = case_id()
    amber = wire.envelope_message(case_id=case, tlp="AMBER")
    milder = exchange.seal(
        "XK", "GB", "gb-xk", message=amber, labels=wire.labels_of(amber, tlp="GREEN")
    )
    run(_write(exchange, "outbox.XK", milder.to_bytes(), recipient="GB"))
    eventually(lambda: exchange.envelopes("inbox.GB", case), what="the gateway's delivery")
    refused = eventually(
        lambda: [
            row
            for row in _rows(exchange, "GB")
            if row["message_id"] == milder.header_fields["message_id"]
        ],
        what="GB's refusal",
    )
    assert refused[0]["reason_code"] == "label_mismatch"
    assert exchange.delivered("GB", case) == []
    exchange.flows("RS", "GB")


def _rows(exchange: Exchange, partner: str) -> list[dict[str, object]]:
    return list(json.loads(exchange.cli("adapter", "rejected", "list", "--json", config=partner)))


def test_suite_confusion_is_quarantined(exchange: Exchange) -> None:
    """A header naming the pq-hybrid suite over XK's classic keys and signature."""
    envelope = exchange.seal("XK", "GB", "gb-xk", suite="pq-hybrid")
    where = run(_write(exchange, "outbox.XK", envelope.to_bytes(), recipient="GB"))
    assert exchange.quarantined(where.position)["reason_code"] == "suite_mismatch"
    exchange.flows("GB", "RS")


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="cut in half"),
        pytest.param(lambda b: b + b"\x00", id="a trailing byte"),
        pytest.param(lambda b: b[:5] + b"\xff\xff\xff\xff" + b[9:], id="a header length of 4 GiB"),
        pytest.param(lambda b: b"\x89XBE\x02" + b[5:], id="framing version 2"),
    ],
)
def test_malformed_envelopes_are_quarantined_as_malformed(
    exchange: Exchange, mangle: Callable[[bytes], bytes]
) -> None:
    """Framing that lies about itself is refused before anything is trusted."""
    envelope = exchange.seal("XK", "GB", "gb-xk").to_bytes()
    where = run(_write(exchange, "outbox.XK", mangle(envelope), recipient="GB"))
    assert exchange.quarantined(where.position)["reason_code"] == "malformed"


@pytest.mark.parametrize(
    "doubled",
    [
        pytest.param(b',"recipient":"RS"}', id="a second recipient"),
        # an escaped colon in a string hides one colon from anyone counting them
        pytest.param(b',"case_id":"x\\u003a","recipient":"RS"}', id="behind an escaped colon"),
    ],
)
def test_a_header_with_a_duplicate_key_is_malformed_even_when_signed(
    exchange: Exchange, doubled: bytes
) -> None:
    """XK signs, with its own key, a header naming GB and then, under the same key again,
    RS: one reader would take the first, another the last. A header holds each key once
    (PROTOCOL.md section 2.1), whatever the rest of the text hides, or it is not read at all."""
    honest = exchange.seal("XK", "GB", "gb-xk")
    assert honest.header.endswith(b"}")
    header = honest.header[:-1] + doubled
    forged = wire.Envelope(header, honest.ciphertext, b"").resigned(exchange.signing_key("XK"))
    where = run(_write(exchange, "outbox.XK", forged.to_bytes(), recipient="GB"))
    assert exchange.quarantined(where.position)["reason_code"] == "malformed"
    exchange.flows("GB", "RS")


def test_the_identity_key_forgery_is_refused(exchange: Exchange) -> None:
    """The signature ``01 00..00 || 00..00`` (valid under the identity point for every message)
    on an envelope claiming to be XK's: XK's registered key is not the identity, and no
    registry may list it (tests/unit/keys), so it is a bad signature."""
    envelope = exchange.seal("XK", "GB", "gb-xk")
    forged = wire.Envelope(envelope.header, envelope.ciphertext, b"\x01" + bytes(63))
    where = run(_write(exchange, "outbox.XK", forged.to_bytes(), recipient="GB"))
    assert exchange.quarantined(where.position)["reason_code"] == "bad_signature"


_ORIGIN = {"agency": "Policia e Kosovës", "officer": "v.berisha", "unit": "Hetimet Kufitare"}


def test_a_version_2_header_names_the_senders_officer_and_no_other_form_passes(
    exchange: Exchange,
) -> None:
    """PROTOCOL.md section 2.2: header version 2 names, in ``origin``, the officer who
    submitted the view; version 1 has no ``origin`` at all. XK's version 2 view is delivered
    and GB's inbox names XK's officer; every other form, even signed by XK's own key, is
    refused as malformed: an origin in version 1 (absent or null are one form, not two), a
    version 2 without one, an origin with a member more or a name no directory could hold."""
    case = case_id()
    honest = exchange.seal(
        "XK", "GB", "gb-xk", message=wire.envelope_message(case_id=case), origin=_ORIGIN
    )
    run(_write(exchange, "outbox.XK", honest.to_bytes(), recipient="GB"))
    eventually(lambda: exchange.delivered("GB", case), what="XK's version 2 view at GB")
    output = exchange.cli("inbox", "list", "--json", config="GB")
    listed = [json.loads(line) for line in output.splitlines()]
    (row,) = [row for row in listed if row["case_id"] == case]
    assert row["origin"] == _ORIGIN

    fields = honest.header_fields
    forms = [
        {**fields, "version": 1},
        {**fields, "origin": None},
        {k: v for k, v in fields.items() if k != "origin"},
        {**fields, "origin": {**_ORIGIN, "rank": "inspector"}},
        {**fields, "origin": {**_ORIGIN, "unit": "Hetimet\nKufitare"}},
        {**fields, "origin": {**_ORIGIN, "officer": "V.Berisha"}},
    ]
    v1 = exchange.seal("XK", "GB", "gb-xk").header_fields
    forms.append({**v1, "origin": None})
    key = exchange.signing_key("XK")
    for form in forms:
        forged = honest.with_header(form).resigned(key)
        where = run(_write(exchange, "outbox.XK", forged.to_bytes(), recipient="GB"))
        assert exchange.quarantined(where.position)["reason_code"] == "malformed", form
    exchange.flows("GB", "RS")


def test_an_origin_naming_a_unit_its_partner_does_not_list_is_quarantined(
    exchange: Exchange,
) -> None:
    """KEYS.md, ``units``: XK lists one unit in the registry. A view whose origin names
    another unit, or the listed unit under another agency, is quarantined ``unlisted_unit``
    though XK's own key signed it; the listed unit is delivered (the test above)."""
    declared = exchange.registry.units("XK")
    assert declared == [{"agency": _ORIGIN["agency"], "unit": _ORIGIN["unit"]}]
    assert exchange.registry.units("GB") is None
    for origin in (
        {**_ORIGIN, "unit": "Njësia Kibernetike"},
        {**_ORIGIN, "agency": "Dogana e Kosovës"},
        {**_ORIGIN, "unit": _ORIGIN["unit"].lower()},
    ):
        stray = exchange.seal("XK", "GB", "gb-xk", origin=origin)
        where = run(_write(exchange, "outbox.XK", stray.to_bytes(), recipient="GB"))
        record = exchange.quarantined(where.position)
        assert record["reason_code"] == "unlisted_unit", origin
        # GATEWAY.md: a reason is ASCII, anything else backslash-escaped
        named = repr(origin["unit"]).encode("ascii", "backslashreplace").decode()
        assert named in record["reason"], record["reason"]
    exchange.flows("GB", "RS")
