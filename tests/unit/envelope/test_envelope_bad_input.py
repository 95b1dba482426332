"""Every bad envelope is refused with one of our errors, never a crash or a traceback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import struct

import pytest

from broker import crypto, envelope, errors
from broker.envelope._content import Body
from broker.envelope._format import (
    MAX_ENVELOPE_BYTES,
    Frame,
    canonical_json,
    decode_frame,
    encode_frame,
    pad,
    signing_input,
)
from broker.envelope._header import top_level_fields
from broker.envelope._seal import _seal_from_parts
from broker.ids import AccordId, MessageId

from .conftest import (
    ACCORD_DIGEST,
    NOW,
    SAMPLE_LABELS,
    Party,
    TinyRegistry,
    make_party,
    sample_bytes,
    seal_from,
)

REFUSALS = (errors.EnvelopeError, errors.KeyTrustError)


def _open(data: bytes, registry: TinyRegistry, recipient: Party) -> envelope.OpenedEnvelope:
    return envelope.open(
        data,
        registry=registry,
        recipient=recipient.code,
        decryption_keys=recipient.decryption_keys,
        now=NOW,
    )


def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def _header_span(sealed: bytes) -> range:
    """Bit positions of the framing prefix and the header."""
    (header_len,) = struct.unpack_from(">I", sealed, 5)
    return range(0, (9 + header_len) * 8)


@pytest.mark.slow
def test_every_single_bit_flip_is_refused(sealed: bytes, registry: TinyRegistry, rs: Party) -> None:
    """Each byte with one bit flipped (the bit rotating with the offset), and every bit of
    the framing and header, makes open() raise EnvelopeError or KeyTrustError."""
    positions = {byte * 8 + byte % 8 for byte in range(len(sealed))} | set(_header_span(sealed))
    escaped = []
    for bit in sorted(positions):
        try:
            _open(_flip(sealed, bit), registry, rs)
        except REFUSALS:
            continue
        escaped.append(bit)
    assert escaped == []


@pytest.mark.parametrize("keep", [0, 1, 4, 5, 9, 100, -65, -64, -1])
def test_truncation_is_refused(sealed: bytes, registry: TinyRegistry, rs: Party, keep: int) -> None:
    """Any prefix of an envelope is malformed."""
    with pytest.raises(errors.EnvelopeError):
        _open(sealed[:keep], registry, rs)


@pytest.mark.parametrize("extra", [b"\x00", b"\x00" * 64, b"garbage"])
def test_extension_is_refused(
    sealed: bytes, registry: TinyRegistry, rs: Party, extra: bytes
) -> None:
    """Trailing bytes after the signature are malformed, not ignored."""
    with pytest.raises(errors.EnvelopeError):
        _open(sealed + extra, registry, rs)


def test_an_oversized_envelope_is_refused_before_parsing(registry: TinyRegistry) -> None:
    """Size is checked first: a huge input is refused without looking at its structure."""
    with pytest.raises(errors.EnvelopeError, match="larger than the limit"):
        envelope.verify(b"\x89XBE\x01" + bytes(MAX_ENVELOPE_BYTES), registry=registry, now=NOW)


def test_a_signature_by_another_partners_key_is_refused(
    gb: Party, rs: Party, mk: Party, registry: TinyRegistry
) -> None:
    """MK signs an envelope naming GB's key id: the signature does not verify under GB's key."""
    sealed = seal_from(gb, rs)
    frame = decode_frame(sealed)
    forged_sig = mk.signing.sign(signing_input(frame.header, crypto.sha256(frame.ciphertext)))
    forged = encode_frame(dataclasses.replace(frame, signature=forged_sig))
    with pytest.raises(errors.VerificationError):
        _open(forged, registry, rs)


def test_a_sender_claiming_another_partners_key_is_refused(
    gb: Party, rs: Party, mk: Party, registry: TinyRegistry
) -> None:
    """MK's key id under sender GB is not a key of GB's in the registry."""
    sealed = seal_from(mk, rs, sender=gb.code)
    with pytest.raises(errors.KeyTrustError):
        _open(sealed, registry, rs)


def test_an_unknown_signing_key_is_refused(rs: Party, registry: TinyRegistry) -> None:
    """A partner key that is not in the registry is a KeyTrustError."""
    stranger = make_party("GB")
    with pytest.raises(errors.KeyTrustError):
        _open(seal_from(stranger, rs), registry, rs)


def test_a_revoked_signing_key_is_refused(gb: Party, rs: Party, registry: TinyRegistry) -> None:
    """A key revoked before the envelope's creation time is a KeyTrustError."""
    registry.revoke(gb.code, gb.signing.public_key().key_id, at=NOW - dt.timedelta(hours=1))
    with pytest.raises(errors.KeyTrustError):
        _open(seal_from(gb, rs), registry, rs)


