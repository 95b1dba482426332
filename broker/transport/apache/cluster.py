"""A local Apache Kafka cluster on 127.0.0.1: KRaft nodes that are each broker and controller.

:meth:`ApacheCluster.create` resolves the pinned release (:mod:`.distribution`), picks ports
below the ephemeral range (nodes are restarted on the same ports), writes every node's
``server.properties`` from the shared settings table (:mod:`.settings`) and formats the
storage with Kafka's own storage tool. With ``security="sasl_ssl"`` it also makes a private
CA and node certificates with ``deploy/tls/make-certs.sh``, and the SCRAM-SHA-512 credentials
of ``admin`` (a super user, like the nodes) and of every user given, whose random passwords
it keeps in ``secrets/`` (mode 0600). No ACL exists yet: whoever creates the cluster applies
the plan it wants (``broker.transport.admin.create_acls``); until then only super users can
do anything.

Nodes can be stopped, killed and started one by one (fault tests) or all together, and from
any process: everything is recorded in ``cluster.json`` (:mod:`._layout`). A cluster made by
``broker kafka up --engine apache --detach`` is opened again with :meth:`ApacheCluster.open`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from broker.errors import LocalClusterError, TransportError
from broker.transport import probe
from broker.transport._child import free_ports
from broker.transport._state import HOST, send_signal, wait_gone
from broker.transport.access import ADMIN_USER, KafkaAccess
from broker.transport.admin import broker_ids
from broker.transport.apache import _node
from broker.transport.apache._layout import (
    ClusterRecord,
    NodeRecord,
    Security,
    read_record,
    write_record,
)
from broker.transport.apache.distribution import Distribution, repository_file, resolve
from broker.transport.apache.settings import SCRAM_MECHANISM
from broker.transport.security import ClientSecurity, tls_context

__all__ = ["ADMIN", "ApacheCluster", "Security", "new_cluster_id"]

#: the super user every secured local cluster has, as the nodes themselves are
ADMIN: Final = ADMIN_USER
_DEFAULT_HEAP_MB: Final = 512
_READY_TIMEOUT_S: Final = 120.0
_STOP_TIMEOUT_S: Final = 60.0
_POLL_S: Final = 0.2


class ApacheCluster:
    """A local cluster in ``root``: create it, or open the one recorded there."""

    def __init__(self, root: Path, record: ClusterRecord, distribution: Distribution) -> None:
        self.root = root
        self._record = record
        self._distribution = distribution
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    # making and finding ----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        nodes: int = 3,
        security: Security = "sasl_ssl",
        users: Iterable[str] = (),
        heap_mb: int = _DEFAULT_HEAP_MB,
        advertised: Mapping[int, Mapping[str, int]] | None = None,
        controller_routes: Mapping[int, Mapping[int, int]] | None = None,
        cache_dir: Path | None = None,
    ) -> ApacheCluster:
        """Write and format a new cluster in ``root`` (absent or empty); nothing runs yet.

        ``advertised`` maps a node id to listener names (``CLIENT``, ``INTERNAL``,
        ``CONTROLLER``) and the ports peers should use instead of the node's own: a fault
        proxy's, to cut that node off later. ``controller_routes`` maps a node id to the ports
        it reaches its peers' controllers on (proxies again), so its own heartbeats and votes
        can be cut too. ``users`` get SCRAM credentials (sasl_ssl).
        """
        if not 1 <= nodes <= 9:
            raise LocalClusterError(f"a local cluster has 1 to 9 nodes, not {nodes}")
        if root.exists() and any(root.iterdir()):
            raise LocalClusterError(f"{root} is not empty: remove it or choose another")
        distribution = resolve(cache_dir=cache_dir)
        root.mkdir(parents=True, exist_ok=True)
        records = []
        chosen = iter(free_ports(nodes * len(_LISTENERS), outside_ephemeral=True))
        for node_id in range(1, nodes + 1):
            ports = {name: next(chosen) for name in _LISTENERS}
            shown = {**ports, **(advertised or {}).get(node_id, {})}
            records.append(
                NodeRecord(
                    node_id=node_id,
                    client_port=ports["CLIENT"],
                    internal_port=ports["INTERNAL"],
                    controller_port=ports["CONTROLLER"],
                    advertised_client_port=shown["CLIENT"],
                    advertised_internal_port=shown["INTERNAL"],
                    advertised_controller_port=shown["CONTROLLER"],
                )
            )
        principals = tuple(sorted({ADMIN, *users})) if security == "sasl_ssl" else ()
        record = ClusterRecord(
            version=distribution.version,
            security=security,
            cluster_id=new_cluster_id(),
            heap_mb=heap_mb,
            nodes=tuple(records),
            users=principals,
        )
        passwords = {user: secrets.token_urlsafe(24) for user in principals}
        (root / "log4j2.properties").write_text(_node.LOG4J, encoding="utf-8")
        if security == "sasl_ssl":
            _make_certificates(root / "tls", nodes)
            _write_secrets(root / "secrets", passwords)
        for node in record.nodes:
            node.directory(root).mkdir()
            routes = (controller_routes or {}).get(node.node_id, {})
            node.properties(root).write_text(
                _node.node_properties(root, record, node, controller_routes=routes),
                encoding="utf-8",
            )
        _node.format_storage(distribution, root, record, passwords)
        write_record(root, record)
        return cls(root, record, distribution)

    @classmethod
    def open(cls, root: Path, *, cache_dir: Path | None = None) -> ApacheCluster:
        """The cluster recorded in ``root`` (running or not)."""
        record = read_record(root)
        if record is None:
            raise LocalClusterError(f"no local Apache Kafka cluster is recorded in {root}")
        return cls(root, record, resolve(cache_dir=cache_dir, version=record.version))

    # what clients need ----------------------------------------------------------------

    @property
    def record(self) -> ClusterRecord:
        """The cluster as recorded (ports, pids, security)."""
        return self._record

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma-separated."""
        return self._record.bootstrap

    @property
    def node_ids(self) -> tuple[int, ...]:
        """The ids of the nodes, 1 to N."""
        return tuple(node.node_id for node in self._record.nodes)

    @property
    def ca_file(self) -> Path:
        """The cluster CA certificate clients trust (sasl_ssl only)."""
        return self.root / "tls" / "ca.pem"

    def password_file(self, user: str) -> Path:
        """The file holding ``user``'s SCRAM password (sasl_ssl only)."""
        if user not in self._record.users:
            raise LocalClusterError(f"the cluster has no SCRAM user {user!r}")
        return self.root / "secrets" / user

    def access(self) -> KafkaAccess:
        """How the exchange's processes reach this cluster (engine ``apache``)."""
        if self._record.security == "plaintext":
            return KafkaAccess(bootstrap=self.bootstrap, engine="apache")
        return KafkaAccess(
            bootstrap=self.bootstrap,
            engine="apache",
            ca_file=self.ca_file,
            secrets_dir=self.root / "secrets",
            mechanism=SCRAM_MECHANISM,
        )

    def client_security(self, user: str = ADMIN) -> ClientSecurity:
        """How ``user`` connects: SCRAM-SHA-512 over TLS, or PLAINTEXT on a plaintext cluster."""
        return self.access().security(user)

    # running --------------------------------------------------------------------------

    def is_running(self, node_id: int) -> bool:
        """Whether node ``node_id``'s JVM is alive."""
        return self._record.node(node_id).runs_in(self.root)

    def start(self, *, ready_timeout_s: float = _READY_TIMEOUT_S) -> None:
        """Start every node that is not running; return once all serve as one cluster.

        If one fails, the nodes this call started are stopped again before the error is
        raised: a failed start leaves nothing running that it began.
        """
        started = [n for n in self.node_ids if not self.is_running(n)]
        try:
            for node_id in started:
                self._spawn(node_id)
            self.wait_ready(timeout_s=ready_timeout_s)
        except BaseException:
            self._signal_and_wait(started, signal.SIGTERM, timeout_s=_STOP_TIMEOUT_S)
            raise

    def start_node(self, node_id: int, *, ready_timeout_s: float = _READY_TIMEOUT_S) -> None:
        """Start one stopped node and wait until the cluster lists it again."""
        if self.is_running(node_id):
            raise LocalClusterError(f"node {node_id} is already running")
        self._spawn(node_id)
        self.wait_ready(timeout_s=ready_timeout_s)

    def stop_node(self, node_id: int, *, timeout_s: float = _STOP_TIMEOUT_S) -> None:
        """SIGTERM one node (a controlled shutdown) and wait; SIGKILL past ``timeout_s``."""
        self._signal_and_wait([node_id], signal.SIGTERM, timeout_s=timeout_s)

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node: a crash, nothing flushed, no leadership handed over."""
        self._signal_and_wait([node_id], signal.SIGKILL, timeout_s=_STOP_TIMEOUT_S)

    def stop(self, *, timeout_s: float = _STOP_TIMEOUT_S) -> None:
        """SIGTERM every node at once and wait for all; SIGKILL any past ``timeout_s``."""
        self._signal_and_wait(list(self.node_ids), signal.SIGTERM, timeout_s=timeout_s)

    def detach(self) -> None:
        """Hand the running nodes over: they outlive this process (``broker kafka down``)."""
        for process in self._processes.values():
            # finished, as far as Popen knows: no reaping, no warning about a live child
            process.returncode = 0
        self._processes.clear()

    def wait_ready(self, *, timeout_s: float = _READY_TIMEOUT_S) -> None:
        """Wait until every running node answers and the metadata lists them all."""
        deadline = time.monotonic() + timeout_s
        tls = None if self._record.security == "plaintext" else tls_context(ca_file=self.ca_file)
        for node in self._record.nodes:
            if not self.is_running(node.node_id):
                continue
            while not probe.answers_api_versions(HOST, node.client_port, timeout_s=1.0, tls=tls):
                self._check_alive(node.node_id)
                _wait(deadline, f"node {node.node_id} to answer on {HOST}:{node.client_port}")
        expected = [n for n in self.node_ids if self.is_running(n)]
        while True:
            try:
                listed = asyncio.run(
                    broker_ids(self.bootstrap, security=self.client_security(ADMIN))
                )
            except TransportError:
                listed = []
            if listed == expected:
                return
            for node_id in expected:
                self._check_alive(node_id)
            _wait(deadline, f"the cluster to list nodes {expected} (it lists {listed})")

    def log_path(self, node_id: int) -> Path:
        """Node ``node_id``'s log file."""
        return self._record.node(node_id).directory(self.root) / "kafka.log"

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

    # internals ------------------------------------------------------------------------

    def _spawn(self, node_id: int) -> None:
        node = self._record.node(node_id)
        process = _node.spawn_node(self._distribution, self.root, self._record, node)
        self._processes[node_id] = process
        self._record = self._record.with_pid(node_id, process.pid)
        write_record(self.root, self._record)

    def _check_alive(self, node_id: int) -> None:
        if self.is_running(node_id):
            return
        process = self._processes.pop(node_id, None)
        status = "" if process is None else f" with status {process.wait()}"
        self._record = self._record.with_pid(node_id, None)
        write_record(self.root, self._record)
        log = self.log_path(node_id)
        raise LocalClusterError(
            f"node {node_id} exited{status} while starting: {_first_error(log)} (see {log})"
        )

    def _signal_and_wait(
        self, node_ids: list[int], signum: signal.Signals, *, timeout_s: float
    ) -> None:
        targets = [n for n in node_ids if self.is_running(n)]
        for node_id in set(node_ids) - set(targets):
            # a node that died by itself: reap it, so no zombie outlives us
            if (process := self._processes.pop(node_id, None)) is not None:
                process.wait()
        for node_id in targets:
            send_signal(self._pid(node_id), signum)
        for node_id in targets:
            pid = self._pid(node_id)
            if not self._gone(node_id, pid, timeout_s):
                send_signal(pid, signal.SIGKILL)
                if not self._gone(node_id, pid, timeout_s):
                    raise LocalClusterError(f"node {node_id} (pid {pid}) did not exit")
            self._processes.pop(node_id, None)
            self._record = self._record.with_pid(node_id, None)
        write_record(self.root, self._record)

    def _gone(self, node_id: int, pid: int, timeout_s: float) -> bool:
        process = self._processes.get(node_id)
        if process is None:
            return wait_gone(pid, timeout_s=timeout_s)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _pid(self, node_id: int) -> int:
        pid = self._record.node(node_id).pid
        if pid is None:
            raise LocalClusterError(f"node {node_id} is not running")
        return pid


