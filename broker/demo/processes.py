"""One daemon as a child process: started with a command line, its output captured to a log
file, ready when its ``/healthz`` answers 200, stopped with SIGTERM (drain) or SIGKILL (crash)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Final

from broker import errors

__all__ = ["DaemonProcess"]

_READY_POLL_S: Final = 0.1


class DaemonProcess:
    """A daemon this process starts and stops; its log is appended to across restarts."""

    def __init__(self, name: str, *, argv: list[str], port: int, log: Path, cwd: Path) -> None:
        self.name, self.argv, self.port, self.log, self.cwd = name, argv, port, log, cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """The live process's id."""
        if self._process is None or not self.running:
            raise errors.UsageError(f"{self.name} is not running")
        return self._process.pid

    def start(self, *, ready_timeout_s: float) -> None:
        """Start the process and wait until it is ready (see :meth:`wait_ready`)."""
        self.spawn()
        self.wait_ready(timeout_s=ready_timeout_s)

    def spawn(self) -> None:
        """Start the process without waiting for it to be ready."""
        if self.running:
            raise errors.UsageError(f"{self.name} is already running (pid {self.pid})")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_handle = self.log.open("ab")
        self._process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=self.cwd,
        )

    def wait_ready(self, *, timeout_s: float) -> None:
        """Poll ``/healthz`` until 200; AvailabilityError if the process exits or time runs out.

        The daemon is another process, so there is no event to await: this polls.
        """
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.port}/healthz"
        while True:
            if not self.running:
                code = None if self._process is None else self._process.returncode
                raise errors.AvailabilityError(
                    f"{self.name} exited (status {code}) before it was ready: {self.last_line()}"
                )
            if _healthy(url):
                return
            if time.monotonic() > deadline:
                raise errors.AvailabilityError(
                    f"{self.name} was not ready within {timeout_s:.0f} s: {self.last_line()}"
                )
            time.sleep(_READY_POLL_S)

    def terminate(self) -> None:
        """Send SIGTERM (the daemon drains); :meth:`wait` collects the status."""
        if self._process is not None and self.running:
            self._process.send_signal(signal.SIGTERM)

    def wait(self, *, timeout_s: float) -> int:
        """Wait for the exit; past ``timeout_s`` kill it and raise AvailabilityError."""
        if self._process is None:
            raise errors.UsageError(f"{self.name} was never started")
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            raise errors.AvailabilityError(
                f"{self.name} did not stop within {timeout_s:.0f} s of SIGTERM; killed"
            ) from None
        finally:
            self._close_log()

    def kill(self) -> None:
        """SIGKILL (a crash, as far as the daemon can tell) and reap."""
        if self._process is not None and self.running:
            self._process.kill()
            self._process.wait()
        self._close_log()

    def close(self) -> None:
        """Close the log of a daemon that exited on its own (nothing waited for it, so nothing
        else closes it); a running daemon's log stays open."""
        if not self.running:
            self._close_log()

    def detach(self) -> int:
        """Leave the live process running past this one (``broker demo --keep``); its pid."""
        pid = self.pid
        assert self._process is not None  # noqa: S101 - pid raised otherwise
        # Mark the handle finished: it must neither warn about a running child when collected
        # nor be waited for; the process is handed over to whoever stops it by pid.
        self._process.returncode = 0
        self._close_log()
        return pid

    def metrics(self) -> dict[str, float]:
        """``/metrics`` as ``{'name{labels}': value}``."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                values[series] = float(value)
        return values

    def last_line(self) -> str:
        """The last line of the captured log, for error messages."""
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback http
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
