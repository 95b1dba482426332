"""Our checkpoints and cosignatures, checked by the Go reference code, and the other way round.

``tests/interop/note_go`` is a small Go program over ``golang.org/x/mod/sumdb/note`` (signed
notes) and ``github.com/transparency-dev/formats`` (``log.ParseCheckpoint`` for the
tlog-checkpoint body and origin, ``note.NewVerifierForCosignatureV1`` and its signer for
tlog-cosignature/v1). It opens a checkpoint the real checkpointer signed and the real witness
daemon's code cosigned, refuses a tampered one, and cosigns one itself, which our code must
then accept.

It needs the ``go`` command (the Go module proxy fetches the two modules the first time, as
pinned by go.sum); without ``go`` on the PATH the test is skipped, naming it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from broker.audit import (
    Checkpoint,
    CosignatureKey,
    Ed25519NoteKey,
    MerkleLog,
    add_signatures,
    checkpoint_cosigners,
    cosign_checkpoint,
    leaf_hash,
    sign_checkpoint,
)
from broker.audit.note import SIGNATURE_ED25519, note_key_id
from broker.crypto import SigningKey, Suite

pytestmark = pytest.mark.slow

PROGRAM = Path(__file__).parent / "note_go"
ORIGIN = "broker/xb.audit"
WITNESS = "witness.example/rs"
WITNESS_SEED = bytes(range(32))
#: building the program the first time downloads and compiles its modules: a hang guard
HANG_GUARD_S = 600


def go(request: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run the Go program on one request."""
    binary = shutil.which("go")
    if binary is None:
        pytest.skip("the 'go' command is absent: the Go interoperability test cannot run")
    return subprocess.run(
        [binary, "run", "."],
        cwd=PROGRAM,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
        env={**os.environ, "GOFLAGS": "-mod=readonly"},
    )


@pytest.fixture(scope="module")
def signed() -> tuple[Checkpoint, bytes, SigningKey, SigningKey]:
    """A checkpoint over 9 leaves signed by a gateway key and cosigned by a witness key."""
    gateway = SigningKey.generate(Suite.CLASSIC)
    witness = SigningKey._from_seeds(Suite.CLASSIC, ed25519_seed=WITNESS_SEED)
    log = MerkleLog()
    for i in range(9):
        log.append(leaf_hash(b"audit record %d" % i))
    when = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
    checkpoint = Checkpoint(ORIGIN, log.size, log.root(), when)
    line = cosign_checkpoint(
        checkpoint, key=witness, name=WITNESS, timestamp=int(when.timestamp()) + 30
    )
    note = add_signatures(sign_checkpoint(checkpoint, key=gateway), [line])
    return checkpoint, note, gateway, witness


def test_go_verifies_our_checkpoint_and_cosignature(
    signed: tuple[Checkpoint, bytes, SigningKey, SigningKey],
) -> None:
    """ParseCheckpoint accepts the body and origin, the log's Ed25519 signature verifies
    under its vkey, and the witness's cosignature/v1 under transparency-dev's verifier."""
    checkpoint, note, gateway, witness = signed
    answer = go(
        {
            "mode": "verify",
            "note": note.decode(),
            "origin": ORIGIN,
            "log_vkey": Ed25519NoteKey(ORIGIN, gateway.public_key()).vkey(),
            "witness_vkey": CosignatureKey(WITNESS, witness.public_key()).vkey(),
        }
    )
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result["size"] == checkpoint.size
    assert base64.b64decode(result["root"]) == checkpoint.root
    assert result["extensions"] == "time 2026-12-05T12:00:00Z\n"
    assert sorted(result["verified"]) == sorted([ORIGIN, WITNESS])


@pytest.mark.parametrize("where", ["root", "cosignature"])
def test_go_refuses_a_tampered_note(
    signed: tuple[Checkpoint, bytes, SigningKey, SigningKey], where: str
) -> None:
    """One changed character in the body, or in the witness's line, and Go refuses the note."""
    checkpoint, note, gateway, witness = signed
    lines = note.decode().split("\n")
    if where == "root":
        root = base64.b64encode(checkpoint.root).decode()
        lines[2] = root.replace(root[5], "A" if root[5] != "A" else "B", 1)
    else:
        name, blob = lines[-2].rsplit(" ", 1)
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1
        lines[-2] = f"{name} {base64.b64encode(bytes(raw)).decode()}"
    answer = go(
        {
            "mode": "verify",
            "note": "\n".join(lines),
            "origin": ORIGIN,
            "log_vkey": Ed25519NoteKey(ORIGIN, gateway.public_key()).vkey(),
            "witness_vkey": CosignatureKey(WITNESS, witness.public_key()).vkey(),
        }
    )
    assert answer.returncode == 1
    assert "note_go: checkpoint:" in answer.stderr


def test_a_go_cosignature_verifies_with_our_code(
    signed: tuple[Checkpoint, bytes, SigningKey, SigningKey],
) -> None:
    """transparency-dev's cosignature/v1 signer cosigns our checkpoint; our verifier accepts
    it as the witness's (same key, same name), and the log's signature is kept."""
    _, note, gateway, witness = signed
    public = witness.public_key().ed25519_bytes()
    key_hash = note_key_id(WITNESS, SIGNATURE_ED25519, public).hex()
    skey = f"PRIVATE+KEY+{WITNESS}+{key_hash}+" + base64.b64encode(b"\x01" + WITNESS_SEED).decode()
    plain = note.decode().split("\n\u2014 " + WITNESS)[0] + "\n"
    answer = go(
        {
            "mode": "cosign",
            "note": plain,
            "origin": ORIGIN,
            "log_vkey": Ed25519NoteKey(ORIGIN, gateway.public_key()).vkey(),
            "witness_skey": skey,
        }
    )
    assert answer.returncode == 0, answer.stderr
    from_go = json.loads(answer.stdout)["note"].encode()
    assert from_go != plain.encode()
    cosigner = CosignatureKey(WITNESS, witness.public_key())
    assert checkpoint_cosigners(from_go, witnesses=[cosigner]) == (cosigner,)
