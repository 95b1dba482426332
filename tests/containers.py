"""The ``testcontainers`` backend: the official ``apache/kafka`` image of the pinned release,
one node with SASL_SSL, SCRAM users and the StandardAuthorizer, for machines with Docker.

The node runs the same ``server.properties`` a local node would
(``broker.transport.apache._node.container_properties``): the shared settings table, the
secured listeners, certificates from ``deploy/tls/make-certs.sh``. The advertised address is
the host port Docker maps, known only once the container runs, so the container waits for a
start script that is written into it then (as testcontainers' own Kafka module does).
"""

from __future__ import annotations

import secrets
import shlex
import subprocess
from collections.abc import Generator
from pathlib import Path
from typing import Any, Final

from broker.config import acl_plan, users_of
from broker.demo.federation import DEFAULT_PARTNERS
from broker.transport.access import ADMIN_USER, KafkaAccess
from broker.transport.apache._node import (
    CONTAINER_CLIENT_PORT,
    CONTAINER_ROOT,
    container_properties,
)
from broker.transport.apache.distribution import KAFKA_VERSION, repository_file

__all__ = ["IMAGE", "start_apache_container"]

IMAGE: Final = f"apache/kafka:{KAFKA_VERSION}"
_SCRIPT: Final = "/tmp/broker-start.sh"


def start_apache_container(root: Path) -> Generator[KafkaAccess, None, None]:
    """Start the container (Docker must answer), yield how to reach it, stop it."""
    # imported only for this backend: it needs Docker's client library
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    tls, secrets_dir = root / "tls", root / "secrets"
    subprocess.run(
        ["/bin/sh", str(repository_file("deploy/tls/make-certs.sh")), str(tls)],
        env={"NODES": "kafka-1", "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    secrets_dir.mkdir()
    users = sorted({ADMIN_USER, *users_of(acl_plan(DEFAULT_PARTNERS, prefix="xb."))})
    passwords = {user: secrets.token_urlsafe(24) for user in users}
    for user, password in passwords.items():
        (secrets_dir / user).write_text(password + "\n", encoding="utf-8")
        (secrets_dir / user).chmod(0o600)
    wait = f"while [ ! -f {_SCRIPT} ]; do sleep 0.1; done; sh {_SCRIPT}"
    container: Any = (
        DockerContainer(IMAGE)
        .with_exposed_ports(CONTAINER_CLIENT_PORT)
        .with_volume_mapping(str(tls), str(CONTAINER_ROOT / "tls"), mode="ro")
        .with_command(f"sh -c {shlex.quote(wait)}")
    )
    container.start()
    try:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(CONTAINER_CLIENT_PORT))
        properties = container_properties(
            version=KAFKA_VERSION, advertised_host=host, advertised_port=port
        )
        scram = " ".join(
            f"--add-scram {shlex.quote(f'SCRAM-SHA-512=[name={u},password={p}]')}"
            for u, p in passwords.items()
        )
        script = "\n".join(
            [
                "set -e",
                f"cat > /tmp/server.properties <<'PROPERTIES'\n{properties}PROPERTIES",
                "/opt/kafka/bin/kafka-storage.sh format --cluster-id "
                f"$(/opt/kafka/bin/kafka-storage.sh random-uuid) -c /tmp/server.properties {scram}",
                "exec /opt/kafka/bin/kafka-server-start.sh /tmp/server.properties",
            ]
        )
        _write_into(container, script.encode(), _SCRIPT)
        wait_for_logs(container, r"Kafka Server started", timeout=120)
        yield KafkaAccess(
            bootstrap=f"{host}:{port}",
            engine="apache",
            ca_file=tls / "ca.pem",
            secrets_dir=secrets_dir,
        )
    finally:
        container.stop()


def _write_into(container: Any, content: bytes, path: str) -> None:
    import io
    import tarfile
    import time

    with io.BytesIO() as archive, tarfile.TarFile(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(name=path)
        info.size, info.mtime = len(content), int(time.time())
        tar.addfile(info, io.BytesIO(content))
        archive.seek(0)
        container.get_wrapped_container().put_archive("/", archive)
