"""A daemon's child process: its log is closed however the process ends."""

from __future__ import annotations

import contextlib
import gc
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from broker.demo.processes import DaemonProcess


def _short_lived(tmp_path: Path) -> DaemonProcess:
    argv = [sys.executable, "-c", "print('started and gone')"]
    return DaemonProcess("short", argv=argv, port=1, log=tmp_path / "short.log", cwd=tmp_path)


@contextlib.contextmanager
def _unclosed() -> Iterator[list[str]]:
    """What the garbage collector finds left open by the end of the block."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
        gc.collect()
    found.extend(str(w.message) for w in caught if issubclass(w.category, ResourceWarning))


def test_a_daemon_that_exited_on_its_own_has_its_log_closed_by_close(tmp_path: Path) -> None:
    daemon = _short_lived(tmp_path)
    daemon.spawn()
    while daemon.running:
        time.sleep(0.01)
    daemon.close()
    with _unclosed() as unclosed:
        del daemon
    assert unclosed == []
    assert (tmp_path / "short.log").read_text() == "started and gone\n"


def test_without_close_the_log_of_an_exited_daemon_is_left_open(tmp_path: Path) -> None:
    # the case close exists for: nothing else closes it, and the collector warns about it
    daemon = _short_lived(tmp_path)
    daemon.spawn()
    while daemon.running:
        time.sleep(0.01)
    with _unclosed() as unclosed:
        del daemon
    assert any("short.log" in w for w in unclosed)


def test_close_leaves_a_running_daemon_running_and_kill_closes_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"]
    daemon = DaemonProcess("long", argv=argv, port=1, log=tmp_path / "long.log", cwd=tmp_path)
    daemon.spawn()
    try:
        daemon.close()
        assert daemon.running
    finally:
        daemon.kill()
    with _unclosed() as unclosed:
        del daemon
    assert unclosed == []
