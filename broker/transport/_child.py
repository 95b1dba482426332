"""Child processes on loopback that tests and tools run beside us (the embedded broker, the
loopback S3 server): free ports, readiness polling, and stopping them, in one place."""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, ClassVar, Final

from broker.errors import EmbeddedBrokerError
from broker.transport._state import HOST

__all__ = [
    "ChildHandle",
    "ensure_port_free",
    "free_port",
    "free_ports",
    "kill",
    "last_line",
    "terminate",
    "wait_ready",
]

_PORT_RANGE_FILE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")
# above the well-known and most registered service ports people run on a workstation
_STABLE_PORT_FLOOR: Final = 20000
_STABLE_PORT_TRIES: Final = 200


def free_port(*, outside_ephemeral: bool = False) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice).

    With ``outside_ephemeral``, a free port below the kernel's ephemeral range instead: use
    it for a broker that will be bounced. While a broker on an ephemeral port is down, a
    client reconnecting to it may be given that very port as its own source port and connect
    to itself (TCP simultaneous open), which holds the port and makes the restart fail.
    """
    (port,) = free_ports(1, outside_ephemeral=outside_ephemeral)
    return port


def free_ports(count: int, *, outside_ephemeral: bool = False) -> list[int]:
    """``count`` distinct free ports, as :func:`free_port` chooses them.

    Every port stays bound until all are chosen: choosing them one by one may hand out the
    same port twice, and two listeners of one cluster on one port kill a node at start.
    """
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            ports.append(_bind_stable(sock) if outside_ephemeral else _bind_any(sock))
        return ports


def _bind_any(sock: socket.socket) -> int:
    sock.bind((HOST, 0))
    port: int = sock.getsockname()[1]
    return port


def _bind_stable(sock: socket.socket) -> int:
    low = _ephemeral_low()
    candidates = list(range(_STABLE_PORT_FLOOR, low))
    random.SystemRandom().shuffle(candidates)
    for candidate in candidates[:_STABLE_PORT_TRIES]:
        try:
            sock.bind((HOST, candidate))
        except OSError:
            continue
        return candidate
    raise EmbeddedBrokerError(
        f"no free port on {HOST} between {_STABLE_PORT_FLOOR} and {low} "
        f"(below the ephemeral range) after {_STABLE_PORT_TRIES} tries"
    )


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux), else the IANA one's."""
    try:
        low = int(_PORT_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152
    return max(low, _STABLE_PORT_FLOOR + 1)


def ensure_port_free(port: int) -> None:
    """Raise :class:`EmbeddedBrokerError` if ``port`` on 127.0.0.1 cannot be bound.

    Tansu panics when its port is taken, so we check first and say so in one line.
    """
    if not 0 < port < 65536:
        raise EmbeddedBrokerError(f"port {port} is not a valid TCP port (1-65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # the broker sets SO_REUSEADDR too, so a port in TIME_WAIT is usable for both of us
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise EmbeddedBrokerError(
                f"port {port} on {HOST} is already in use ({exc.strerror}); "
                f"choose another with --port, or --port 0 for a free one"
            ) from exc


def wait_ready(
    process: subprocess.Popen[bytes],
    answers: Callable[[], bool],
    *,
    what: str,
    where: str,
    log: IO[bytes] | None,
    timeout_s: float,
    interval_s: float,
) -> None:
    """Poll ``answers()`` until true; raise if ``process`` exits first (with the last line of
    its ``log``) or ``timeout_s`` passes. It is another process: polling is the only way to
    see it listen."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            output = last_line(log) if log is not None else ""
            raise EmbeddedBrokerError(
                f"{what} exited with status {process.returncode} "
                f"while starting: {output or 'no output'}"
            )
        if answers():
            return
        if time.monotonic() >= deadline:
            raise EmbeddedBrokerError(f"{what} did not answer on {where} within {timeout_s:g} s")
        time.sleep(interval_s)


def last_line(log: IO[bytes]) -> str:
    """The last non-empty line a child wrote to ``log`` (a file opened for reading too)."""
    with contextlib.suppress(OSError):
        log.flush()
        log.seek(0)
        lines = [line.strip() for line in log.read()[-4096:].decode(errors="replace").splitlines()]
        return next((line for line in reversed(lines) if line), "")
    return ""


def terminate(process: subprocess.Popen[bytes], *, timeout_s: float, what: str) -> None:
    """SIGTERM ``process`` and wait for it; SIGKILL after ``timeout_s``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill(process, timeout_s=timeout_s, what=what)


def kill(process: subprocess.Popen[bytes], *, timeout_s: float, what: str) -> None:
    """SIGKILL ``process`` (a crash: nothing flushed) and wait for it to exit."""
    if process.poll() is not None:
        return
    process.kill()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise EmbeddedBrokerError(f"{what} (pid {process.pid}) did not exit") from exc


class ChildHandle:
    """What the owner of a loopback child process knows of it: its port and process id once
    started (the port is kept after a stop, so a restart can reuse it)."""

    #: how errors name the child ("the embedded broker", ...)
    what: ClassVar[str] = "the child process"

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        if self._port is None:
            raise EmbeddedBrokerError(f"{self.what} has not been started")
        return self._port

    @property
    def pid(self) -> int:
        """Its process id (known once started)."""
        if self._process is None:
            raise EmbeddedBrokerError(f"{self.what} has not been started")
        return self._process.pid

    def is_running(self) -> bool:
        """Whether the process is still alive."""
        return self._process is not None and self._process.poll() is None
