"""Forged quarantine records, release to nowhere, and weak keys offered to the registry.

Anybody who can write to the quarantine topic can write a record there. Only the gateway's
signature (docs/GATEWAY.md) makes one believable: the operator's tools flag every other one,
and ``release`` re-sends only what the gateway itself quarantined, only to the outbox of a
registered partner, read back from that outbox and checked against the signed digest: it
never creates a topic and never carries the forger's bytes.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from . import wire
from .conftest import Exchange, digest, eventually, run
from .rawkafka import RawKafka, Written

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

VERIFICATION_ERROR = 6  # docs/CLI.md: a signature did not verify
REGISTRY_ERROR = 9


async def _write(exchange: Exchange, stem: str, value: bytes) -> Written:
    async with RawKafka(exchange.bootstrap) as kafka:
        return await kafka.send(exchange.topic(stem), value)


def _listed(exchange: Exchange) -> dict[str, dict[str, object]]:
    lines = exchange.cli("quarantine", "list", "--json", config="gateway").splitlines()
    return {str(entry.get("id", entry["position"])): entry for entry in map(json.loads, lines)}


def test_forged_quarantine_records_are_flagged_and_never_released(exchange: Exchange) -> None:
    """Unsigned, signed by XK under the gateway's key id, signed by XK under its own: each is
    listed as forged or unsigned, and release refuses each. One names the outbox of a partner
    that does not exist: release refuses it too, and no such topic appears."""
    xk = exchange.signing_key("XK")
    gateway_id = exchange.registry.gateway_key_id()
    outbox, nowhere = exchange.topic("outbox.XK"), exchange.topic("outbox.ZZ")
    forgeries = {
        "unsigned": ((outbox, 0, 900_001), None, gateway_id),
        "forged": ((outbox, 0, 900_002), xk, gateway_id),
        "forged own key": ((outbox, 0, 900_003), xk, wire.key_id(wire.raw_public(xk))),
        "forged to nowhere": ((nowhere, 0, 900_004), xk, gateway_id),
    }
    for source, signer, key_id in forgeries.values():
        record = wire.quarantine_record(
            source=source, value=b"\x89XBE forged", signer=signer, gateway_key_id=key_id
        )
        run(_write(exchange, "quarantine", record))
    ids = {name: f"{s[0]}/{s[1]}/{s[2]}" for name, (s, _, _) in forgeries.items()}

    def every_one_listed() -> dict[str, dict[str, object]] | None:
        found = _listed(exchange)
        return found if set(ids.values()) <= set(found) else None

    listed = eventually(every_one_listed, what="the forged records listed")
    shown = json.loads(exchange.cli("quarantine", "show", ids["forged"], config="gateway"))
    assert (shown["verification"], shown["id"]) == ("forged", ids["forged"])
    for name, record_id in ids.items():
        expected = "unsigned" if name == "unsigned" else "forged"
        assert listed[record_id]["verification"] == expected, name
        refused = exchange.cli(
            "quarantine", "release", record_id, config="gateway", expect=VERIFICATION_ERROR
        )
        assert f"error: record {record_id} is {expected}" in refused, name
    assert nowhere not in run(_topics(exchange))
    exchange.all_healthy()


async def _topics(exchange: Exchange) -> set[str]:
    async with RawKafka(exchange.bootstrap) as kafka:
        return await kafka.topics()


def test_a_genuine_record_is_released_from_its_outbox_and_decided_again(exchange: Exchange) -> None:
    """A record the gateway did quarantine is released: the original is read back from the
    outbox, re-sent there, and decided again (quarantined again, under a new id, with the
    same digest). A forger's copy of the same id with other bytes is listed as forged and
    changes nothing."""
    junk = b"\x89XBE\x01 not an envelope at all"
    where = run(_write(exchange, "outbox.XK", junk))
    genuine = exchange.quarantined(where.position)
    xk = exchange.signing_key("XK")
    copy = wire.quarantine_record(
        source=(where.topic, where.partition, where.offset),
        value=b"the forger's bytes",
        signer=xk,
        gateway_key_id=exchange.registry.gateway_key_id(),
    )
    run(_write(exchange, "quarantine", copy))

    def both_listed() -> list[str] | None:
        lines = exchange.cli("quarantine", "list", "--json", config="gateway").splitlines()
        entries = [e for e in map(json.loads, lines) if e.get("id") == where.position]
        return sorted(str(e["verification"]) for e in entries) if len(entries) == 2 else None

    listed = eventually(both_listed, what="the record and its forged copy")
    assert listed == ["forged", "verified"]
    out = exchange.cli("quarantine", "release", where.position, config="gateway")
    assert out.startswith(f"released {where.position} to {where.topic}")
    again = eventually(
        lambda: [
            r
            for r in exchange.quarantine()
            if r["_verified"] and r["id"] != where.position and r["value_sha256"] == digest(junk)
        ],
        what="the released record decided again",
    )
    assert again[0]["reason_code"] == genuine["reason_code"] == "malformed"
    assert base64.b64decode(again[0]["value_prefix_b64"]) == junk


def _weak_card(exchange: Exchange, tmp_path: Path, role: str, public: bytes) -> Path:
    """XK's own keys as a partner card (KEYS.md), one of them replaced by a weak key."""
    document = exchange.registry.document["signed"]
    xk = next(p for p in document["partners"] if p["code"] == "XK")
    card = {
        "type": "partner-card",
        "spec_version": 1,
        **{k: xk[k] for k in ("code", "name", "suite")},
        **{k: [dict(e) for e in xk[k]] for k in ("signing_keys", "encryption_keys", "policy_keys")},
    }
    weak = card[role][0]
    weak["public_key"], weak["key_id"] = base64.b64encode(public).decode(), wire.key_id(public)
    path = tmp_path / f"XK-{role}.card.json"
    path.write_text(json.dumps(card))
    return path


@pytest.mark.parametrize(
    ("role", "public"),
    [
        pytest.param("signing_keys", b"\x01" + bytes(31), id="the Ed25519 identity point"),
        pytest.param("encryption_keys", bytes(32), id="the all-zero X25519 key"),
    ],
)
def test_the_registry_refuses_a_weak_key_with_one_line(
    exchange: Exchange, tmp_path: Path, role: str, public: bytes
) -> None:
    """XK offers a card whose key would let anyone sign as XK, or read what is sealed to it:
    ``registry add-partner`` refuses it, exit 9, one ``error:`` line, the file untouched."""
    registry = tmp_path / "registry.json"
    shutil.copyfile(exchange.federation.registry_path, registry)
    before = registry.read_bytes()
    card = _weak_card(exchange, tmp_path, role, public)
    out = exchange.cli("registry", "add-partner", str(registry), str(card), expect=REGISTRY_ERROR)
    lines = out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: partner card: public key")
    assert "order point" in lines[0]
    assert registry.read_bytes() == before
