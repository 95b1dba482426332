"""Disclosure bundles checked by an implementation of PROTOCOL.md section 9 that shares no code
with ours, both ways: the bundle ``broker disclose`` writes verifies there, and one it builds
from the documents verifies with ``broker disclosure verify``; every tampered bundle is refused
by both, so neither the document nor our verifier lets a lie through."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from . import bundle, wire
from .conftest import Exchange, case_id, eventually, run
from .rawkafka import RawKafka, Written

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

FIELDS = ("body.summary", "case_id")


async def _write(exchange: Exchange, stem: str, value: bytes, recipient: str) -> Written:
    async with RawKafka(exchange.bootstrap) as kafka:
        return await kafka.send(
            exchange.topic(stem), value, headers=[(b"xb-recipient", recipient.encode())]
        )


def _disclosed_by_rs(exchange: Exchange, tmp_path: Path) -> tuple[bytes, dict[str, Any]]:
    """A GB report delivered to RS, disclosed by RS with ``broker disclose``; the bundle and
    the message as RS's delivery directory holds it."""
    case = exchange.send("GB", "RS")
    (document,) = eventually(lambda: exchange.delivered("RS", case), what="the report at RS")
    out = tmp_path / f"{case}.bundle.json"
    exchange.cli(
        "disclose", document["message_id"], "--fields", ",".join(FIELDS), "--out", str(out),
        config="RS",
    )  # fmt: skip
    return out.read_bytes(), document["message"]


def _verified_by_broker(exchange: Exchange, path: Path, *, expect: int = 0) -> str:
    registry = str(exchange.federation.registry_path)
    return exchange.cli(
        "disclosure", "verify", str(path), "--registry", registry, "--json", expect=expect
    )


def _registry(exchange: Exchange) -> dict[str, Any]:
    return dict(json.loads(exchange.federation.registry_path.read_bytes()))


def test_a_bundle_from_broker_disclose_verifies_independently(
    exchange: Exchange, tmp_path: Path
) -> None:
    data, message = _disclosed_by_rs(exchange, tmp_path)
    revealed = bundle.verify(data, _registry(exchange))
    assert revealed == {"body.summary": message["body"]["summary"], "case_id": message["case_id"]}
    (tmp_path / "ours.json").write_bytes(data)
    document = json.loads(_verified_by_broker(exchange, tmp_path / "ours.json"))
    assert document["disclosed"] == revealed


def test_a_bundle_built_from_the_documents_verifies_with_broker(
    exchange: Exchange, tmp_path: Path
) -> None:
    """XK, as the originator, seals a report to GB with salts it keeps, reads the delivery
    frame off GB's inbox and builds a bundle of one field from section 9 alone."""
    case = case_id()
    message = wire.envelope_message(case_id=case, summary="Seen leaving Prizren at dawn.")
    salts = {path: os.urandom(16) for path in wire.committed_fields(message)}
    envelope = exchange.seal("XK", "GB", "gb-xk", message=message, salts=salts)
    run(_write(exchange, "outbox.XK", envelope.to_bytes(), recipient="GB"))
    (frame,) = eventually(lambda: exchange.envelopes("inbox.GB", case), what="the frame to GB")
    built = bundle.build(
        frame, {"body.summary": (salts["body.summary"], "Seen leaving Prizren at dawn.")}
    )
    assert bundle.verify(built, _registry(exchange)) == {
        "body.summary": "Seen leaving Prizren at dawn."
    }
    (tmp_path / "theirs.json").write_bytes(built)
    document = json.loads(_verified_by_broker(exchange, tmp_path / "theirs.json"))
    assert document["disclosed"] == {"body.summary": "Seen leaving Prizren at dawn."}
    assert (document["sender"], document["recipient"]) == ("XK", "GB")
    assert "case_id" in document["withheld"]


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        document = json.loads(data)
        change(document)
        return json.dumps(document).encode()

    return edit


