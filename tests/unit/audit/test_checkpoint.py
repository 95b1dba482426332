"""Signed checkpoints and witness cosignatures in the C2SP formats: what verifies, and every way
a note can be wrong."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable

import pytest

from broker import errors, merkle
from broker.audit.checkpoint import (
    Checkpoint,
    add_signatures,
    checkpoint_cosigners,
    cosign_checkpoint,
    open_checkpoint,
    read_checkpoint,
    sign_checkpoint,
)
from broker.audit.note import CosignatureKey, Ed25519NoteKey, parse_note
from broker.crypto import SigningKey, Suite

ORIGIN = "xb.example/audit/gateway"
T0 = dt.datetime(2026, 11, 28, 16, 0, tzinfo=dt.UTC)
STAMP = int(T0.timestamp())
LEAVES = [merkle.leaf_hash(f"record {i}".encode()) for i in range(20)]
Witnesses = tuple[SigningKey, SigningKey, SigningKey]
NAMES = ("witness.example/a", "witness.example/b", "witness.example/c")


def checkpoint_at(size: int, *, minutes: int = 0, root: bytes | None = None) -> Checkpoint:
    return Checkpoint(
        origin=ORIGIN,
        size=size,
        root=merkle.root_hash(LEAVES[:size]) if root is None else root,
        timestamp=T0 + dt.timedelta(minutes=minutes),
    )


def witness_note_keys(witnesses: Witnesses) -> list[CosignatureKey]:
    return [CosignatureKey(n, w.public_key()) for n, w in zip(NAMES, witnesses, strict=True)]


def cosigned_note(gateway: SigningKey, witnesses: Witnesses, checkpoint: Checkpoint) -> bytes:
    """A note signed by the gateway and cosigned by every witness."""
    note = sign_checkpoint(checkpoint, key=gateway)
    lines = [
        cosign_checkpoint(checkpoint, key=w, name=n, timestamp=STAMP)
        for n, w in zip(NAMES, witnesses, strict=True)
    ]
    return add_signatures(note, lines)


def test_body_is_the_documented_text() -> None:
    """Origin, size, base64 root and time, one per line: readable and stable byte for byte."""
    body = checkpoint_at(0).body()
    assert body == (
        b"xb.example/audit/gateway\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        b"time 2026-11-28T16:00:00Z\n"
    )


def test_the_log_signs_the_body_as_a_plain_ed25519_note(gateway_key: SigningKey) -> None:
    """The signature line is the origin as key name and base64(key ID || Ed25519(body)):
    exactly what c2sp.org/signed-note and Go's sumdb/note verify."""
    checkpoint = checkpoint_at(4)
    note = sign_checkpoint(checkpoint, key=gateway_key)
    body, line = note.split(b"\n\n")
    assert body + b"\n" == checkpoint.body()
    name, blob = line.decode().removeprefix("\u2014 ").rstrip("\n").split(" ")
    raw = base64.b64decode(blob)
    assert name == ORIGIN
    assert raw[:4] == Ed25519NoteKey(ORIGIN, gateway_key.public_key()).key_id
    gateway_key.public_key().verify_ed25519(signature=raw[4:], message=checkpoint.body())
    assert open_checkpoint(note, log_keys=[gateway_key.public_key()]) == checkpoint


def test_cosignatures_verify_and_count_per_witness(
    gateway_key: SigningKey, witness_keys: Witnesses
) -> None:
    """Each witness's cosignature/v1 verifies under its own name; unknown ones are ignored."""
    checkpoint = checkpoint_at(8)
    note = cosigned_note(gateway_key, witness_keys, checkpoint)
    keys = witness_note_keys(witness_keys)
    assert checkpoint_cosigners(note, witnesses=keys) == tuple(keys)
    assert checkpoint_cosigners(note, witnesses=keys[:1]) == (keys[0],)
    assert open_checkpoint(note, log_keys=[gateway_key.public_key()]) == checkpoint


def test_post_quantum_hybrid_keys_sign_with_their_ed25519_half(witness_keys: Witnesses) -> None:
    """The note formats are Ed25519 only: a hybrid key signs and verifies with its Ed25519 half."""
    gateway = SigningKey.generate(Suite.PQ_HYBRID)
    witness = SigningKey.generate(Suite.PQ_HYBRID)
    checkpoint = checkpoint_at(3)
    note = add_signatures(
        sign_checkpoint(checkpoint, key=gateway),
        [cosign_checkpoint(checkpoint, key=witness, name=NAMES[0], timestamp=STAMP)],
    )
    assert open_checkpoint(note, log_keys=[gateway.public_key()]).size == 3
    cosigner = CosignatureKey(NAMES[0], witness.public_key())
    assert checkpoint_cosigners(note, witnesses=[cosigner]) == (cosigner,)


