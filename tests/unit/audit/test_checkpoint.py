"""Signed checkpoints and witness co-signatures: what verifies, and every way a note or a
witness's input can be wrong."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable

import pytest

from broker import errors
from broker.audit import merkle
from broker.audit.checkpoint import (
    CHECKPOINT_CONTEXT,
    Checkpoint,
    add_cosignatures,
    sign_checkpoint,
    verify_checkpoint,
    verify_log_signature,
    witness_cosign,
)
from broker.crypto import SigningKey, Suite

ORIGIN = "xb.example/audit/gateway"
T0 = dt.datetime(2026, 11, 28, 16, 0, tzinfo=dt.UTC)
LEAVES = [merkle.leaf_hash(f"record {i}".encode()) for i in range(20)]
Witnesses = tuple[SigningKey, SigningKey, SigningKey]


def checkpoint_at(size: int, *, minutes: int = 0, root: bytes | None = None) -> Checkpoint:
    return Checkpoint(
        origin=ORIGIN,
        size=size,
        root=merkle.root_hash(LEAVES[:size]) if root is None else root,
        timestamp=T0 + dt.timedelta(minutes=minutes),
    )


def cosigned_note(gateway: SigningKey, witnesses: Witnesses, checkpoint: Checkpoint) -> bytes:
    """A note signed by the gateway and co-signed by every witness (each seeing it first)."""
    note = sign_checkpoint(checkpoint, key=gateway)
    verified = verify_log_signature(note, gateway_keys=[gateway.public_key()])
    cosignatures = [
        witness_cosign(verified, previous=None, consistency_proof=(), key=w, now=T0)
        for w in witnesses
    ]
    return add_cosignatures(note, cosignatures)


def test_body_is_the_documented_text() -> None:
    """Origin, size, base64 root and time, one per line: readable and stable byte for byte."""
    body = checkpoint_at(0).body()
    assert body == (
        b"xb.example/audit/gateway\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        b"time 2026-11-28T16:00:00Z\n"
    )


def test_signed_and_cosigned_note_verifies(
    gateway_key: SigningKey, witness_keys: Witnesses
) -> None:
    """With the gateway's signature and enough witnesses, the checkpoint comes back intact."""
    checkpoint = checkpoint_at(8)
    note = cosigned_note(gateway_key, witness_keys, checkpoint)
    got = verify_checkpoint(
        note,
        gateway_keys=[gateway_key.public_key()],
        witness_keys=[w.public_key() for w in witness_keys],
        witness_threshold=3,
    )
    assert got == checkpoint
    assert note.startswith(checkpoint.body() + b"\n\xe2\x80\x94 gateway/")


def test_post_quantum_hybrid_keys_work_the_same(witness_keys: Witnesses) -> None:
    """The hybrid suite's longer signatures fit the note and verify."""
    gateway = SigningKey.generate(Suite.PQ_HYBRID)
    note = cosigned_note(gateway, witness_keys, checkpoint_at(3))
    got = verify_checkpoint(
        note,
        gateway_keys=[gateway.public_key()],
        witness_keys=[witness_keys[0].public_key()],
        witness_threshold=1,
    )
    assert got.size == 3


def test_signatures_are_domain_separated(gateway_key: SigningKey, witness_keys: Witnesses) -> None:
    """The gateway signs a context-prefixed input, never the bare body, so its checkpoint
    signature cannot be replayed as a signature over the same text in another protocol."""
    note = sign_checkpoint(checkpoint_at(4), key=gateway_key)
    signature = base64.b64decode(note.rstrip(b"\n").rsplit(b" ", 1)[1])
    with pytest.raises(errors.VerificationError):
        gateway_key.public_key().verify(signature=signature, message=checkpoint_at(4).body())
    assert CHECKPOINT_CONTEXT.startswith(b"broker/audit/")


def test_a_cosignature_does_not_pass_as_the_logs_signature(witness_keys: Witnesses) -> None:
    """A witness's co-signature line relabelled as a gateway line is refused."""
    witness = witness_keys[0]
    note = cosigned_note(witness, (witness, witness, witness), checkpoint_at(4))
    body, lines = note.split(b"\n\n")
    cosignature_line = lines.split(b"\n")[1]
    blob = base64.b64decode(cosignature_line.rsplit(b" ", 1)[1])
    forged = cosignature_line.replace(b"witness/", b"gateway/").rsplit(b" ", 1)[0]
    forged += b" " + base64.b64encode(blob[8:]) + b"\n"
    with pytest.raises(errors.AuditError):
        verify_log_signature(body + b"\n\n" + forged, gateway_keys=[witness.public_key()])


