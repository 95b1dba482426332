"""Envelopes signed in a batch (docs/PROTOCOL.md, section 5): one signature over a Merkle head,
each envelope verifiable and openable alone, and nothing about its place in the batch can be
changed without the signature failing."""

from __future__ import annotations

import dataclasses

import pytest

from broker import crypto, envelope, errors
from broker.envelope._format import (
    VERSION,
    VERSION_BATCH,
    BatchProof,
    Frame,
    decode_frame,
    encode_frame,
)
from broker.ids import MessageId

from .conftest import NOW, Party, TinyRegistry, make_party, unsigned_from


def _batch(gb: Party, rs: Party, count: int) -> list[bytes]:
    return envelope.sign_all([unsigned_from(gb, rs) for _ in range(count)])


def _reframed(data: bytes, **changes: object) -> bytes:
    frame = decode_frame(data)
    assert frame.proof is not None
    if "proof" in changes:
        return encode_frame(dataclasses.replace(frame, proof=changes["proof"]))  # type: ignore[arg-type]
    return encode_frame(dataclasses.replace(frame, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [2, 3, 7, 16])
def test_every_envelope_of_a_batch_verifies_and_opens_alone(
    count: int, gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    sealed = _batch(gb, rs, count)
    signatures = {decode_frame(data).signature for data in sealed}
    assert len(signatures) == 1  # one signature for the whole batch
    for index, data in enumerate(sealed):
        assert data[4] == VERSION_BATCH
        proof = decode_frame(data).proof
        assert proof is not None
        assert (proof.size, proof.index) == (count, index)
        header = envelope.verify(data, registry=registry, now=NOW)
        assert header.proof == proof
        opened = envelope.open(
            data, registry=registry, recipient=rs.code, decryption_keys=rs.decryption_keys, now=NOW
        )
        assert opened.header.message_id == header.message_id


def test_an_envelope_alone_is_signed_alone(gb: Party, rs: Party, registry: TinyRegistry) -> None:
    (data,) = envelope.sign_all([unsigned_from(gb, rs)])
    assert data[4] == VERSION
    assert envelope.verify(data, registry=registry, now=NOW).proof is None


def test_each_signing_key_signs_its_own_envelopes(
    gb: Party, rs: Party, mk: Party, registry: TinyRegistry
) -> None:
    """Views of two senders in one call: two heads, each view keeps its place in the order."""
    mixed = [unsigned_from(gb, rs), unsigned_from(mk, rs), unsigned_from(gb, rs)]
    sealed = envelope.sign_all(mixed)
    senders = [envelope.verify(d, registry=registry, now=NOW).sender for d in sealed]
    assert senders == [gb.code, mk.code, gb.code]
    assert decode_frame(sealed[1]).proof is None
    assert decode_frame(sealed[0]).signature == decode_frame(sealed[2]).signature


def test_views_to_two_recipients_are_never_under_one_head(
    gb: Party, rs: Party, mk: Party, registry: TinyRegistry
) -> None:
    """A head over both would tell each recipient how much went to the other, and that both
    got views of one submission (the same signature bytes in each)."""
    sealed = envelope.sign_all(
        [unsigned_from(gb, rs), unsigned_from(gb, mk), unsigned_from(gb, rs), unsigned_from(gb, mk)]
    )
    frames = [decode_frame(d) for d in sealed]
    assert frames[0].signature == frames[2].signature
    assert frames[1].signature == frames[3].signature
    assert frames[0].signature != frames[1].signature
    assert {f.proof.size for f in frames if f.proof is not None} == {2}
    for data in sealed:
        envelope.verify(data, registry=registry, now=NOW)


def _refused(data: bytes, registry: TinyRegistry) -> None:
    with pytest.raises(errors.IntegrityError):
        envelope.verify(data, registry=registry, now=NOW)


def test_a_changed_place_in_the_batch_is_refused(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """Whatever of the proof changes (index, size, a path hash, the path's length), the head
    it leads to is not the signed one; the batch's genuine envelopes verified just before do
    not vouch for the changed one."""
    sealed = _batch(gb, rs, 5)
    for data in sealed:
        envelope.verify(data, registry=registry, now=NOW)
    proof = decode_frame(sealed[2]).proof
    assert proof is not None
    flipped = bytes([proof.path[0][0] ^ 1]) + proof.path[0][1:]
    for changed in (
        BatchProof(proof.size, 3, proof.path),
        BatchProof(proof.size + 1, proof.index, proof.path),
        BatchProof(proof.size, proof.index, (flipped, *proof.path[1:])),
        BatchProof(proof.size, proof.index, proof.path[:-1]),
        BatchProof(proof.size, proof.index, (*proof.path, proof.path[0])),
    ):
        _refused(_reframed(sealed[2], proof=changed), registry)


def test_another_signature_on_a_batch_already_verified_is_refused(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """The memo answers only for the exact bytes that verified: a copy of a batch member with
    garbled signature bytes is checked in full, and fails."""
    sealed = _batch(gb, rs, 3)
    envelope.verify(sealed[0], registry=registry, now=NOW)
    signature = decode_frame(sealed[1]).signature
    garbled = bytes([signature[0] ^ 1]) + signature[1:]
    _refused(_reframed(sealed[1], signature=garbled), registry)
    other = _batch(gb, rs, 3)
    _refused(_reframed(sealed[1], signature=decode_frame(other[1]).signature), registry)


def test_a_batch_signed_by_another_key_is_refused(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """A key the header does not name signs the head: the envelope claims gb's key id."""
    impostor = make_party("GB")
    items = [unsigned_from(gb, rs) for _ in range(3)]
    forged = envelope.sign_all([dataclasses.replace(i, signer=impostor.signing) for i in items])
    for data in forged:
        _refused(data, registry)


def test_a_batch_envelope_converted_to_the_single_framing_is_refused(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """The batch signature is over the head, never over one envelope's signing input."""
    sealed = _batch(gb, rs, 1 + 1)
    frame = decode_frame(sealed[0])
    _refused(encode_frame(Frame(frame.header, frame.ciphertext, frame.signature)), registry)


@pytest.mark.parametrize(
    ("name", "tail"),
    [
        ("size zero", b"\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
        ("index past size", b"\x00\x00\x00\x02\x00\x00\x00\x02\x01" + bytes(32)),
        ("size past the bound", b"\x00\x00\x10\x01\x00\x00\x00\x00\x0d" + bytes(13 * 32)),
        ("path too long", b"\x00\x00\x00\x02\x00\x00\x00\x00\x0d" + bytes(13 * 32)),
        ("truncated", b"\x00\x00\x00\x02\x00\x00"),
        ("trailing byte", b"\x00\x00\x00\x02\x00\x00\x00\x00\x01" + bytes(33)),
        ("path short of its count", b"\x00\x00\x00\x02\x00\x00\x00\x00\x02" + bytes(32)),
    ],
)
def test_a_malformed_batch_proof_is_refused_before_any_crypto(
    name: str, tail: bytes, gb: Party, rs: Party
) -> None:
    (single,) = envelope.sign_all([unsigned_from(gb, rs)])
    frame = decode_frame(single)
    body = encode_frame(frame)[: -0 or None]
    data = bytes([*body[:4], VERSION_BATCH, *body[5:]]) + tail
    with pytest.raises(errors.EnvelopeError):
        decode_frame(data)


def test_a_disclosure_of_a_batch_envelope_carries_its_place_and_verifies(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    sealed = _batch(gb, rs, 4)
    opened = envelope.open(
        sealed[3], registry=registry, recipient=rs.code, decryption_keys=rs.decryption_keys, now=NOW
    )
    disclosure = envelope.disclose(opened, ["case_id"])
    document = disclosure.to_document()
    assert document["batch"]["size"] == 4
    again = envelope.Disclosure.from_json(disclosure.to_json())
    assert envelope.verify_disclosure(again, registry=registry) == {"case_id": "GB-NCA-2026-0417"}
    assert opened.header.proof is not None
    moved = dataclasses.replace(again, proof=BatchProof(4, 2, opened.header.proof.path))
    with pytest.raises(errors.VerificationError):
        envelope.verify_disclosure(moved, registry=registry)
    bare = dataclasses.replace(again, proof=None)
    with pytest.raises(errors.VerificationError):
        envelope.verify_disclosure(bare, registry=registry)


def test_the_memo_remembers_only_what_verified() -> None:
    party = make_party("GB")
    key = party.signing.public_key()
    memo = crypto.VerifiedSignatures(capacity=2)
    messages = [b"one", b"two", b"three"]
    signatures = [party.signing.sign(m) for m in messages]
    with pytest.raises(errors.VerificationError):
        memo.verify(key, signature=signatures[0], message=b"other")
    assert len(memo) == 0
    for message, signature in zip(messages, signatures, strict=True):
        memo.verify(key, signature=signature, message=message)
    assert len(memo) == 2
    with pytest.raises(errors.VerificationError):
        memo.verify(key, signature=signatures[1], message=messages[2])


def test_message_ids_stay_unique_within_a_batch(gb: Party, rs: Party) -> None:
    ids = {envelope.parse(d).header.message_id for d in _batch(gb, rs, 8)}
    assert len(ids) == 8
    assert all(isinstance(MessageId(i), str) for i in ids)