def test_a_cosignature_does_not_pass_as_the_logs_signature(witness_keys: Witnesses) -> None:
    """A witness key's cosignature, relabelled under the origin, is no log signature: the key
    IDs differ by type byte, and the signed message differs by its cosignature header."""
    witness = witness_keys[0]
    checkpoint = checkpoint_at(4)
    line = cosign_checkpoint(checkpoint, key=witness, name=ORIGIN, timestamp=STAMP)
    note = checkpoint.body() + b"\n" + line.line()
    with pytest.raises(errors.AuditError, match="no signature by a trusted log key"):
        open_checkpoint(note, log_keys=[witness.public_key()])
    relabelled = line.line().replace(
        base64.b64encode(line.key_id + line.signature),
        base64.b64encode(Ed25519NoteKey(ORIGIN, witness.public_key()).key_id + line.signature[8:]),
    )
    with pytest.raises(errors.AuditError, match="does not verify"):
        open_checkpoint(checkpoint.body() + b"\n" + relabelled, log_keys=[witness.public_key()])


def _replace(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda note: note.replace(old, new, 1)


def _flip_signature(line_number: int) -> Callable[[bytes], bytes]:
    def flip(note: bytes) -> bytes:
        lines = note.split(b"\n")
        name, blob = lines[line_number].rsplit(b" ", 1)
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1
        lines[line_number] = name + b" " + base64.b64encode(bytes(raw))
        return b"\n".join(lines)

    return flip


def _drop_gateway_line(note: bytes) -> bytes:
    return b"\n".join(line for line in note.split(b"\n") if not line.startswith(b"\xe2\x80\x94 xb"))


TAMPERED_NOTES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "size changed": (_replace(b"\n8\n", b"\n9\n"), "does not verify"),
    "time changed": (_replace(b"T16:00:00Z", b"T16:00:01Z"), "does not verify"),
    "root changed": (
        lambda note: note.replace(
            base64.b64encode(checkpoint_at(8).root), base64.b64encode(checkpoint_at(7).root)
        ),
        "does not verify",
    ),
    "origin changed": (_replace(b"xb.example", b"xc.example"), "no signature by a trusted"),
    "gateway signature removed": (_drop_gateway_line, "no signature by a trusted"),
    "gateway signature damaged": (_flip_signature(5), "does not verify"),
    "size with a leading zero": (_replace(b"\n8\n", b"\n08\n"), "size line"),
    "root in unpadded base64": (lambda note: note.replace(b"=\ntime", b"\ntime"), "root line"),
    "extra body line": (_replace(b"Z\n\n", b"Z\nextra\n\n"), "four lines"),
    "no blank line": (_replace(b"Z\n\n", b"Z\n"), "blank line"),
    "no final newline": (lambda note: note.rstrip(b"\n"), "final newline"),
    "malformed signature line": (lambda note: note + b"- gateway xyz\n", "malformed note"),
    "a control character": (_replace(b"time", b"\ttime"), "control character"),
    "not UTF-8": (lambda note: note + b"\xff\n", "UTF-8"),
    "oversized": (lambda note: note + "\u2014 w ".encode() + b"A" * 70_000 + b"\n", "at most"),
    "invalid date": (_replace(b"2026-11-28", b"2026-02-30"), "valid date"),
}


@pytest.mark.parametrize(("tamper", "reason"), TAMPERED_NOTES.values(), ids=TAMPERED_NOTES.keys())
def test_tampered_notes_are_refused(
    gateway_key: SigningKey, witness_keys: Witnesses, tamper: Callable[[bytes], bytes], reason: str
) -> None:
    """Any change to the signed body, a damaged or missing log signature, any deviation from
    the one canonical text form: AuditError."""
    note = cosigned_note(gateway_key, witness_keys, checkpoint_at(8))
    tampered = tamper(note)
    assert tampered != note
    with pytest.raises(errors.AuditError, match=reason):
        open_checkpoint(tampered, log_keys=[gateway_key.public_key()])


def test_a_damaged_cosignature_fails_its_witness_only(
    gateway_key: SigningKey, witness_keys: Witnesses
) -> None:
    """The log's signature still opens the note; the damaged witness's line is refused when
    that witness is asked about, and ignored when it is not."""
    note = _flip_signature(8)(cosigned_note(gateway_key, witness_keys, checkpoint_at(8)))
    keys = witness_note_keys(witness_keys)
    assert open_checkpoint(note, log_keys=[gateway_key.public_key()]).size == 8
    with pytest.raises(errors.AuditError, match="does not verify"):
        checkpoint_cosigners(note, witnesses=keys)
    assert checkpoint_cosigners(note, witnesses=keys[:2]) == tuple(keys[:2])


