"""`broker kafka up|down` and `broker demo`, run as a user would: as separate processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.transport.embedded import HOST, free_port, stop_detached
from broker.transport.kafka import (
    ConsumerSettings,
    ProducerSettings,
    TopicSpec,
    create_topics,
    open_consumer,
    open_producer,
)

pytestmark = pytest.mark.kafka

BROKER = Path(sys.executable).with_name("broker")
# guards against a hung command, never a measurement
HANG_GUARD_S = 60


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment for the commands: a private state directory, the packaged binary.

    Whatever a failing test leaves recorded there is stopped afterwards.
    """
    variables = {k: v for k, v in os.environ.items() if k != "BROKER_KAFKA_BIN"}
    variables["BROKER_STATE_DIR"] = str(tmp_path / "state")
    yield variables
    stop_detached(state_dir=tmp_path / "state")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that this test holds open."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen()
        yield sock.getsockname()[1]


def broker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BROKER), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie awaiting its reaper counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def recorded_pid(env: dict[str, str]) -> int:
    state = json.loads((Path(env["BROKER_STATE_DIR"]) / "kafka.json").read_text("utf-8"))
    pid = state["pid"]
    assert isinstance(pid, int)
    return pid


async def test_up_detached_serves_kafka_until_down(env: dict[str, str]) -> None:
    """`up --detach` prints a working address and returns; `down` stops the broker for good."""
    port = free_port()
    started = broker("kafka", "up", "--detach", "--port", str(port), env=env)
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip()
    assert bootstrap == f"{HOST}:{port}"
    pid = recorded_pid(env)
    try:
        topic = "cli.roundtrip"
        await create_topics(bootstrap, [TopicSpec(topic)])
        async with open_producer(ProducerSettings(bootstrap=bootstrap, client_id="t")) as producer:
            await producer.send(topic, b"over the detached broker")
        settings = ConsumerSettings(
            bootstrap=bootstrap, group_id="cli", client_id="t", session_timeout_ms=3_000
        )
        async with open_consumer(settings, [topic]) as reader:
            records = await reader.read(1, timeout_s=30)
            await reader.commit(records)
        assert [r.value for r in records] == [b"over the detached broker"]

        again = broker("kafka", "up", "--detach", "--port", "0", env=env)
        assert again.returncode == 22
        assert again.stderr.splitlines() == [
            f"error: an embedded broker is already running at {bootstrap} (pid {pid}); "
            "stop it with `broker kafka down`"
        ]
    finally:
        stopped = broker("kafka", "down", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"stopped the embedded broker at {bootstrap} (pid {pid})"
    assert process_gone(pid)
    assert not (Path(env["BROKER_STATE_DIR"]) / "kafka.pid").exists()

    nothing = broker("kafka", "down", env=env)
    assert (nothing.returncode, nothing.stdout.strip()) == (0, "no embedded broker is running")


def test_up_in_the_foreground_stops_cleanly_on_sigterm(env: dict[str, str]) -> None:
    """The foreground broker runs until SIGTERM, then stops its broker and exits 0."""
    with subprocess.Popen(
        [str(BROKER), "kafka", "up", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as command:
        assert command.stdout is not None
        bootstrap = command.stdout.readline().strip()  # printed once the broker answers
        assert bootstrap.startswith(f"{HOST}:")
        pid = recorded_pid(env)
        command.send_signal(signal.SIGTERM)
        _, errors = command.communicate(timeout=HANG_GUARD_S)
    assert command.returncode == 0, errors
    assert process_gone(pid)
    assert not (Path(env["BROKER_STATE_DIR"]) / "kafka.json").exists()


@pytest.mark.parametrize("detach", [True, False], ids=["detached", "foreground"])
def test_a_busy_port_is_one_line_and_status_22(
    env: dict[str, str], busy_port: int, detach: bool
) -> None:
    """The broker would panic on a busy port; the command says so in one line instead."""
    result = broker("kafka", "up", "--port", str(busy_port), *(["--detach"] * detach), env=env)
    assert result.returncode == 22
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: port {busy_port} on {HOST} is already in use")


def test_a_missing_binary_is_one_line_and_status_22(env: dict[str, str]) -> None:
    """BROKER_KAFKA_BIN pointing nowhere is reported in one line, without a traceback."""
    result = broker(
        "kafka", "up", "--detach", "--port", "0", env=env | {"BROKER_KAFKA_BIN": "/nonexistent"}
    )
    assert result.returncode == 22
    [line] = result.stderr.splitlines()
    assert line.startswith("error: BROKER_KAFKA_BIN=/nonexistent is not an executable file")
    assert result.stdout == ""


def test_the_demo_round_trip_succeeds(env: dict[str, str]) -> None:
    """`broker demo` starts its own broker, sends records through it, and exits 0."""
    result = broker("demo", "--records", "3", env=env)
    assert result.returncode == 0, result.stderr
    assert "OK: every record came back unchanged" in result.stdout
    assert "3 records, acks=all" in result.stdout
