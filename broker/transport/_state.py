"""The record of a running embedded broker in the state directory, and its process's life.

``kafka.json`` holds the pid and port and ``kafka.pid`` the bare pid, for tools that expect
one. A recorded pid is trusted only while ``/proc`` shows it is the broker listening on the
recorded port: pids are reused, and we never signal another program.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, ValidationError

from broker.errors import EmbeddedBrokerError

__all__ = [
    "HOST",
    "BrokerState",
    "is_alive",
    "is_our_broker",
    "read_state",
    "remove_state",
    "send_signal",
    "wait_gone",
    "write_state",
]

#: the only interface the embedded broker listens on: it has no TLS and no authentication
HOST: Final = "127.0.0.1"
_PID_FILE: Final = "kafka.pid"
_STATE_FILE: Final = "kafka.json"


class BrokerState(BaseModel):
    """What the state directory records about a running embedded broker."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    pid: int
    port: int

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` address clients bootstrap from."""
        return f"{HOST}:{self.port}"


def read_state(state_dir: Path) -> BrokerState | None:
    """The recorded broker in ``state_dir``, or ``None`` if none is recorded there."""
    path = state_dir / _STATE_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EmbeddedBrokerError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return BrokerState.model_validate_json(raw)
    except ValidationError as exc:
        raise EmbeddedBrokerError(
            f"{path} is not a valid broker state file; remove it if no broker is running"
        ) from exc


def write_state(state_dir: Path, state: BrokerState) -> None:
    """Record ``state`` in ``state_dir``, atomically for each file."""
    # write-then-rename so a concurrent `broker kafka down` never reads half a file
    try:
        for name, text in ((_STATE_FILE, state.model_dump_json()), (_PID_FILE, f"{state.pid}\n")):
            partial = state_dir / f".{name}.partial"
            partial.write_text(text, encoding="utf-8")
            partial.replace(state_dir / name)
    except OSError as exc:
        raise EmbeddedBrokerError(
            f"cannot record the broker in {state_dir}: {exc.strerror}"
        ) from exc


def remove_state(state_dir: Path) -> None:
    """Forget the recorded broker (its process must have exited)."""
    try:
        for name in (_STATE_FILE, _PID_FILE):
            (state_dir / name).unlink(missing_ok=True)
    except OSError as exc:
        raise EmbeddedBrokerError(
            f"cannot clear the broker record in {state_dir}: {exc.strerror}"
        ) from exc


def is_our_broker(state: BrokerState) -> bool:
    """Whether ``state.pid`` is alive and is the broker listening on ``state.port``.

    Pids are reused; we never signal a process whose command line is not our broker's.
    """
    if not is_alive(state.pid):
        return False
    try:
        argv = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no procfs: trust the record
    except OSError:
        return False
    expected = f"tcp://{HOST}:{state.port}".encode()
    return any(
        flag == b"--listener-url" and value == expected for flag, value in itertools.pairwise(argv)
    )


def is_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie has exited; it only waits for a parent that is not us to reap it
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def send_signal(pid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to ``pid``; a process that has already gone is not an error."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def wait_gone(pid: int, *, timeout_s: float) -> bool:
    """Whether ``pid`` exited within ``timeout_s``."""
    # not our child, so there is nothing to wait() on: poll until it has exited
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True
