"""A hostile holder (XK) forwarding without the originator's consent, built from the documents.

XK's accord with GB carries ``onward.forward``; XK seals forwards to GB from PROTOCOL.md
(section 10) with its own key, and shows the gateway a grant beside each. The gateway must
find the consent missing, forged, or not the one the forward carries, whatever XK writes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import pytest

from . import wire
from .conftest import Exchange, case_id, run
from .rawkafka import RawKafka, Written

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

_MARKINGS = {
    "classification": "OFFICIAL",
    "handling": "H0",
    "purposes": ["people-smuggling"],
    "schema_version": 1,
    "tlp": "GREEN",
}


def _grant(exchange: Exchange, *, claimed_sender: str, original: str) -> dict[str, Any]:
    """A grant to XK for GB that claims to come from ``claimed_sender``, signed with XK's own
    key (the only one it holds), disclosed with its scope."""
    until = wire.timestamp(dt.datetime.now(dt.UTC) + dt.timedelta(days=7))
    message = {
        **_MARKINGS,
        "type": "onward.grant",
        "body": {
            "conditions": [],
            "decision": "granted",
            "fields_granted": ["body.summary"],
            "original_message": original,
            "request": wire.uuid7(),
            "third_party_country": "GB",
            "valid_until": until,
        },
    }
    salts = {path: os.urandom(16) for path in wire.committed_fields(message)}
    envelope = wire.seal(
        message=message,
        labels=wire.labels_of(message),
        sender=claimed_sender,
        sender_key=exchange.signing_key("XK"),
        recipient="XK",
        registry=exchange.registry,
        accord_id="gb-xk",
        accord_digest=exchange.accord_digest("gb-xk"),
        salts=salts,
    )
    scope = {
        p: (salts[p], v) for p, v in wire.committed_fields(message).items() if p.startswith("body.")
    }
    return wire.disclosure(envelope, scope)


def _forward(exchange: Exchange, grant: dict[str, Any]) -> tuple[bytes, bytes]:
    """XK's forward to GB carrying ``grant``, and the header revealing its body.grant."""
    message = {
        **_MARKINGS,
        "case_id": case_id(),
        "type": "onward.forward",
        "body": {"grant": grant, "original": grant},
    }
    salts = {path: os.urandom(16) for path in wire.committed_fields(message)}
    envelope = exchange.seal("XK", "GB", "gb-xk", message=message, salts=salts)
    return envelope.to_bytes(), wire.revealed(salts["body.grant"], grant)


async def _write(exchange: Exchange, value: bytes, headers: list[tuple[bytes, bytes]]) -> Written:
    async with RawKafka(exchange.bootstrap) as kafka:
        return await kafka.send(
            exchange.topic("outbox.XK"), value, headers=[(b"xb-recipient", b"GB"), *headers]
        )


def _reason(exchange: Exchange, value: bytes, headers: list[tuple[bytes, bytes]]) -> str:
    where = run(_write(exchange, value, headers))
    return str(exchange.quarantined(where.position)["reason_code"])


def test_a_forward_without_consent_is_quarantined_however_it_is_dressed(
    exchange: Exchange,
) -> None:
    original = wire.uuid7()
    forged = _grant(exchange, claimed_sender="RS", original=original)
    value, shown = _forward(exchange, forged)
    # no grant beside it at all
    assert _reason(exchange, value, []) == "onward_not_granted"
    # a grant claiming RS's consent, signed with XK's key
    assert _reason(exchange, value, [(b"xb-onward-grant", shown)]) == "onward_not_granted"
    # XK granting itself
    own = _grant(exchange, claimed_sender="XK", original=original)
    value, shown = _forward(exchange, own)
    assert _reason(exchange, value, [(b"xb-onward-grant", shown)]) == "onward_not_granted"
    exchange.flows("XK", "GB")


def test_a_grant_beside_the_forward_must_be_the_one_it_carries(exchange: Exchange) -> None:
    """The header reveals the forward's own committed body.grant: another value, or a header
    that is not the document's form, does not match the forward's signed commitment."""
    value, shown = _forward(exchange, _grant(exchange, claimed_sender="RS", original=wire.uuid7()))
    other = _grant(exchange, claimed_sender="RS", original=wire.uuid7())
    swapped = wire.revealed(bytes.fromhex(json.loads(shown)["salt"]), other)
    for header in (swapped, b'{"salt":"00","value":1}', b"not json"):
        assert _reason(exchange, value, [(b"xb-onward-grant", header)]) == "malformed"
    exchange.all_healthy()
    exchange.flows("XK", "GB")
