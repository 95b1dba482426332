"""One node's files and process: its ``server.properties``, its storage format, its JVM."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Final

from broker.errors import LocalClusterError
from broker.transport._state import HOST
from broker.transport.apache._layout import ClusterRecord, NodeRecord
from broker.transport.apache.distribution import Distribution
from broker.transport.apache.settings import (
    CLUSTER_SETTINGS,
    LISTENERS,
    LOCAL_SETTINGS,
    SCRAM_MECHANISM,
    SECURED_SETTINGS,
    for_nodes,
    render_properties,
)

__all__ = ["LOG4J", "container_properties", "format_storage", "node_properties", "spawn_node"]

_FORMAT_TIMEOUT_S: Final = 120.0
#: the nodes' logging: one file per node, the config dumps and request logs left out
LOG4J: Final = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.config.name = org.apache.kafka.common.config
logger.config.level = WARN
logger.requests.name = kafka.request.logger
logger.requests.level = WARN
"""


def node_properties(
    root: Path,
    record: ClusterRecord,
    node: NodeRecord,
    *,
    controller_routes: Mapping[int, int] | None = None,
    listen_host: str = HOST,
    advertised_host: str = HOST,
) -> str:
    """The whole ``server.properties`` of ``node``: the shared tables, then its own lines.

    ``controller_routes`` gives the port this node reaches a peer's controller on, where it
    is not the peer's advertised one (a fault proxy that can cut this node off). The hosts
    are 127.0.0.1 on this machine; a container listens on all its interfaces and is reached
    through the address its engine maps (``container_properties``).
    """
    routes = controller_routes or {}
    voters = ",".join(
        f"{n.node_id}@{HOST}:{routes.get(n.node_id, n.advertised_controller_port)}"
        for n in record.nodes
    )
    settings: dict[str, str] = {}
    settings |= for_nodes(CLUSTER_SETTINGS, len(record.nodes))
    settings |= for_nodes(LOCAL_SETTINGS, len(record.nodes))
    if record.security == "sasl_ssl":
        tls = root / "tls"
        node_name = f"kafka-{node.node_id}"
        settings |= SECURED_SETTINGS
        settings |= {
            "ssl.keystore.location": str(tls / f"{node_name}.keystore.pem"),
            "ssl.truststore.location": str(tls / "ca.pem"),
            # a node's certificate says CN=kafka-<id> and is its principal, a super user
            "ssl.principal.mapping.rules": (
                r"RULE:^CN=(kafka-[0-9]+),O=broker development$/$1/,DEFAULT"
            ),
            "super.users": ";".join(
                ["User:admin", *(f"User:kafka-{n.node_id}" for n in record.nodes)]
            ),
        }
    else:
        settings |= {
            "listener.security.protocol.map": ",".join(f"{k}:PLAINTEXT" for k in LISTENERS),
            "inter.broker.listener.name": "INTERNAL",
            "controller.listener.names": "CONTROLLER",
        }
    settings |= {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": (
            f"CLIENT://{listen_host}:{node.client_port},"
            f"INTERNAL://{listen_host}:{node.internal_port},"
            f"CONTROLLER://{HOST}:{node.controller_port}"
        ),
        "advertised.listeners": (
            f"CLIENT://{advertised_host}:{node.advertised_client_port},"
            f"INTERNAL://{HOST}:{node.advertised_internal_port}"
        ),
        "log.dirs": str(node.directory(root) / "data"),
    }
    header = (
        f"node {node.node_id} of a local Apache Kafka {record.version} cluster "
        f"({record.security}); written by broker.transport.apache"
    )
    return render_properties(settings, header=header)


#: the official image's layout: where the container's own files go
CONTAINER_ROOT: Final = Path("/var/lib/broker-kafka")
CONTAINER_CLIENT_PORT: Final = 9093


def container_properties(*, version: str, advertised_host: str, advertised_port: int) -> str:
    """``server.properties`` of a one-node SASL_SSL cluster in the official ``apache/kafka``
    image (the testcontainers backend): the same tables and node lines as a local node, the
    client listener on every interface of the container, advertised as the host's mapped
    address. Its TLS files are expected in ``/var/lib/broker-kafka/tls``."""
    node = NodeRecord(
        node_id=1,
        client_port=CONTAINER_CLIENT_PORT,
        internal_port=9091,
        controller_port=9094,
        advertised_client_port=advertised_port,
        advertised_internal_port=9091,
        advertised_controller_port=9094,
    )
    record = ClusterRecord(
        version=version, security="sasl_ssl", cluster_id="-", heap_mb=512, nodes=(node,)
    )
    return node_properties(
        CONTAINER_ROOT,
        record,
        node,
        # inside a container, reached only through the port its engine maps
        listen_host="0.0.0.0",  # noqa: S104
        advertised_host=advertised_host,
    )


def format_storage(
    distribution: Distribution,
    root: Path,
    record: ClusterRecord,
    passwords: Mapping[str, str],
) -> None:
    """Format every node's log directory with Kafka's storage tool, all nodes at once.

    On a secured cluster the SCRAM credentials of ``passwords`` go into the bootstrap
    metadata, so every principal can log in from the first start. The passwords cross the
    storage tool's command line once, on this machine, for a throwaway test cluster.
    """
    scram = [
        arg
        for user, password in sorted(passwords.items())
        for arg in ("--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={password}]")
    ]
    running: list[tuple[NodeRecord, subprocess.Popen[bytes], Path]] = []
    for node in record.nodes:
        log = node.directory(root) / "format.log"
        argv = distribution.java_argv(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={record.cluster_id}",
            "--config",
            str(node.properties(root)),
            *scram,
            jvm=_jvm_options(root, heap_mb=128),
        )
        with log.open("wb") as out:
            running.append((node, _popen(argv, out, new_session=False), log))
    failed: list[str] = []
    for node, process, log in running:
        try:
            status = process.wait(timeout=_FORMAT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            status = -1
        if status != 0:
            failed.append(f"node {node.node_id}: {_last_lines(log)}")
    if failed:
        raise LocalClusterError(f"kafka-storage format failed: {'; '.join(failed)}")


def spawn_node(
    distribution: Distribution, root: Path, record: ClusterRecord, node: NodeRecord
) -> subprocess.Popen[bytes]:
    """Start ``node``'s JVM in a session of its own (it outlives a detaching command)."""
    argv = distribution.java_argv(
        "kafka.Kafka",
        str(node.properties(root)),
        jvm=_jvm_options(root, heap_mb=record.heap_mb),
    )
    with (node.directory(root) / "kafka.log").open("ab") as log:
        return _popen(argv, log, new_session=True)


def _jvm_options(root: Path, *, heap_mb: int) -> tuple[str, ...]:
    return (
        f"-Xms{min(heap_mb, 256)}m",
        f"-Xmx{heap_mb}m",
        # one GC thread and pools sized for one CPU: several nodes share two cores
        "-XX:+UseSerialGC",
        "-XX:ActiveProcessorCount=1",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={root / 'log4j2.properties'}",
    )


def _popen(argv: Sequence[str], log: IO[bytes], *, new_session: bool) -> subprocess.Popen[bytes]:
    # JVM tuning variables of the caller's shell must not change the nodes behind our back
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH"}
    }
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=new_session,
        )
    except OSError as exc:
        raise LocalClusterError(f"cannot run {argv[0]}: {exc.strerror}") from exc


def _last_lines(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no output"
    useful = [line.strip() for line in lines if line.strip() and not line.startswith("\t")]
    return " | ".join(useful[-2:])[:400] or "no output"
