"""Reading a file whose size nobody checked: at most ``limit`` bytes, or a clear error.

Every file the daemons and tools read (configuration, registry, accords, signatures, acts,
keys) may have been put there by someone else; reading one byte past its limit tells an
oversized file apart without reading it all.
"""

from __future__ import annotations

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
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise unreadable(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise too_large(f"{path}: {what} is larger than {limit} bytes")
    return data
