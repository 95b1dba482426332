"""Notice changed files by polling their modification times, to reload accords and registry.

Polling is deliberate: it works the same on every filesystem (including bind mounts and
ConfigMap symlink swaps, where inotify misses the change) and costs one ``stat`` per file per
interval. A directory is watched as the set of its entries, so adding, removing or rewriting
a file in it counts as a change of the directory.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import structlog

from broker.runtime._lifecycle import StopSignal

__all__ = ["FileWatcher", "OnChange", "watch"]

OnChange = Callable[[tuple[Path, ...]], Awaitable[None] | None]
"""Called with the watched paths that changed; may be a plain function or a coroutine."""

_Stamp = tuple[object, ...] | None
_log = structlog.get_logger("broker.runtime.watch")


def _stamp(path: Path) -> _Stamp:
    try:
        stat = path.stat()  # follows symlinks: a swapped target is a change
    except OSError:
        return None  # missing is a state too: its return is a change
    if path.is_dir():
        try:
            entries = sorted(os.scandir(path), key=lambda entry: entry.name)
            return tuple(
                (entry.name, _stamp(Path(entry.path)) if not entry.is_dir() else None)
                for entry in entries
            )
        except OSError:
            return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_ctime_ns)


class FileWatcher:
    """Remembers what ``paths`` looked like; :meth:`poll` says which changed since."""

    def __init__(self, paths: Iterable[Path | str]) -> None:
        self.paths = tuple(Path(path) for path in paths)
        self._stamps = {path: _stamp(path) for path in self.paths}

    def poll(self) -> tuple[Path, ...]:
        """The paths whose state changed since the last poll (or construction)."""
        changed: list[Path] = []
        for path in self.paths:
            now = _stamp(path)
            if now != self._stamps[path]:
                self._stamps[path] = now
                changed.append(path)
        return tuple(changed)


async def watch(
    paths: Iterable[Path | str],
    on_change: OnChange,
    *,
    interval_s: float,
    stop: StopSignal,
) -> None:
    """Call ``on_change(changed)`` whenever some of ``paths`` change, until ``stop``.

    An exception from ``on_change`` is logged and the watch goes on: a bad file must leave
    the last good configuration in force, not end the reloads.
    """
    if not interval_s > 0:
        raise ValueError("interval_s must be positive")
    watcher = FileWatcher(paths)
    while not await stop.sleep(interval_s):
        changed = watcher.poll()
        if not changed:
            continue
        _log.info("files_changed", paths=[str(path) for path in changed])
        try:
            result = on_change(changed)
            if inspect.isawaitable(result):
                await result
        except Exception:  # noqa: BLE001 - a bad file must not end the reloads
            _log.exception("reload_failed", paths=[str(path) for path in changed])