def test_signatures_by_unknown_keys_are_ignored(
    gateway_key: SigningKey, witness_keys: Witnesses
) -> None:
    """Other parties may sign; a stranger's key alone opens nothing."""
    note = cosigned_note(gateway_key, witness_keys, checkpoint_at(8))
    stranger = SigningKey.generate(Suite.CLASSIC)
    with pytest.raises(errors.AuditError, match="no signature by a trusted log key"):
        open_checkpoint(note, log_keys=[stranger.public_key()])
    assert checkpoint_cosigners(note, witnesses=[CosignatureKey("x", stranger.public_key())]) == ()
    with pytest.raises(errors.UsageError):
        open_checkpoint(note, log_keys=[])


def test_adding_a_cosignature_twice_keeps_one_line(
    gateway_key: SigningKey, witness_keys: Witnesses
) -> None:
    """Re-attaching a witness's cosignature leaves the note unchanged."""
    checkpoint = checkpoint_at(8)
    note = sign_checkpoint(checkpoint, key=gateway_key)
    line = cosign_checkpoint(checkpoint, key=witness_keys[0], name=NAMES[0], timestamp=STAMP)
    once = add_signatures(note, [line])
    assert add_signatures(once, [line, line]) == once
    assert len(parse_note(once).signatures) == 2


def test_reading_a_checkpoint_checks_its_form_only(gateway_key: SigningKey) -> None:
    """read_checkpoint parses without any key (for choosing keys by time); it is no proof."""
    checkpoint = checkpoint_at(5, minutes=3)
    stranger = SigningKey.generate(Suite.CLASSIC)
    read, note = read_checkpoint(sign_checkpoint(checkpoint, key=stranger))
    assert read == checkpoint
    assert note.text == checkpoint.body()


@pytest.mark.parametrize("timestamp", [-1, 1 << 63, True])
def test_impossible_cosignature_times_are_refused(witness_keys: Witnesses, timestamp: int) -> None:
    """A cosignature time is an unsigned 63-bit count of seconds."""
    with pytest.raises(errors.UsageError):
        cosign_checkpoint(checkpoint_at(1), key=witness_keys[0], name=NAMES[0], timestamp=timestamp)


BAD_CHECKPOINTS: dict[str, Callable[[], Checkpoint]] = {
    "empty origin": lambda: Checkpoint(origin="", size=0, root=merkle.EMPTY_ROOT, timestamp=T0),
    "origin with a newline": lambda: Checkpoint(
        origin="a\nb", size=0, root=merkle.EMPTY_ROOT, timestamp=T0
    ),
    "origin with a plus": lambda: Checkpoint(
        origin="a+b", size=0, root=merkle.EMPTY_ROOT, timestamp=T0
    ),
    "negative size": lambda: Checkpoint(origin=ORIGIN, size=-1, root=bytes(32), timestamp=T0),
    "short root": lambda: Checkpoint(origin=ORIGIN, size=1, root=bytes(31), timestamp=T0),
    "empty log, other root": lambda: Checkpoint(
        origin=ORIGIN, size=0, root=bytes(32), timestamp=T0
    ),
    "before 1970": lambda: Checkpoint(
        origin=ORIGIN,
        size=0,
        root=merkle.EMPTY_ROOT,
        timestamp=dt.datetime(1969, 1, 1, tzinfo=dt.UTC),
    ),
}


@pytest.mark.parametrize("make", BAD_CHECKPOINTS.values(), ids=BAD_CHECKPOINTS.keys())
def test_impossible_checkpoints_cannot_be_built(make: Callable[[], Checkpoint]) -> None:
    """A checkpoint that could never verify is refused when built, with AuditError."""
    with pytest.raises(errors.AuditError):
        make()


def test_checkpoint_time_is_whole_utc_seconds_and_has_no_truth_value() -> None:
    """Time is normalised to what the note can carry; truth-testing a result is refused."""
    local = dt.timezone(dt.timedelta(hours=2))
    checkpoint = Checkpoint(
        origin=ORIGIN,
        size=0,
        root=merkle.EMPTY_ROOT,
        timestamp=dt.datetime(2026, 11, 28, 18, 0, 0, 999_999, tzinfo=local),
    )
    assert checkpoint.timestamp == T0
    assert checkpoint.timestamp.tzinfo is dt.UTC
    with pytest.raises(TypeError):
        bool(checkpoint)
    with pytest.raises(errors.UsageError):
        Checkpoint(
            origin=ORIGIN,
            size=0,
            root=merkle.EMPTY_ROOT,
            timestamp=dt.datetime(2026, 1, 1),  # noqa: DTZ001 - the naive time under test
        )