_LISTENERS: Final = ("CLIENT", "INTERNAL", "CONTROLLER")


def _first_error(log: Path) -> str:
    """The first ERROR or FATAL line near the end of a node's log and the exception line
    under it (the cause: "Address already in use", ...); else the log's last line."""
    try:
        with log.open("rb") as file:
            file.seek(max(0, log.stat().st_size - 65536))
            lines = [line.strip() for line in file.read().decode(errors="replace").splitlines()]
    except OSError:
        return "no log"
    lines = [line for line in lines if line]
    for index, line in enumerate(lines):
        if " ERROR " in line or " FATAL " in line:
            cause = lines[index + 1] if index + 1 < len(lines) else ""
            shown = f"{line} {cause}" if not cause.startswith("[") else line
            return shown[:600]
    return lines[-1][:600] if lines else "no output"


def _wait(deadline: float, what: str) -> None:
    if time.monotonic() >= deadline:
        raise LocalClusterError(f"timed out waiting for {what}")
    time.sleep(_POLL_S)  # other processes: polling is the only way to see them get ready


def _make_certificates(directory: Path, nodes: int) -> None:
    script = repository_file("deploy/tls/make-certs.sh")
    names = " ".join(f"kafka-{n}" for n in range(1, nodes + 1))
    try:
        result = subprocess.run(
            ["/bin/sh", str(script), str(directory)],
            env=os.environ | {"NODES": names},
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalClusterError(f"cannot run {script}: {exc}") from exc
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        raise LocalClusterError(
            f"{script} failed (is openssl installed?): {detail[-1] if detail else 'no output'}"
        )


def _write_secrets(directory: Path, passwords: Mapping[str, str]) -> None:
    directory.mkdir(mode=0o700)
    for user, password in passwords.items():
        fd = os.open(directory / user, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with contextlib.closing(os.fdopen(fd, "w", encoding="utf-8")) as handle:
            handle.write(password + "\n")


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes), never one that
    starts with "-": kafka-storage would read it as an option (one id in 64 did, and
    formatting failed with "--cluster-id: expected one argument")."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text
