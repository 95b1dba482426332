"""Envelopes signed in a batch, built and checked from docs/PROTOCOL.md sections 1 and 5 alone
(``wire.batch_signed``, ``wire.signed_message``: RFC 6962 written out again, nothing from
``broker``).

- A batch XK signs by the document's recipe is delivered, every envelope on its own.
- A batch GB's adapter signed verifies by the document's recipe, envelope by envelope.
- Whatever an attacker with write access to XK's outbox changes in a genuine batch envelope
  (its index, the size, a path hash, the path's length, the signature bytes, the framing back
  to version 1, the path of a sibling), the gateway quarantines it as ``bad_signature``, even
  after the batch's genuine envelopes made it check the head's signature already.
"""

from __future__ import annotations

import dataclasses

import pytest

from . import wire
from .conftest import Exchange, case_id, eventually, run
from .rawkafka import RawKafka, Written

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _batch(exchange: Exchange, count: int) -> tuple[list[wire.Envelope], list[str]]:
    cases = [case_id() for _ in range(count)]
    unsigned = [
        exchange.seal("XK", "GB", "gb-xk", message=wire.envelope_message(case_id=c)) for c in cases
    ]
    return wire.batch_signed(unsigned, exchange.signing_key("XK")), cases


async def _write(exchange: Exchange, values: list[bytes]) -> list[Written]:
    async with RawKafka(exchange.bootstrap) as kafka:
        return [
            await kafka.send(exchange.topic("outbox.XK"), value, headers=[(b"xb-recipient", b"GB")])
            for value in values
        ]


def test_a_batch_signed_by_the_documents_recipe_is_delivered(exchange: Exchange) -> None:
    envelopes, cases = _batch(exchange, 5)
    assert len({e.signature for e in envelopes}) == 1
    run(_write(exchange, [e.to_bytes() for e in envelopes]))
    for case in cases:
        eventually(lambda: exchange.delivered("GB", case), what=f"{case} at GB")  # noqa: B023


def test_the_adapters_batches_verify_by_the_documents_recipe(exchange: Exchange) -> None:
    """GB's adapter signs a spool chunk under one head: each envelope on its outbox checks with
    the registered key over ``lp(DST_BATCH) || u32(size) || head``."""
    cases = [exchange.send("GB", "RS") for _ in range(4)]
    for case in cases:
        eventually(lambda: exchange.delivered("RS", case), what=f"{case} at RS")  # noqa: B023
    batched = 0
    for case in cases:
        (value,) = exchange.envelopes("outbox.GB", case)
        envelope = wire.parse_envelope(value)
        key = exchange.registry.signing_public("GB", envelope.header_fields["sender_key_id"])
        key.verify(envelope.signature, wire.signed_message(envelope))
        batched += envelope.proof is not None
    assert batched >= 2  # the driver's files arrive together often enough to share a head


def _forgeries(genuine: list[wire.Envelope]) -> list[tuple[str, wire.Envelope]]:
    target, sibling = genuine[2], genuine[1]
    proof = target.proof
    assert proof is not None
    assert sibling.proof is not None
    flipped, rest = bytes([proof.path[0][0] ^ 1]) + proof.path[0][1:], proof.path[1:]
    garbled = bytes([target.signature[0] ^ 1]) + target.signature[1:]
    return [
        ("index", dataclasses.replace(target, proof=wire.Proof(proof.size, 3, proof.path))),
        ("size", dataclasses.replace(target, proof=wire.Proof(proof.size + 1, 2, proof.path))),
        ("path hash", dataclasses.replace(target, proof=wire.Proof(5, 2, (flipped, *rest)))),
        ("short path", dataclasses.replace(target, proof=wire.Proof(5, 2, proof.path[:-1]))),
        ("sibling's path", dataclasses.replace(target, proof=sibling.proof)),
        ("signature bytes", dataclasses.replace(target, signature=garbled)),
        ("version 1", dataclasses.replace(target, proof=None)),
    ]


def test_a_changed_place_in_a_genuine_batch_is_a_bad_signature(exchange: Exchange) -> None:
    genuine, cases = _batch(exchange, 5)
    # the genuine members first: the gateway has checked the head's signature by then
    run(_write(exchange, [e.to_bytes() for e in genuine[:2]]))
    for case in cases[:2]:
        eventually(lambda: exchange.delivered("GB", case), what=f"{case} at GB")  # noqa: B023
    forged = _forgeries(genuine)
    written = run(_write(exchange, [envelope.to_bytes() for _, envelope in forged]))
    for (what, _), where in zip(forged, written, strict=True):
        record = exchange.quarantined(where.position)
        assert record["reason_code"] == "bad_signature", what
    assert exchange.delivered("GB", cases[2]) == []
    exchange.all_healthy()
    exchange.flows("XK", "GB")