def _in_frame(change: Callable[[bytearray], None]) -> Callable[[bytes], bytes]:
    def edit(document: dict[str, Any]) -> None:
        frame = bytearray(base64.b64decode(document["delivery"]))
        change(frame)
        document["delivery"] = base64.b64encode(bytes(frame)).decode()

    return _edit(edit)


def _flip(frame: bytearray, at: int) -> None:
    frame[at] ^= 0x01


def _attested(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    """The frame's attestation changed (still canonical), its signature kept."""

    def edit(frame: bytearray) -> None:
        a = int.from_bytes(frame[4:8], "big")
        attestation = json.loads(bytes(frame[8 : 8 + a]))
        change(attestation)
        frame[4 : 8 + a] = wire.lp(wire.canonical(attestation))

    return _in_frame(edit)


LIES: dict[str, tuple[Callable[[bytes], bytes], int, int]] = {
    # the tamper, the step of section 9.2 that refuses it, and broker's exit status
    "a revealed value changed": (
        _edit(lambda d: d["fields"]["case_id"].update(value="XB-ADV-0000000000")),
        7,
        6,
    ),
    "a salt changed": (_edit(lambda d: d["fields"]["case_id"].update(salt="00" * 16)), 7, 6),
    "a value moved to another path": (
        _edit(lambda d: d["fields"].update({"body.operation_name": d["fields"].pop("case_id")})),
        7,
        6,
    ),
    "the attested accord version raised": (
        _attested(lambda a: a.update(accord_version=a["accord_version"] + 1)),
        3,
        6,
    ),
    "a byte of the gateway's signature": (
        _in_frame(lambda f: _flip(f, 12 + int.from_bytes(f[4:8], "big"))),
        3,
        6,
    ),
    "a byte of the ciphertext": (_in_frame(lambda f: _flip(f, len(f) - 80)), 4, 6),
    "a member added": (_edit(lambda d: d.update(note="trust me")), 1, 5),
    "another format": (_edit(lambda d: d.update(format="broker-disclosure/v0")), 1, 5),
}


@pytest.mark.parametrize("lie", LIES, ids=list(LIES))
def test_a_tampered_bundle_is_refused_by_both(exchange: Exchange, tmp_path: Path, lie: str) -> None:
    data, _ = _disclosed_by_rs(exchange, tmp_path)
    tamper, step, status = LIES[lie]
    lying = tamper(data)
    with pytest.raises(bundle.BundleError) as refused:
        bundle.verify(lying, _registry(exchange))
    assert refused.value.step == step
    path = tmp_path / "lying.json"
    path.write_bytes(lying)
    said = exchange.cli(
        "disclosure", "verify", str(path), "--registry", str(exchange.federation.registry_path),
        expect=status,
    )  # fmt: skip
    assert said.startswith("error: ")
    assert "verified" not in said


def test_an_attestation_signed_by_a_partner_is_refused_by_both(
    exchange: Exchange, tmp_path: Path
) -> None:
    """XK rewrites a genuine frame's attestation under its own key id and signs it: a valid
    signature by a registered key, but no gateway's."""
    data, _ = _disclosed_by_rs(exchange, tmp_path)
    document = json.loads(data)
    frame = base64.b64decode(document["delivery"])
    genuine, _, _, envelope = bundle.split_frame(frame)
    attestation = json.loads(genuine)
    xk = exchange.signing_key("XK")
    attestation["gateway_key_id"] = wire.key_id(wire.raw_public(xk))
    signed = wire.canonical(attestation)
    signature = xk.sign(bundle.GATEWAY_DOMAIN + wire.lp(signed))
    forged = b"XBD1" + wire.lp(signed) + wire.lp(signature) + envelope
    document["delivery"] = base64.b64encode(forged).decode()
    lying = json.dumps(document).encode()
    with pytest.raises(bundle.BundleError) as refused:
        bundle.verify(lying, _registry(exchange))
    assert refused.value.step == 3
    (tmp_path / "forged.json").write_bytes(lying)
    said = _verified_by_broker(exchange, tmp_path / "forged.json", expect=8)
    assert "gateway" in said
    exchange.all_healthy()