def test_an_expired_signing_key_is_refused(rs: Party) -> None:
    """A key whose validity window ended before the creation time is a KeyTrustError."""
    sender = make_party("GB")
    registry = TinyRegistry()
    registry.add(sender, not_after=NOW - dt.timedelta(seconds=1))
    registry.add(rs)
    with pytest.raises(errors.KeyTrustError):
        _open(seal_from(sender, rs), registry, rs)


def test_a_revoked_recipient_key_is_refused_by_the_gateway(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """verify() checks the recipient key id too: a revoked encryption key is refused."""
    registry.revoke(rs.code, rs.decryption.key_id, at=NOW - dt.timedelta(hours=1))
    with pytest.raises(errors.KeyTrustError):
        envelope.verify(seal_from(gb, rs), registry=registry, now=NOW)


def test_an_envelope_for_another_recipient_is_refused(
    gb: Party, rs: Party, mk: Party, registry: TinyRegistry
) -> None:
    """MK cannot open (or be fed) an envelope addressed to RS, even holding RS's key id map."""
    sealed = seal_from(gb, rs)
    with pytest.raises(errors.EnvelopeError, match="addressed to RS, not MK"):
        envelope.open(
            sealed,
            registry=registry,
            recipient=mk.code,
            decryption_keys={**mk.decryption_keys, **rs.decryption_keys},
            now=NOW,
        )


def test_a_recipient_without_the_named_key_is_refused(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """No decryption key for the header's key id: KeyTrustError naming the id."""
    with pytest.raises(errors.KeyTrustError, match=rs.decryption.key_id):
        envelope.open(
            seal_from(gb, rs), registry=registry, recipient=rs.code, decryption_keys={}, now=NOW
        )


@pytest.mark.parametrize(
    ("name", "created", "match"),
    [
        ("stale", NOW - dt.timedelta(hours=24, seconds=1), "too old"),
        ("future", NOW + dt.timedelta(minutes=5, seconds=1), "in the future"),
    ],
)
def test_timestamps_outside_the_window_are_replay_errors(
    gb: Party, rs: Party, registry: TinyRegistry, name: str, created: dt.datetime, match: str
) -> None:
    """Max age 24 h and max clock skew 5 min by default; outside them is ReplayError."""
    sealed = seal_from(gb, rs, now=created)
    with pytest.raises(errors.ReplayError, match=match):
        _open(sealed, registry, rs)


def test_timestamps_at_the_window_edges_are_accepted(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """Exactly max age old and exactly max skew ahead are still inside the window."""
    for created in (NOW - dt.timedelta(hours=24), NOW + dt.timedelta(minutes=5)):
        _open(seal_from(gb, rs, now=created), registry, rs)


def test_an_expired_envelope_is_a_replay_error(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """Past its own expiry, an envelope is refused even inside the max-age window."""
    sealed = seal_from(gb, rs, now=NOW - dt.timedelta(hours=2), ttl=dt.timedelta(hours=1))
    with pytest.raises(errors.ReplayError, match="expired"):
        _open(sealed, registry, rs)


def _resign(
    sealed: bytes, signer: Party, *, header: bytes | None = None, version: int = 1
) -> bytes:
    """Rebuild an envelope with an edited header, validly signed by ``signer``."""
    frame = decode_frame(sealed)
    header = frame.header if header is None else header
    signature = signer.signing.sign(signing_input(header, crypto.sha256(frame.ciphertext)))
    data = encode_frame(Frame(header=header, ciphertext=frame.ciphertext, signature=signature))
    return data[:4] + bytes([version]) + data[5:]


def _edit_header(sealed: bytes, **changes: object) -> bytes:
    document = json.loads(decode_frame(sealed).header)
    document.update(changes)
    return canonical_json(document)


@pytest.mark.parametrize(
    ("name", "changes", "version"),
    [
        ("framing version 2", {}, 2),
        ("framing version 0", {}, 0),
        ("header version 2", {"version": 2}, 1),
        ("unknown suite", {"suite": "classic-lite"}, 1),
        ("suite relabelled to pq-hybrid", {"suite": "pq-hybrid"}, 1),
        ("suite is a list (unhashable)", {"suite": ["classic"]}, 1),
        ("suite is an object (unhashable)", {"suite": {"name": "classic"}}, 1),
    ],
)
def test_downgraded_or_unknown_versions_and_suites_are_refused(
    gb: Party,
    rs: Party,
    registry: TinyRegistry,
    name: str,
    changes: dict[str, object],
    version: int,
) -> None:
    """Even validly signed by the sender, an unknown version or a suite other than the
    registered keys' suite is refused (EnvelopeError or KeyTrustError)."""
    sealed = seal_from(gb, rs)
    forged = _resign(sealed, gb, header=_edit_header(sealed, **changes), version=version)
    with pytest.raises(REFUSALS):
        _open(forged, registry, rs)


def test_a_hybrid_sender_cannot_be_downgraded_to_classic() -> None:
    """A registry entry for pq-hybrid keys never accepts a classic-suite envelope."""
    sender = make_party("GB", crypto.Suite.PQ_HYBRID)
    recipient = make_party("RS", crypto.Suite.PQ_HYBRID)
    registry = TinyRegistry()
    registry.add(sender)
    registry.add(recipient)
    sealed = seal_from(sender, recipient)
    header = _edit_header(sealed, suite="classic")
    frame = decode_frame(sealed)
    # Only the Ed25519 half is kept, as a classic signature would be.
    ed_only = sender.signing.sign(signing_input(header, crypto.sha256(frame.ciphertext)))[:64]
    forged = encode_frame(Frame(header=header, ciphertext=frame.ciphertext, signature=ed_only))
    with pytest.raises(REFUSALS):
        _open(forged, registry, recipient)


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("not canonical: spaces", b'{"version": 1}'),
        ("duplicate key", b'{"version":1,"version":1}'),
        ("not an object", b"[1]"),
        ("not JSON", b"\xff\xfe"),
        ("empty", b""),
    ],
)
def test_malformed_headers_are_envelope_errors(
    gb: Party, rs: Party, registry: TinyRegistry, name: str, header: bytes
) -> None:
    """Header bytes that are not the one canonical JSON object are refused before any lookup."""
    with pytest.raises(errors.EnvelopeError):
        _open(_resign(seal_from(gb, rs), gb, header=header), registry, rs)


def _honest_seal(sender: Party, recipient: Party, *, content_key: bytes) -> bytes:
    """The sample sealed with zero salts and a chosen content key (committed in the header)."""
    document = json.loads(sample_bytes())
    return _seal_from_parts(
        document,
        labels=SAMPLE_LABELS,
        sender=sender.code,
        sender_key=sender.signing,
        recipient=recipient.code,
        recipient_key_id=recipient.decryption.key_id,
        recipient_key=recipient.decryption.public_key(),
        accord_id=AccordId("gb-rs"),
        accord_digest=ACCORD_DIGEST,
        created=NOW,
        expires=NOW + dt.timedelta(days=1),
        message_id=MessageId("01900000-0000-7000-8000-000000000002"),
        case_id=None,
        salts={path: bytes(16) for path in _paths(document)},
        content_key=content_key,
    )


def _regraft(
    sealed: bytes, sender: Party, recipient: Party, document: dict[str, object], content_key: bytes
) -> bytes:
    """A lying sender: keep the signed header, encrypt another body under it, sign again."""
    header = decode_frame(sealed).header
    body = Body(
        message=document, salts={p: bytes(16) for p in _paths(document)}, content_key=content_key
    )
    ciphertext = crypto.hpke_seal(
        recipient.decryption.public_key(), pad(body.to_bytes()), info=crypto.sha256(header)
    )
    signature = sender.signing.sign(signing_input(header, crypto.sha256(ciphertext)))
    return encode_frame(Frame(header=header, ciphertext=ciphertext, signature=signature))


def _paths(document: dict[str, object]) -> list[str]:
    return list(top_level_fields(document))


def test_key_commitment_detects_a_different_content_key_per_recipient(
    gb: Party, rs: Party, mk: Party, registry: TinyRegistry
) -> None:
    """One message id, one committed content key: RS gets it, MK is given another and refuses."""
    committed = b"\x01" * 32
    _open(_honest_seal(gb, rs, content_key=committed), registry, rs)
    for_mk = _honest_seal(gb, mk, content_key=committed)
    _open(for_mk, registry, mk)
    lying = _regraft(for_mk, gb, mk, json.loads(sample_bytes()), b"\x02" * 32)
    with pytest.raises(errors.VerificationError):
        _open(lying, registry, mk)


def test_content_not_matching_its_field_commitments_is_refused(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """A sender who signs the digests of one body but encrypts an edited one is caught."""
    key = b"\x01" * 32
    document = json.loads(sample_bytes())
    document["tlp"] = "RED"
    forged = _regraft(_honest_seal(gb, rs, content_key=key), gb, rs, document, key)
    with pytest.raises(errors.VerificationError):
        _open(forged, registry, rs)


def test_a_ciphertext_moved_under_another_header_does_not_decrypt(
    gb: Party, rs: Party, registry: TinyRegistry
) -> None:
    """HPKE info binds the header: a re-signed graft of another envelope's body fails."""
    first, second = decode_frame(seal_from(gb, rs)), decode_frame(seal_from(gb, rs))
    signature = gb.signing.sign(signing_input(first.header, crypto.sha256(second.ciphertext)))
    forged = encode_frame(
        Frame(header=first.header, ciphertext=second.ciphertext, signature=signature)
    )
    with pytest.raises(errors.DecryptionError):
        _open(forged, registry, rs)