def _replace(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda note: note.replace(old, new, 1)


def _drop_line(prefix: bytes) -> Callable[[bytes], bytes]:
    return lambda note: b"\n".join(
        line for line in note.split(b"\n") if not line.startswith(prefix)
    )


def _flip_signature(line_number: int) -> Callable[[bytes], bytes]:
    def flip(note: bytes) -> bytes:
        lines = note.split(b"\n")
        name, blob = lines[line_number].rsplit(b" ", 1)
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1
        lines[line_number] = name + b" " + base64.b64encode(bytes(raw))
        return b"\n".join(lines)

    return flip


def _duplicate_line(line_number: int) -> Callable[[bytes], bytes]:
    def duplicate(note: bytes) -> bytes:
        return note + note.split(b"\n")[line_number] + b"\n"

    return duplicate


TAMPERED_NOTES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "size changed": (_replace(b"\n8\n", b"\n9\n"), "signature by"),
    "origin changed": (_replace(b"xb.example", b"xc.example"), "signature by"),
    "time changed": (_replace(b"T16:00:00Z", b"T16:00:01Z"), "signature by"),
    "root changed": (
        lambda note: note.replace(
            base64.b64encode(checkpoint_at(8).root), base64.b64encode(checkpoint_at(7).root)
        ),
        "signature by",
    ),
    "gateway signature removed": (
        _drop_line("\u2014 gateway".encode()),
        "no signature by a trusted gateway",
    ),
    "gateway signature damaged": (_flip_signature(5), "checkpoint signature by"),
    "witness co-signature damaged": (_flip_signature(6), "co-signature by witness"),
    "a witness co-signature removed": (_drop_line("\u2014 witness".encode()), "0 trusted witness"),
    "a witness line twice": (_duplicate_line(6), "two signatures"),
    "size with a leading zero": (_replace(b"\n8\n", b"\n08\n"), "size line"),
    "root in unpadded base64": (lambda note: note.replace(b"=\ntime", b"\ntime"), "root line"),
    "extra body line": (_replace(b"Z\n\n", b"Z\nextra\n\n"), "four lines"),
    "no blank line": (_replace(b"Z\n\n", b"Z\n"), "blank line"),
    "no final newline": (lambda note: note.rstrip(b"\n"), "blank line"),
    "malformed signature line": (
        lambda note: note + b"- gateway/abc xyz\n",
        "malformed signature line",
    ),
    "not UTF-8": (lambda note: note + b"\xff\n", "UTF-8"),
    "oversized": (
        lambda note: note + b"\xe2\x80\x94 witness/" + b"0" * 32 + b" " + b"A" * 300_000,
        "larger than",
    ),
    "invalid date": (_replace(b"2026-11-28", b"2026-02-30"), "valid date"),
}


@pytest.mark.parametrize(("tamper", "reason"), TAMPERED_NOTES.values(), ids=TAMPERED_NOTES.keys())
def test_tampered_notes_are_refused(
    gateway_key: SigningKey, witness_keys: Witnesses, tamper: Callable[[bytes], bytes], reason: str
) -> None:
    """Any change to the signed body, any damaged or missing signature, any deviation from
    the one canonical text form: AuditError."""
    note = cosigned_note(gateway_key, witness_keys, checkpoint_at(8))
    tampered = tamper(note)
    assert tampered != note
    with pytest.raises(errors.AuditError, match=reason):
        verify_checkpoint(
            tampered,
            gateway_keys=[gateway_key.public_key()],
            witness_keys=[w.public_key() for w in witness_keys],
            witness_threshold=3,
        )


def test_signatures_by_unknown_keys_are_ignored(
    gateway_key: SigningKey, witness_keys: Witnesses
) -> None:
    """Other parties may co-sign; only trusted keys count, towards the threshold too."""
    note = cosigned_note(gateway_key, witness_keys, checkpoint_at(8))
    trusted = [witness_keys[0].public_key()]
    got = verify_checkpoint(
        note, gateway_keys=[gateway_key.public_key()], witness_keys=trusted, witness_threshold=1
    )
    assert got.size == 8
    stranger = SigningKey.generate(Suite.CLASSIC)
    with pytest.raises(errors.AuditError, match="no signature by a trusted gateway"):
        verify_log_signature(note, gateway_keys=[stranger.public_key()])


@pytest.mark.parametrize("threshold", [0, -1, 4, True])
def test_threshold_must_be_reachable_and_positive(
    gateway_key: SigningKey, witness_keys: Witnesses, threshold: int
) -> None:
    """Fail closed: no threshold of zero, none larger than the distinct witness keys."""
    note = cosigned_note(gateway_key, witness_keys, checkpoint_at(8))
    with pytest.raises(errors.UsageError):
        verify_checkpoint(
            note,
            gateway_keys=[gateway_key.public_key()],
            witness_keys=[w.public_key() for w in witness_keys],
            witness_threshold=threshold,
        )


def test_the_same_witness_key_twice_counts_once(
    gateway_key: SigningKey, witness_keys: Witnesses
) -> None:
    """Listing one witness key twice does not let a threshold of two be met by one witness."""
    note = cosigned_note(gateway_key, witness_keys, checkpoint_at(8))
    once = witness_keys[0].public_key()
    with pytest.raises(errors.UsageError):
        verify_checkpoint(
            note,
            gateway_keys=[gateway_key.public_key()],
            witness_keys=[once, once],
            witness_threshold=2,
        )


