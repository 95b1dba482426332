"""One daemon per state directory: a second ``adapter run`` or ``gateway run`` on the same
stores refuses to start, with one ``error:`` line naming the holder, before it reads or
writes anything there; the lock goes with the process that held it."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import subprocess
import sys

import pytest

from broker import errors
from broker.demo.federation import current_accords, provision
from broker.runtime import state_lock
from broker.runtime.statelock import LOCK_NAME


def test_a_second_holder_is_refused_and_named(tmp_path: pathlib.Path) -> None:
    """While held, the lock refuses another holder (naming the pid); once released, it is
    free again."""
    with state_lock(tmp_path, daemon="adapter"):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with (
            pytest.raises(errors.UsageError, match=rf"another adapter \(pid {os.getpid()}\)"),
            state_lock(tmp_path, daemon="adapter"),
        ):
            pass
    with state_lock(tmp_path, daemon="adapter"):
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: pathlib.Path) -> None:
    """A holder that dies without cleaning up (SIGKILL) releases the lock with its process."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import pathlib, sys, time\n"
         "from broker.runtime import state_lock\n"
         f"with state_lock(pathlib.Path({str(tmp_path)!r}), daemon='gateway'):\n"
         "    print('held', flush=True); time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with (
            pytest.raises(errors.UsageError, match="another gateway"),
            state_lock(tmp_path, daemon="gateway"),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    with state_lock(tmp_path, daemon="gateway"):
        pass


@pytest.mark.slow
@pytest.mark.parametrize(("daemon", "name"), [("adapter", "GB"), ("gateway", "gateway")])
def test_a_second_daemon_on_the_same_stores_refuses_to_start(
    tmp_path: pathlib.Path, daemon: str, name: str
) -> None:
    """``broker <daemon> run`` while another holds the state directory: exit 2 and exactly one
    ``error:`` line, before anything else is opened (no trust state is written)."""
    accords = current_accords(tmp_path / "accords", now=dt.datetime.now(dt.UTC))
    federation = provision(tmp_path / "federation", bootstrap="127.0.0.1:9", accords=accords)
    state_dir = federation.data_dir(name)
    with state_lock(state_dir, daemon=daemon):
        done = subprocess.run(
            [sys.executable, "-m", "broker", daemon, "run",
             "--config", str(federation.config_path(name))],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    errors_said = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors_said == [
        f"error: {state_dir}: another {daemon} (pid {os.getpid()}) is running on this state "
        "directory; stop it first, or give this one a store of its own"
    ]
    assert not (state_dir / "trust-state.json").exists()
