"""Polling file watcher: notices writes, creation, deletion and directory entry changes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from broker.runtime import FileWatcher, StopSignal, watch


def _touch(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_poll_reports_each_change_once(tmp_path: Path) -> None:
    """A rewritten, deleted or recreated file is reported once per change; no change, nothing."""
    accord = tmp_path / "accord.yaml"
    _touch(accord, "v1", 1_000_000_000)
    watcher = FileWatcher([accord])
    assert watcher.poll() == ()
    _touch(accord, "v2", 2_000_000_000)
    assert watcher.poll() == (accord,)
    assert watcher.poll() == ()
    accord.unlink()
    assert watcher.poll() == (accord,)
    _touch(accord, "v3", 3_000_000_000)
    assert watcher.poll() == (accord,)


def test_a_directory_changes_when_an_entry_does(tmp_path: Path) -> None:
    """Adding or rewriting a file in a watched directory reports the directory."""
    watcher = FileWatcher([tmp_path])
    _touch(tmp_path / "a.yaml", "x", 1_000_000_000)
    assert watcher.poll() == (tmp_path,)
    _touch(tmp_path / "a.yaml", "y", 2_000_000_000)
    assert watcher.poll() == (tmp_path,)
    assert watcher.poll() == ()


async def test_watch_calls_back_and_survives_a_failing_callback(tmp_path: Path) -> None:
    """watch() calls on_change for each change; a raising callback does not end the watch."""
    path = tmp_path / "registry.json"
    _touch(path, "1", 1_000_000_000)
    stop = StopSignal()
    seen: list[tuple[Path, ...]] = []
    second = asyncio.Event()

    def on_change(changed: tuple[Path, ...]) -> None:
        seen.append(changed)
        if len(seen) == 1:
            _touch(path, "2", 2_000_000_000)
            raise ValueError("bad file: keep the last good one")
        second.set()

    task = asyncio.create_task(watch([path], on_change, interval_s=0.01, stop=stop))
    # one turn of the loop: the task takes its first snapshot before its first await
    await asyncio.sleep(0)
    _touch(path, "1b", 1_500_000_000)
    await second.wait()
    stop.set()
    await task
    assert seen == [(path,), (path,)]
