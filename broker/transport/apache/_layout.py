"""What a local cluster's directory holds, as one strict record (``cluster.json``).

Layout under the cluster's root directory::

    cluster.json          this record: release, security, cluster id, every node's ports and pid
    log4j2.properties     the nodes' logging
    tls/                  the cluster CA and each node's key and certificate (make-certs.sh)
    secrets/<user>        SCRAM passwords (mode 0600), one file per principal
    node-<id>/            server.properties, data/ (the log and the KRaft metadata), kafka.log

A recorded pid is trusted only while ``/proc`` shows a Kafka JVM running that node's own
``server.properties``: pids are reused, and we never signal another program.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from broker.errors import LocalClusterError
from broker.transport._state import HOST, is_alive

__all__ = ["ClusterRecord", "NodeRecord", "Security", "read_record", "write_record"]

Security = Literal["plaintext", "sasl_ssl"]
_RECORD: Final = "cluster.json"


class NodeRecord(BaseModel):
    """One combined broker + controller node: its listeners' ports, and what clients and
    peers are told to connect to (the same unless a fault proxy stands in front)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    node_id: int
    client_port: int
    internal_port: int
    controller_port: int
    advertised_client_port: int
    advertised_internal_port: int
    advertised_controller_port: int
    pid: int | None = None

    def directory(self, root: Path) -> Path:
        """``node-<id>/`` under the cluster root."""
        return root / f"node-{self.node_id}"

    def properties(self, root: Path) -> Path:
        """The node's ``server.properties``."""
        return self.directory(root) / "server.properties"

    def runs_in(self, root: Path) -> bool:
        """Whether the recorded pid is alive and is this node's Kafka JVM."""
        if self.pid is None or not is_alive(self.pid):
            return False
        try:
            argv = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return not Path("/proc/self").exists()  # no procfs: trust the record
        except OSError:
            return False
        return b"kafka.Kafka" in argv and str(self.properties(root)).encode() in argv


class ClusterRecord(BaseModel):
    """Everything needed to find, use and stop a local cluster from another process."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    version: str
    security: Security
    cluster_id: str
    heap_mb: int
    nodes: tuple[NodeRecord, ...]
    users: tuple[str, ...] = ()

    @property
    def bootstrap(self) -> str:
        """Every node's advertised client address, comma-separated."""
        return ",".join(f"{HOST}:{n.advertised_client_port}" for n in self.nodes)

    def node(self, node_id: int) -> NodeRecord:
        """The node with id ``node_id``."""
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise LocalClusterError(f"the cluster has no node {node_id}")

    def with_pid(self, node_id: int, pid: int | None) -> ClusterRecord:
        """This record with node ``node_id``'s pid replaced."""
        nodes = tuple(
            n.model_copy(update={"pid": pid}) if n.node_id == node_id else n for n in self.nodes
        )
        return self.model_copy(update={"nodes": nodes})


def read_record(root: Path) -> ClusterRecord | None:
    """The cluster recorded in ``root``, or ``None`` if none is."""
    path = root / _RECORD
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LocalClusterError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return ClusterRecord.model_validate_json(raw)
    except ValidationError as exc:
        raise LocalClusterError(f"{path} is not a cluster record; remove {root}") from exc


def write_record(root: Path, record: ClusterRecord) -> None:
    """Record ``record`` in ``root`` atomically (write, then rename)."""
    partial = root / f".{_RECORD}.partial"
    try:
        partial.write_text(record.model_dump_json(indent=1), encoding="utf-8")
        partial.replace(root / _RECORD)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise LocalClusterError(f"cannot record the cluster in {root}: {exc.strerror}") from exc
