"""`broker seal`, `broker open`, `broker envelope inspect`, over a real signed registry.

Also shows that ``broker.keys.Registry`` satisfies :class:`broker.envelope.KeyRegistry`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker import envelope, keys
from broker.cli import cli
from broker.ids import AccordId, PartnerCode
from broker.keys.testing import make_registry

from .conftest import SAMPLE_LABELS, sample_bytes

PASSPHRASE = "a long enough passphrase"
GB, RS, MK = PartnerCode("GB"), PartnerCode("RS"), PartnerCode("MK")


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A registry file, GB's signing key, RS's and MK's decryption keys, and a message file.

    The CLI reads the wall clock, so the registry is made valid around the real time.
    """
    now = dt.datetime.now(dt.UTC)
    _, data, private = make_registry(now=now, partners=["GB", "RS", "MK"])
    (tmp_path / "registry.json").write_bytes(data)
    (tmp_path / "passphrase").write_text(PASSPHRASE)
    secret = PASSPHRASE.encode()
    keys.save_private_key(tmp_path / "gb-signing.pem", private[GB].signing, passphrase=secret)
    for code in (RS, MK):
        path = tmp_path / f"{code.lower()}-encryption.pem"
        keys.save_private_key(path, private[code].decryption, passphrase=secret)
    (tmp_path / "message.json").write_bytes(sample_bytes())
    return tmp_path


def _run(directory: Path, *arguments: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(arguments), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _seal(directory: Path) -> Path:
    out = directory / "envelope.bin"
    code, _, stderr = _run(
        directory,
        "seal", str(directory / "message.json"),
        "--from", "GB", "--to", "RS",
        "--key", str(directory / "gb-signing.pem"),
        "--registry", str(directory / "registry.json"),
        "--accord-id", "gb-rs", "--accord-digest", "ab" * 32,
        "--out", str(out),
        "--passphrase-file", str(directory / "passphrase"),
    )  # fmt: skip
    assert code == 0, stderr
    return out


def test_seal_then_open_gives_the_message_back(world: Path) -> None:
    """The recipient's open prints the validated message; stderr names the checked header."""
    sealed = _seal(world)
    code, stdout, stderr = _run(
        world,
        "open", str(sealed), "--as", "RS",
        "--key", str(world / "rs-encryption.pem"),
        "--registry", str(world / "registry.json"),
        "--passphrase-file", str(world / "passphrase"),
    )  # fmt: skip
    assert code == 0, stderr
    assert json.loads(stdout)["body"]["operation_name"] == "KESTREL"
    assert "verified" in stderr
    assert "GB->RS" in stderr


def test_open_by_another_partner_fails_with_the_envelope_exit_code(world: Path) -> None:
    """MK cannot open RS's envelope: one error line, exit code of EnvelopeError, no output."""
    sealed = _seal(world)
    code, stdout, stderr = _run(
        world,
        "open", str(sealed), "--as", "MK",
        "--key", str(world / "mk-encryption.pem"),
        "--registry", str(world / "registry.json"),
        "--passphrase-file", str(world / "passphrase"),
    )  # fmt: skip
    assert code == 5
    assert stdout == ""
    assert stderr.startswith("error: envelope is addressed to RS, not MK")


def test_inspect_marks_what_it_did_not_verify(world: Path) -> None:
    """Without a registry the header is printed as UNVERIFIED; with one, as verified."""
    sealed = _seal(world)
    code, stdout, _ = _run(world, "envelope", "inspect", str(sealed))
    assert code == 0
    shown = json.loads(stdout)
    assert shown["status"] == "UNVERIFIED"
    assert shown["header"]["recipient"] == "RS"
    registry = str(world / "registry.json")
    code, stdout, _ = _run(world, "envelope", "inspect", str(sealed), "--registry", registry)
    assert code == 0
    assert json.loads(stdout)["status"] == "verified"


def test_inspect_of_garbage_is_one_error_line(world: Path) -> None:
    """A file that is not an envelope gives exit code 5 and one line, not a traceback."""
    (world / "garbage.bin").write_bytes(b"not an envelope")
    code, _, stderr = _run(world, "envelope", "inspect", str(world / "garbage.bin"))
    assert code == 5
    assert stderr == "error: not an envelope (bad magic)\n"


def test_the_real_registry_serves_envelopes() -> None:
    """broker.keys.Registry satisfies the KeyRegistry protocol: seal, verify and open with it."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    registry, _, private = make_registry(now=now, partners=["GB", "RS"])
    key_id, recipient_key = registry.current_encryption_key(RS, at=now)
    sealed = envelope.seal(
        sample_bytes(),
        labels=SAMPLE_LABELS,
        sender=GB,
        sender_key=private[GB].signing,
        recipient=RS,
        recipient_key_id=key_id,
        recipient_key=recipient_key,
        accord_id=AccordId("gb-rs"),
        accord_digest=b"\xab" * 32,
        now=now,
        ttl=dt.timedelta(days=1),
    )
    opened = envelope.open(
        sealed,
        registry=registry,
        recipient=RS,
        decryption_keys={private[RS].encryption_key_id: private[RS].decryption},
        now=now,
    )
    assert opened.header.sender_key_id == private[GB].signing_key_id
