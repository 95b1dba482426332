"""One daemon per state directory: a second one on the same stores would share the journal,
the inbox and the trust memory with the first, and join its consumer group as if it were
another instance.

The lock is ``flock`` on ``<state dir>/daemon.lock``, held for the life of the process: the
kernel drops it when the process ends however it ends (a SIGKILL too), so a crash never leaves
a stale lock behind. The file holds the holder's pid, for the refusal to name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from broker import errors

__all__ = ["LOCK_NAME", "state_lock"]

LOCK_NAME = "daemon.lock"


@contextlib.contextmanager
def state_lock(directory: Path, *, daemon: str) -> Iterator[None]:
    """Hold ``directory``'s lock for the block; raise :class:`errors.UsageError` naming the
    running holder when another process has it."""
    path = directory / LOCK_NAME
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise errors.UsageError(f"{path}: cannot open the state lock: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise errors.UsageError(
                f"{directory}: another {daemon} (pid {holder}) is running on this state "
                "directory; stop it first, or give this one a store of its own"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
