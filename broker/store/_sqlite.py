"""What every store shares: opening one SQLite file safely, transactions, and time as integers.

Each store holds one connection in autocommit mode and opens every transaction explicitly
with ``BEGIN IMMEDIATE``, so a write lock is taken up front and nothing is ever committed
implicitly. WAL with ``synchronous=FULL`` makes a committed transaction survive power loss;
``secure_delete`` overwrites deleted content, which crypto-shredding relies on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import structlog

from broker import errors

__all__ = ["from_micros", "open_database", "to_micros", "transaction"]

_log = structlog.get_logger(__name__)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_micros(when: dt.datetime, *, name: str = "time") -> int:
    """``when`` as integer microseconds since the Unix epoch; naive times are refused."""
    if when.tzinfo is None:
        raise errors.UsageError(f"{name} must be a timezone-aware datetime")
    return (when - _EPOCH) // dt.timedelta(microseconds=1)


def from_micros(value: int) -> dt.datetime:
    """The UTC datetime ``value`` microseconds after the Unix epoch."""
    return _EPOCH + dt.timedelta(microseconds=value)


def open_database(
    path: str | os.PathLike[str],
    *,
    schema: Sequence[str],
    version: int,
    kind: str,
    migrations: Mapping[int, Sequence[str]] | None = None,
) -> sqlite3.Connection:
    """Open (creating mode 0600 if absent) the store at ``path`` and bring it to ``version``.

    ``schema`` creates the current version from nothing; ``migrations[n]`` takes a store of
    version ``n`` to ``n + 1``, all steps in one transaction. Raises :class:`errors.UsageError`
    if the file is not a database of this kind and of a version this program reads.
    """
    file = Path(path)
    if not file.parent.is_dir():
        raise errors.UsageError(f"{file}: directory {file.parent} does not exist")
    try:
        # Create the file ourselves so it is never, even briefly, readable by others;
        # SQLite gives its -wal and -shm files the same mode.
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
                _log.warning("store_permissions_tightened", path=str(file))
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        conn = sqlite3.connect(file, isolation_level=None, timeout=5.0)
    except OSError as exc:
        raise errors.UsageError(f"{file}: cannot open {kind}: {exc.strerror}") from exc
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise errors.UsageError(f"{file}: {kind} cannot use write-ahead logging")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA secure_delete=ON")
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found == 0:
            with transaction(conn, what=f"initialise {kind}"):
                # another process (a daemon starting, a command beside it) may have made it
                # since: read again under the lock, and make it only once
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    for statement in schema:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {int(version)}")
        elif found < version and all(n in (migrations or {}) for n in range(found, version)):
            with transaction(conn, what=f"upgrade {kind}"):
                # another process may have upgraded it since: read again under the lock
                found = conn.execute("PRAGMA user_version").fetchone()[0]
                for step in range(found, version):
                    for statement in (migrations or {})[step]:
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(version)}")
        elif found != version:
            raise errors.UsageError(f"{file}: {kind} version {found}, this program reads {version}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise errors.UsageError(f"{file}: not a {kind}: {exc}") from exc
    except errors.BrokerError:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, what: str) -> Iterator[sqlite3.Connection]:
    """One explicit write transaction: committed on success, rolled back on any exception.

    SQLite failures inside become :class:`errors.AvailabilityError` (disk full, locked:
    retrying later may succeed); our own errors pass through unchanged.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise errors.AvailabilityError(f"store: cannot begin to {what}: {exc}") from exc
    try:
        yield conn
    except sqlite3.Error as exc:
        _rollback(conn)
        raise errors.AvailabilityError(f"store: cannot {what}: {exc}") from exc
    except BaseException:
        _rollback(conn)
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(conn)
        raise errors.AvailabilityError(f"store: cannot commit ({what}): {exc}") from exc


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back on its own (disk full, I/O error).
    if conn.in_transaction:
        conn.execute("ROLLBACK")
