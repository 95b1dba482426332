"""What a receipt shows the gateway beside it, built from the documents (GATEWAY.md,
"Receipts"; PROTOCOL.md section 2.3): XK's receipts to GB reveal ``body.receipt_for`` in the
``xb-acknowledges`` header as canonical JSON ``{"salt": hex, "value": id}``.

An honest header puts ``acknowledges <id>`` in the receipt's audit record; a header naming
another message under the same salt, a header of another form, or two headers do not match the
receipt's signed commitment and quarantine it as ``malformed``, so a partner cannot make the
audit log say it acknowledged what it did not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from typing import Any

import pytest

from . import wire
from .conftest import Exchange, eventually, run
from .rawkafka import RawKafka, Written

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _receipt(exchange: Exchange, acknowledged: str) -> tuple[bytes, bytes]:
    """XK's signed receipt to GB for ``acknowledged``, and the salt of its body.receipt_for."""
    message: dict[str, Any] = {
        "type": "receipt",
        "schema_version": 1,
        "classification": "OFFICIAL",
        "tlp": "GREEN",
        "handling": "H0",
        "purposes": ["people-smuggling"],
        "body": {
            "receipt_for": acknowledged,
            "received_at": wire.timestamp(dt.datetime.now(dt.UTC)),
            "content_sha256": hashlib.sha256(b"the view XK received").hexdigest(),
            "status": "accepted",
        },
    }
    salts = {path: os.urandom(16) for path in wire.committed_fields(message)}
    envelope = exchange.seal("XK", "GB", "gb-xk", message=message, salts=salts)
    return envelope.to_bytes(), salts["body.receipt_for"]


async def _write(exchange: Exchange, value: bytes, headers: list[tuple[bytes, bytes]]) -> Written:
    async with RawKafka(exchange.bootstrap) as kafka:
        return await kafka.send(
            exchange.topic("outbox.XK"), value, headers=[(b"xb-recipient", b"GB"), *headers]
        )


def _audited(exchange: Exchange, envelope: bytes) -> dict[str, Any] | None:
    """The audit record of ``envelope`` (found by its SHA-256, as GATEWAY.md names it)."""

    async def read() -> list[bytes]:
        async with RawKafka(exchange.bootstrap) as kafka:
            found = await kafka.read(exchange.topic("audit"))
        return [r.value or b"" for records in found.values() for r in records]

    wanted = hashlib.sha256(envelope).hexdigest()
    for value in run(read()):
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("envelope_sha256") == wanted:
            return record
    return None


def test_an_honest_header_names_the_acknowledged_message_in_the_audit_log(
    exchange: Exchange,
) -> None:
    acknowledged = wire.uuid7()
    value, salt = _receipt(exchange, acknowledged)
    run(_write(exchange, value, [(b"xb-acknowledges", wire.revealed(salt, acknowledged))]))
    record = eventually(lambda: _audited(exchange, value), what="the receipt's audit record")
    assert record["kind"] == "receipt"
    assert f"acknowledges {acknowledged}" in record["reasons"]


def test_a_header_that_lies_about_what_is_acknowledged_is_malformed(exchange: Exchange) -> None:
    acknowledged = wire.uuid7()
    value, salt = _receipt(exchange, acknowledged)
    honest = wire.revealed(salt, acknowledged)
    for headers in (
        [(b"xb-acknowledges", wire.revealed(salt, wire.uuid7()))],  # another message
        [(b"xb-acknowledges", wire.revealed(os.urandom(16), acknowledged))],  # another salt
        [(b"xb-acknowledges", b'{"salt":"00","value":1}')],
        [(b"xb-acknowledges", honest), (b"xb-acknowledges", honest)],
    ):
        where = run(_write(exchange, value, headers))
        assert exchange.quarantined(where.position)["reason_code"] == "malformed"
    audited = _audited(exchange, value)  # a refusal, never a receipt acknowledging anything
    assert audited is None or audited["kind"] == "refusal"
    exchange.all_healthy()
    exchange.flows("XK", "GB")


def _batch_receipt(exchange: Exchange, acknowledged: list[str]) -> tuple[bytes, bytes, list[Any]]:
    """XK's signed batch receipt (``receipt`` version 2, PROTOCOL.md section 11) to GB for
    ``acknowledged``, the salt of its body.items, and the items."""
    items = [
        {
            "receipt_for": view,
            "status": "accepted",
            "content_sha256": hashlib.sha256(view.encode()).hexdigest(),
            "envelope_sha256": hashlib.sha256(b"envelope " + view.encode()).hexdigest(),
        }
        for view in acknowledged
    ]
    message: dict[str, Any] = {
        "type": "receipt",
        "schema_version": 2,
        "classification": "OFFICIAL",
        "tlp": "GREEN",
        "handling": "H0",
        "purposes": ["people-smuggling"],
        "body": {"received_at": wire.timestamp(dt.datetime.now(dt.UTC)), "items": items},
    }
    salts = {path: os.urandom(16) for path in wire.committed_fields(message)}
    envelope = exchange.seal("XK", "GB", "gb-xk", message=message, salts=salts)
    return envelope.to_bytes(), salts["body.items"], items


def test_a_batch_receipt_names_every_message_it_acknowledges_in_the_audit_log(
    exchange: Exchange,
) -> None:
    acknowledged = [wire.uuid7() for _ in range(3)]
    value, salt, items = _batch_receipt(exchange, acknowledged)
    run(_write(exchange, value, [(b"xb-acknowledges", wire.revealed(salt, items))]))
    record = eventually(lambda: _audited(exchange, value), what="the receipt's audit record")
    assert record["kind"] == "receipt"
    assert f"acknowledges {', '.join(acknowledged)}" in record["reasons"]


def test_a_batch_receipt_header_that_drops_swaps_or_repeats_a_line_is_malformed(
    exchange: Exchange,
) -> None:
    """The lines shown must be exactly the committed ones: the audit log cannot be made to
    name fewer, other or more views than the receipt acknowledges."""
    acknowledged = [wire.uuid7() for _ in range(3)]
    value, salt, items = _batch_receipt(exchange, acknowledged)
    swapped = [dict(items[0], receipt_for=wire.uuid7()), *items[1:]]
    for shown in (items[:2], swapped, [*items, items[0]], items[::-1], acknowledged):
        where = run(_write(exchange, value, [(b"xb-acknowledges", wire.revealed(salt, shown))]))
        assert exchange.quarantined(where.position)["reason_code"] == "malformed"
    exchange.all_healthy()
    exchange.flows("XK", "GB")
