"""Private keys at rest: encrypted PKCS#8 files readable by their owner only.

Writing never exposes a key, even briefly: the bytes go to a new temporary file created with
``O_EXCL`` and mode 0600, are flushed to disk, and the file is then hard-linked to its final
name (which must not exist yet) so a half-written key never carries the real name. Reading
refuses a file that the group or others may read or write. Passphrases come from a file or an
environment variable and are never logged or echoed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from broker import crypto, errors

__all__ = [
    "DEFAULT_PASSPHRASE_ENV",
    "MIN_PASSPHRASE_BYTES",
    "load_decryption_key",
    "load_signing_key",
    "read_passphrase",
    "save_private_key",
    "write_public_file",
]

DEFAULT_PASSPHRASE_ENV = "BROKER_KEY_PASSPHRASE"  # noqa: S105  (a variable name, not a secret)
MIN_PASSPHRASE_BYTES = 12
_MAX_KEY_FILE_BYTES = 64 * 1024


def read_passphrase(*, file: Path | None, env: str | None) -> bytes:
    """The passphrase from ``file`` (one trailing newline dropped) or else environment ``env``."""
    if file is not None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise errors.UsageError(f"cannot read passphrase file {file}: {exc.strerror}") from exc
        passphrase = data.removesuffix(b"\n").removesuffix(b"\r")
        if not passphrase:
            raise errors.UsageError(f"passphrase file {file} is empty")
        return passphrase
    if env is not None:
        value = os.environ.get(env, "")
        if not value:
            raise errors.UsageError(f"no passphrase: set {env} or pass --passphrase-file")
        return value.encode("utf-8")
    raise errors.UsageError("no passphrase source: pass --passphrase-file or --passphrase-env")


def save_private_key(
    path: Path, key: crypto.SigningKey | crypto.DecryptionKey, *, passphrase: bytes
) -> None:
    """Write ``key`` encrypted under ``passphrase`` to a new file ``path`` with mode 0600."""
    if len(passphrase) < MIN_PASSPHRASE_BYTES:
        raise errors.UsageError(
            f"a key passphrase must be at least {MIN_PASSPHRASE_BYTES} bytes long"
        )
    if path.exists():
        raise errors.UsageError(f"{path} exists; refusing to overwrite a key file")
    _write_new(path, key.to_pem(passphrase=passphrase), mode=0o600, replace=False)


def write_public_file(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Atomically write a public document (card, registry) with mode 0644."""
    _write_new(path, data, mode=0o644, replace=replace)


def load_signing_key(path: Path, *, passphrase: bytes) -> crypto.SigningKey:
    """Load an encrypted signing key; refuses files others can read, wrong passphrases, garbage."""
    data = _read_private(path)
    try:
        return crypto.SigningKey.from_pem(data, passphrase=passphrase)
    except errors.KeyTrustError as exc:
        raise errors.KeyTrustError(
            f"cannot load signing key {path}: wrong passphrase or not a signing key"
        ) from exc


def load_decryption_key(path: Path, *, passphrase: bytes) -> crypto.DecryptionKey:
    """Load an encrypted decryption key (same refusals as :func:`load_signing_key`)."""
    data = _read_private(path)
    try:
        return crypto.DecryptionKey.from_pem(data, passphrase=passphrase)
    except errors.KeyTrustError as exc:
        raise errors.KeyTrustError(
            f"cannot load decryption key {path}: wrong passphrase or not a decryption key"
        ) from exc


def _read_private(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise errors.UsageError(f"cannot open key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        # Check the file actually opened, not the name, so a swap between check and read fails.
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise errors.KeyTrustError(f"key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise errors.KeyTrustError(
                f"key file {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 600 on it"
            )
        data = handle.read(_MAX_KEY_FILE_BYTES + 1)
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise errors.KeyTrustError(f"key file {path} is too large to be a key")
    return data


def _write_new(path: Path, data: bytes, *, mode: int, replace: bool) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{crypto.random_bytes(6).hex()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise errors.UsageError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # the umask may have removed bits we want
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if path exists: never overwrite a key
    except OSError as exc:
        raise errors.UsageError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