def test_adding_a_cosignature_twice_keeps_one_line(
    gateway_key: SigningKey, witness_keys: Witnesses
) -> None:
    """Re-attaching a witness's co-signature leaves the note unchanged."""
    checkpoint = checkpoint_at(8)
    note = sign_checkpoint(checkpoint, key=gateway_key)
    cosignature = witness_cosign(
        checkpoint, previous=None, consistency_proof=(), key=witness_keys[0], now=T0
    )
    once = add_cosignatures(note, [cosignature])
    assert add_cosignatures(once, [cosignature, cosignature]) == once
    assert once.count("\u2014 witness/".encode()) == 1


def test_witness_cosigns_a_grown_log_with_a_valid_proof(witness_keys: Witnesses) -> None:
    """The last co-signed checkpoint plus a consistency proof is enough to co-sign again."""
    previous, current = checkpoint_at(5), checkpoint_at(13, minutes=1)
    proof = merkle.consistency_proof(LEAVES, 5, 13)
    now = T0 + dt.timedelta(minutes=2, microseconds=7)
    cosignature = witness_cosign(
        current, previous=previous, consistency_proof=proof, key=witness_keys[0], now=now
    )
    assert cosignature.key_id == witness_keys[0].public_key().key_id
    assert cosignature.timestamp == T0 + dt.timedelta(minutes=2)


def test_witness_cosigns_the_same_checkpoint_again(witness_keys: Witnesses) -> None:
    """An unchanged log (same size, same root) needs no proof."""
    same = checkpoint_at(5)
    witness_cosign(same, previous=same, consistency_proof=(), key=witness_keys[0], now=T0)


REFUSALS = {
    "the log shrank": (checkpoint_at(13), checkpoint_at(5, minutes=1), (), errors.AuditError),
    "same size, other root: a fork": (
        checkpoint_at(5),
        checkpoint_at(5, root=merkle.root_hash(LEAVES[1:6])),
        (),
        errors.AuditError,
    ),
    "proof does not verify": (
        checkpoint_at(5),
        checkpoint_at(13),
        merkle.consistency_proof(LEAVES, 4, 13),
        errors.AuditError,
    ),
    "history rewritten under a valid-looking proof": (
        checkpoint_at(5),
        checkpoint_at(13, root=merkle.root_hash(LEAVES[1:14])),
        merkle.consistency_proof(LEAVES[1:14], 5, 13),
        errors.AuditError,
    ),
    "another log": (
        Checkpoint(origin="xb.example/other", size=5, root=checkpoint_at(5).root, timestamp=T0),
        checkpoint_at(13),
        merkle.consistency_proof(LEAVES, 5, 13),
        errors.AuditError,
    ),
    "time runs backwards": (
        checkpoint_at(5, minutes=3),
        checkpoint_at(13, minutes=2),
        merkle.consistency_proof(LEAVES, 5, 13),
        errors.AuditError,
    ),
    "dated in the future": (
        checkpoint_at(5),
        checkpoint_at(13, minutes=60),
        merkle.consistency_proof(LEAVES, 5, 13),
        errors.AuditError,
    ),
    "a proof with no previous checkpoint": (
        None,
        checkpoint_at(13),
        merkle.consistency_proof(LEAVES, 5, 13),
        errors.UsageError,
    ),
}


@pytest.mark.parametrize(
    ("previous", "current", "proof", "error"), REFUSALS.values(), ids=REFUSALS.keys()
)
def test_witness_refuses_what_it_cannot_vouch_for(
    witness_keys: Witnesses,
    previous: Checkpoint | None,
    current: Checkpoint,
    proof: tuple[bytes, ...],
    error: type[Exception],
) -> None:
    """A witness never co-signs a rollback, a split view, an unproven extension or a
    checkpoint from another log or another time."""
    with pytest.raises(error):
        witness_cosign(
            current, previous=previous, consistency_proof=proof, key=witness_keys[0], now=T0
        )


def test_witness_needs_an_aware_now(witness_keys: Witnesses) -> None:
    """A naive time is a programming error, refused rather than guessed."""
    with pytest.raises(errors.UsageError):
        witness_cosign(
            checkpoint_at(1),
            previous=None,
            consistency_proof=(),
            key=witness_keys[0],
            now=dt.datetime(2026, 1, 1),  # noqa: DTZ001 - the naive time under test
        )


BAD_CHECKPOINTS: dict[str, Callable[[], Checkpoint]] = {
    "empty origin": lambda: Checkpoint(origin="", size=0, root=merkle.EMPTY_ROOT, timestamp=T0),
    "origin with a newline": lambda: Checkpoint(
        origin="a\nb", size=0, root=merkle.EMPTY_ROOT, timestamp=T0
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
