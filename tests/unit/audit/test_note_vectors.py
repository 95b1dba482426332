"""Known-answer tests for C2SP signed notes and cosignatures (tests/vectors/audit/signed-note.json,
whose groups cite where each value comes from): our key IDs, signatures and verification agree
byte for byte with golang.org/x/mod/sumdb/note, the C2SP specs and transparency-dev/formats."""

from __future__ import annotations

import base64
import json
import pathlib
from typing import Any

import pytest

from broker import errors
from broker.audit.note import (
    SIGNATURE_COSIGNATURE_V1,
    SIGNATURE_ED25519,
    CosignatureKey,
    Ed25519NoteKey,
    Note,
    cosigned_message,
    note_key_id,
    open_note,
    parse_note,
)
from broker.crypto import SigningKey, Suite, VerifyKey

VECTORS: dict[str, Any] = json.loads(
    (pathlib.Path(__file__).parents[2] / "vectors" / "audit" / "signed-note.json").read_text(
        encoding="utf-8"
    )
)
GO = VECTORS["go_sumdb_note"]


def _verifier(vkey: str) -> tuple[str, bytes, int, VerifyKey]:
    """A vkey's name, key ID, signature type and public key."""
    name, key_id, encoded = vkey.split("+", 2)
    raw = base64.b64decode(encoded)
    return name, bytes.fromhex(key_id), raw[0], VerifyKey.from_bytes(Suite.CLASSIC, raw[1:])


def _signer(skey: str) -> tuple[str, SigningKey]:
    """A Go signer key's name and private key."""
    _private, _key, name, _key_id, encoded = skey.split("+", 4)
    seed = base64.b64decode(encoded)[1:]
    return name, SigningKey._from_seeds(Suite.CLASSIC, ed25519_seed=seed)


def _note_key(vkey: str) -> Ed25519NoteKey:
    name, _, _, key = _verifier(vkey)
    return Ed25519NoteKey(name, key)


@pytest.mark.parametrize(
    "vkey",
    [
        GO["verifier_key"],
        GO["other_verifier_key"],
        VECTORS["c2sp_signed_note"]["verifier_key"],
        VECTORS["cosignature_v1_key_id"]["verifier_key"],
        VECTORS["cosignature_v1"]["verifier_key"],
    ],
)
def test_key_ids_are_the_specs_hash(vkey: str) -> None:
    """SHA-256(name || 0x0A || type || public key)[:4], for both signature types."""
    name, key_id, signature_type, key = _verifier(vkey)
    assert signature_type in (SIGNATURE_ED25519, SIGNATURE_COSIGNATURE_V1)
    assert note_key_id(name, signature_type, key.ed25519_bytes()) == key_id
    kind = Ed25519NoteKey if signature_type == SIGNATURE_ED25519 else CosignatureKey
    assert kind(name, key).vkey() == vkey


def test_signing_reproduces_go_sumdb_note_byte_for_byte() -> None:
    """Ed25519 is deterministic: the same key and text give Go's exact note."""
    name, key = _signer(GO["signer_key"])
    text = GO["text"].encode()
    signed = Note(text, (Ed25519NoteKey.sign(text, name=name, key=key),)).to_bytes()
    assert signed == GO["signed"].encode()


def test_go_and_c2sp_notes_verify() -> None:
    """The reference notes open under their verifier keys; unknown signers are ignored."""
    for vkey, signed in (
        (GO["verifier_key"], GO["signed"]),
        (VECTORS["c2sp_signed_note"]["verifier_key"], VECTORS["c2sp_signed_note"]["signed"]),
    ):
        key = _note_key(vkey)
        note, verified = open_note(signed.encode(), keys=[key])
        assert verified == (key,)
        assert signed.encode().startswith(note.text)
    peter, enoch = _note_key(GO["verifier_key"]), _note_key(GO["other_verifier_key"])
    _, verified = open_note(GO["signed_by_both"].encode(), keys=[enoch, peter])
    assert verified == (peter, enoch)
    _, verified = open_note(GO["signed_by_both"].encode(), keys=[enoch])
    assert verified == (enoch,)


def test_a_bad_signature_by_a_known_key_refuses_the_note() -> None:
    """Go's 'invalid signature for key': a known key's line must verify."""
    with pytest.raises(errors.AuditError, match="does not verify"):
        open_note(GO["bad_signature"].encode(), keys=[_note_key(GO["verifier_key"])])
    # Unknown to the caller, the same damaged line is simply not counted.
    _, verified = open_note(
        GO["bad_signature"].encode(), keys=[_note_key(GO["other_verifier_key"])]
    )
    assert verified == ()


@pytest.mark.parametrize(
    "data",
    [text.encode() for text in GO["malformed"]]
    + [bytes.fromhex(item) for item in GO["malformed_bytes_hex"]],
)
def test_go_malformed_notes_are_refused(data: bytes) -> None:
    """Every note Go's Open calls malformed is refused here too."""
    with pytest.raises(errors.AuditError):
        parse_note(data)


def test_the_cosigned_message_is_the_specs() -> None:
    """``cosignature/v1``, the time line, then the checkpoint text: tlog-cosignature's example."""
    spec = VECTORS["cosignature_v1_message"]
    message = cosigned_message(spec["checkpoint"].encode(), timestamp=spec["timestamp"])
    assert message == spec["message"].encode()
    line = parse_note(spec["checkpoint"].encode() + b"\n" + spec["example_line"].encode())
    (signature,) = line.signatures
    assert signature.key_id.hex() == spec["example_key_id_hex"]
    assert CosignatureKey.timestamp_of(signature) == spec["timestamp"]


def test_cosignature_reproduces_the_recorded_vector() -> None:
    """Our cosignature over the spec's checkpoint equals the recorded one, and verifies."""
    vector = VECTORS["cosignature_v1"]
    _, key = _signer(vector["signer_key"])
    text = VECTORS["cosignature_v1_message"]["checkpoint"].encode()
    line = CosignatureKey.sign(text, name=vector["name"], key=key, timestamp=vector["timestamp"])
    assert Note(text, (line,)).to_bytes() == vector["signed"].encode()
    name, _, _, public = _verifier(vector["verifier_key"])
    witness = CosignatureKey(name, public)
    _, verified = open_note(vector["signed"].encode(), keys=[witness])
    assert verified == (witness,)
    # The same key as a plain Ed25519 note key has another key ID: the line is not its.
    _, verified = open_note(vector["signed"].encode(), keys=[Ed25519NoteKey(name, public)])
    assert verified == ()
