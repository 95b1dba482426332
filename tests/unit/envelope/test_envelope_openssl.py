"""docs/PROTOCOL.md's OpenSSL recipe really verifies envelopes made by seal().

The shell block is read from the document itself, so the page and the code cannot drift.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from broker import envelope, errors
from broker.envelope._format import decode_frame

from .conftest import Party, seal_from, unsigned_from

PROTOCOL = Path(__file__).parents[3] / "docs" / "PROTOCOL.md"
_BLOCK = re.compile(r"<!-- openssl-recipe:[^>]*-->\n```sh\n(.*?)```", re.DOTALL)


def _recipe() -> str:
    match = _BLOCK.search(PROTOCOL.read_text())
    assert match is not None, "the marked OpenSSL recipe is missing from docs/PROTOCOL.md"
    return match.group(1)


def _run_recipe(
    directory: Path, envelope: bytes, sender_key: bytes
) -> subprocess.CompletedProcess[str]:
    (directory / "envelope.bin").write_bytes(envelope)
    (directory / "sender.key").write_bytes(sender_key)
    shell = shutil.which("sh")
    assert shell is not None
    return subprocess.run(
        [shell, "-c", _recipe()], cwd=directory, capture_output=True, text=True, check=False
    )


def test_openssl_verifies_a_sealed_envelope(tmp_path: Path, gb: Party, rs: Party) -> None:
    """The documented commands accept the sender's signature on a fresh envelope."""
    result = _run_recipe(tmp_path, seal_from(gb, rs), gb.signing.public_key().to_bytes())
    assert result.returncode == 0, result.stderr
    assert "Signature Verified Successfully" in result.stdout


@pytest.mark.parametrize("part", ["header", "ciphertext"])
def test_openssl_refuses_a_tampered_envelope(
    tmp_path: Path, gb: Party, rs: Party, part: str
) -> None:
    """One changed byte in the header or the ciphertext makes the OpenSSL check fail."""
    sealed = bytearray(seal_from(gb, rs))
    frame = decode_frame(bytes(sealed))
    offset = 9 + len(frame.header) // 2 if part == "header" else 13 + len(frame.header) + 40
    sealed[offset] ^= 0x01
    result = _run_recipe(tmp_path, bytes(sealed), gb.signing.public_key().to_bytes())
    assert result.returncode != 0


def test_openssl_refuses_another_partners_key(
    tmp_path: Path, gb: Party, rs: Party, mk: Party
) -> None:
    """The recipe checks against the key it is given: MK's key does not verify GB's envelope."""
    result = _run_recipe(tmp_path, seal_from(gb, rs), mk.signing.public_key().to_bytes())
    assert result.returncode != 0


@pytest.mark.parametrize("size", [2, 5, 8])
def test_openssl_verifies_every_envelope_of_a_batch(
    tmp_path: Path, gb: Party, rs: Party, size: int
) -> None:
    """The recipe walks each batch envelope's own path up to the head and checks the one
    signature over it."""
    batch = envelope.sign_all([unsigned_from(gb, rs) for _ in range(size)])
    for index, sealed in enumerate(batch):
        assert sealed[4] == 2
        result = _run_recipe(tmp_path, sealed, gb.signing.public_key().to_bytes())
        assert result.returncode == 0, (index, result.stderr)


@pytest.mark.parametrize("where", ["index", "path", "size"])
def test_openssl_refuses_a_batch_envelope_moved_in_its_batch(
    tmp_path: Path, gb: Party, rs: Party, where: str
) -> None:
    batch = envelope.sign_all([unsigned_from(gb, rs) for _ in range(5)])
    sealed = bytearray(batch[2])
    frame = decode_frame(bytes(sealed))
    proof_at = 15 + len(frame.header) + len(frame.ciphertext) + len(frame.signature)
    offset = {"size": proof_at + 3, "index": proof_at + 7, "path": proof_at + 9}[where]
    sealed[offset] ^= 0x01
    result = _run_recipe(tmp_path, bytes(sealed), gb.signing.public_key().to_bytes())
    assert result.returncode != 0


def _bent(sealed: bytes, what: str) -> bytes:
    """A batch envelope changed where the implementation refuses it outright."""
    frame = decode_frame(sealed)
    proof_at = 15 + len(frame.header) + len(frame.ciphertext) + len(frame.signature)
    changed = bytearray(sealed)
    if what == "index past the size":  # a 2-leaf batch: index 3 walks as index 1 would
        changed[proof_at + 7] = 3
    elif what == "a byte after the path":
        changed += b"\x00"
    elif what == "framing version 3":
        changed[4] = 3
    return bytes(changed)


@pytest.mark.parametrize(
    "what", ["index past the size", "a byte after the path", "framing version 3"]
)
def test_openssl_refuses_what_the_implementation_refuses(
    tmp_path: Path, gb: Party, rs: Party, what: str
) -> None:
    """The recipe is no laxer than verify(): what the decoder refuses, it refuses too."""
    batch = envelope.sign_all([unsigned_from(gb, rs) for _ in range(2)])
    bent = _bent(batch[1], what)
    with pytest.raises(errors.EnvelopeError):
        decode_frame(bent)
    result = _run_recipe(tmp_path, bent, gb.signing.public_key().to_bytes())
    assert result.returncode != 0


def test_openssl_refuses_a_byte_after_a_single_signature(
    tmp_path: Path, gb: Party, rs: Party
) -> None:
    result = _run_recipe(tmp_path, seal_from(gb, rs) + b"\x00", gb.signing.public_key().to_bytes())
    assert result.returncode != 0
