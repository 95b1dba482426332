"""Replace a small state file so that a crash leaves either the old or the new one, whole.

The one recipe for every state file a daemon rewrites (its trust memory, a witness's view of
the log, the checkpointer's position): write a temporary file beside it, fsync it, rename it
over the old one, then fsync the directory, because the rename is durable only once the
directory entry is.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["replace_durably"]


def replace_durably(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Make ``path`` hold exactly ``data`` (created ``mode``, parent directories 0700 if
    missing), atomically and durably. Raises OSError."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have removed bits asked for
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(staged, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
