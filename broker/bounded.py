"""Reading a file whose size nobody checked: at most ``limit`` bytes, or a clear error.

Every file the daemons and tools read (configuration, registry, accords, signatures, acts,
keys) may have been put there by someone else; reading one byte past its limit tells an
oversized file apart without reading it all. Only a regular file is read: a FIFO, a device
or a socket under the name would block the reader for ever (a daemon's reload loop) or never
end, so it is opened without blocking and refused before any read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from broker import errors

__all__ = ["read_bounded"]


def read_bounded(
    path: Path,
    *,
    limit: int,
    what: str,
    too_large: type[errors.BrokerError] = errors.UsageError,
    unreadable: type[errors.BrokerError] = errors.UsageError,
) -> bytes:
    """The bytes of ``path``; ``unreadable`` if it cannot be read, ``too_large`` past ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise unreadable(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise unreadable(f"{path}: cannot read {what}: not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise unreadable(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > limit:
        raise too_large(f"{path}: {what} is larger than {limit} bytes")
    return data
