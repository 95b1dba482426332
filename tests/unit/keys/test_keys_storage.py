"""Private keys at rest: encrypted, mode 0600 from the first byte, refused when exposed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from broker import crypto, errors, keys

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(params=list(crypto.Suite), ids=str)
def suite(request: pytest.FixtureRequest) -> crypto.Suite:
    return crypto.Suite(request.param)


def test_signing_key_round_trips_through_an_encrypted_0600_file(
    tmp_path: Path, suite: crypto.Suite
) -> None:
    """The file is owner-only, holds no passphrase, and loads back to the same key."""
    key = crypto.SigningKey.generate(suite)
    path = tmp_path / "signing.pem"
    keys.save_private_key(path, key, passphrase=PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in data
    assert PASSPHRASE not in data
    loaded = keys.load_signing_key(path, passphrase=PASSPHRASE)
    loaded.public_key().verify(signature=loaded.sign(b"m"), message=b"m")
    assert loaded.public_key().key_id == key.public_key().key_id


def test_decryption_key_round_trips(tmp_path: Path, suite: crypto.Suite) -> None:
    """A KEM private key loads back with the same public key id."""
    key = crypto.DecryptionKey.generate(suite)
    path = tmp_path / "encryption.pem"
    keys.save_private_key(path, key, passphrase=PASSPHRASE)
    loaded = keys.load_decryption_key(path, passphrase=PASSPHRASE)
    assert loaded.public_key().key_id == key.public_key().key_id


def test_the_file_is_owner_only_even_under_a_permissive_umask(tmp_path: Path) -> None:
    """A umask of 000 does not widen the mode: the file is created 0600, never chmod-ed later."""
    previous = os.umask(0)
    try:
        keys.save_private_key(
            tmp_path / "k.pem",
            crypto.SigningKey.generate(crypto.Suite.CLASSIC),
            passphrase=PASSPHRASE,
        )
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]  # no temporary left behind


def test_a_wrong_passphrase_fails_cleanly(tmp_path: Path) -> None:
    """A wrong passphrase is a KeyTrustError naming the file, not a crypto traceback."""
    path = tmp_path / "k.pem"
    keys.save_private_key(
        path, crypto.SigningKey.generate(crypto.Suite.CLASSIC), passphrase=PASSPHRASE
    )
    with pytest.raises(
        errors.KeyTrustError, match=r"cannot load signing key .*k\.pem: wrong passphrase"
    ):
        keys.load_signing_key(path, passphrase=b"not the passphrase")


def test_a_signing_key_file_is_not_loaded_as_a_decryption_key(tmp_path: Path) -> None:
    """Loading a key of the other kind fails with the same clean error."""
    path = tmp_path / "k.pem"
    keys.save_private_key(
        path, crypto.SigningKey.generate(crypto.Suite.CLASSIC), passphrase=PASSPHRASE
    )
    with pytest.raises(errors.KeyTrustError, match="not a decryption key"):
        keys.load_decryption_key(path, passphrase=PASSPHRASE)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_key_file_others_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    """Any group or other permission bit makes the loader refuse, telling how to fix it."""
    path = tmp_path / "k.pem"
    keys.save_private_key(
        path, crypto.SigningKey.generate(crypto.Suite.CLASSIC), passphrase=PASSPHRASE
    )
    path.chmod(mode)
    with pytest.raises(errors.KeyTrustError, match=f"mode {mode:04o}.*chmod 600"):
        keys.load_signing_key(path, passphrase=PASSPHRASE)


def test_garbage_and_missing_files_fail_cleanly(tmp_path: Path) -> None:
    """Not-a-key bytes and absent files give our errors."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN NOTHING-----\n")
    garbage.chmod(0o600)
    with pytest.raises(errors.KeyTrustError, match="cannot load signing key"):
        keys.load_signing_key(garbage, passphrase=PASSPHRASE)
    with pytest.raises(errors.UsageError, match="cannot open key file"):
        keys.load_signing_key(tmp_path / "absent.pem", passphrase=PASSPHRASE)


def test_existing_key_files_are_never_overwritten(tmp_path: Path) -> None:
    """Saving over an existing file is refused and leaves it intact."""
    path = tmp_path / "k.pem"
    keys.save_private_key(
        path, crypto.SigningKey.generate(crypto.Suite.CLASSIC), passphrase=PASSPHRASE
    )
    before = path.read_bytes()
    with pytest.raises(errors.UsageError, match="refusing to overwrite"):
        keys.save_private_key(
            path, crypto.SigningKey.generate(crypto.Suite.CLASSIC), passphrase=PASSPHRASE
        )
    assert path.read_bytes() == before


def test_short_passphrases_are_refused_when_writing(tmp_path: Path) -> None:
    """A key is never stored under a passphrase shorter than the minimum."""
    with pytest.raises(errors.UsageError, match="at least 12 bytes"):
        keys.save_private_key(
            tmp_path / "k.pem",
            crypto.SigningKey.generate(crypto.Suite.CLASSIC),
            passphrase=b"short",
        )
    assert not (tmp_path / "k.pem").exists()


# -- passphrase sources -----------------------------------------------------------------------


def test_passphrase_from_a_file_drops_one_trailing_newline(tmp_path: Path) -> None:
    """Editors add a newline; it is not part of the passphrase (inner whitespace is)."""
    path = tmp_path / "pass"
    path.write_bytes(b"  two words \n")
    assert keys.read_passphrase(file=path, env="UNUSED_VARIABLE") == b"  two words "


def test_the_file_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit --passphrase-file is used even when the variable is also set."""
    path = tmp_path / "pass"
    path.write_bytes(b"from the file")
    monkeypatch.setenv("BROKER_TEST_PASSPHRASE", "from the environment")
    assert keys.read_passphrase(file=path, env="BROKER_TEST_PASSPHRASE") == b"from the file"


def test_passphrase_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variable's value, UTF-8 encoded."""
    monkeypatch.setenv("BROKER_TEST_PASSPHRASE", "čuvaj tajnu")
    assert keys.read_passphrase(file=None, env="BROKER_TEST_PASSPHRASE") == "čuvaj tajnu".encode()


PASSPHRASE_FAILURES = {
    "variable unset": (None, "BROKER_TEST_UNSET", "set BROKER_TEST_UNSET"),
    "no source at all": (None, None, "no passphrase source"),
    "missing file": ("absent", None, "cannot read passphrase file"),
    "empty file": ("empty", None, "is empty"),
}


@pytest.mark.parametrize(
    ("file", "env", "reason"), PASSPHRASE_FAILURES.values(), ids=PASSPHRASE_FAILURES.keys()
)
def test_missing_passphrases_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str | None, env: str | None, reason: str
) -> None:
    """No passphrase means a clear UsageError, never an empty key password."""
    monkeypatch.delenv("BROKER_TEST_UNSET", raising=False)
    (tmp_path / "empty").write_bytes(b"\n")
    path = tmp_path / file if file else None
    with pytest.raises(errors.UsageError, match=reason):
        keys.read_passphrase(file=path, env=env)
