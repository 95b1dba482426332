"""The deployments run the daemons with least privilege: a non-root user, a read-only root
filesystem, no capabilities, a seccomp filter, secrets outside the image and the manifests,
and a stop sequence long enough for the SIGTERM drain.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ._deploy import COMPOSE, DEPLOY, SYSTEMD, compose, k8s_documents, systemd_directives

DOCKERFILE = DEPLOY / "Dockerfile"


def _final_stage(path: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_dockerfile_final_stage_runs_as_a_non_root_user() -> None:
    """The final stage switches to uid 10001 and never back to root."""
    users = [args for keyword, args in _final_stage(DOCKERFILE) if keyword == "USER"]
    assert users, "the final stage declares USER"
    assert users[-1].split(":")[0] == "10001"


def test_dockerfile_is_multi_stage_on_python_slim_with_broker_entrypoint() -> None:
    """A build stage and a slim runtime stage; ENTRYPOINT broker; a loopback health check."""
    stages = [
        line
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("FROM ")
    ]
    assert len(stages) >= 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text(encoding="utf-8")
    final = dict(_final_stage(DOCKERFILE))
    assert final["ENTRYPOINT"] == '["broker"]'
    assert "http://127.0.0.1:" in final["HEALTHCHECK"]
    assert "/healthz" in final["HEALTHCHECK"]
    assert final["VOLUME"] == '["/var/lib/broker"]'


def test_dockerfile_final_stage_copies_only_the_built_environment() -> None:
    """No source tree and no compiler reach the runtime image: it copies /opt/broker only."""
    copies = [args for keyword, args in _final_stage(DOCKERFILE) if keyword == "COPY"]
    assert copies == ["--from=build /opt/broker /opt/broker"]
    runs = " ".join(args for keyword, args in _final_stage(DOCKERFILE) if keyword == "RUN")
    assert "apt-get install" not in runs
    assert "pip uninstall" in runs


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (document["metadata"]["name"], document["spec"]["template"]["spec"])
        for _, document in k8s_documents("Deployment")
    ]


def test_kubernetes_deploys_a_two_replica_gateway_and_an_adapter() -> None:
    """The gateway runs two replicas in its consumer group; the adapter one (RWO store)."""
    replicas = {
        document["metadata"]["name"]: document["spec"]["replicas"]
        for _, document in k8s_documents("Deployment")
    }
    assert replicas == {"broker-gateway": 2, "broker-adapter-gb": 1}


@pytest.mark.parametrize(("name", "pod"), _pod_specs(), ids=lambda value: str(value)[:20])
def test_kubernetes_containers_are_locked_down(name: str, pod: dict[str, Any]) -> None:
    """Every container, init containers included, runs as non-root with a read-only root
    filesystem, no privilege escalation, ALL capabilities dropped and seccomp RuntimeDefault."""
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, container["name"]


@pytest.mark.parametrize(("name", "pod"), _pod_specs(), ids=lambda value: str(value)[:20])
def test_kubernetes_secrets_are_referenced_not_committed(name: str, pod: dict[str, Any]) -> None:
    """Pods mount Secrets by name, and no manifest under deploy/k8s carries a Secret's data."""
    secret_names = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secret_names, "the keys, the SCRAM password and the cluster CA come from Secrets"
    assert not list(k8s_documents("Secret"))


def test_kafka_cluster_is_kraft_with_a_scram_tls_listener_and_acls() -> None:
    """Strimzi runs three KRaft nodes; the only listener is TLS with SCRAM-SHA-512; simple
    authorisation; topics keep two in-sync replicas."""
    ((_, pool),) = k8s_documents("KafkaNodePool")
    ((_, kafka),) = k8s_documents("Kafka")
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert "zookeeper" not in kafka["spec"], "Strimzi 1.x runs KRaft only"
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True
    assert listener["authentication"] == {"type": "scram-sha-512"}
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2


def test_compose_daemons_are_locked_down() -> None:
    """Compose runs the daemons read-only with no capabilities and no privilege gain."""
    anchor = compose()["x-broker-daemon"]
    assert anchor["read_only"] is True
    assert anchor["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in anchor["security_opt"]
    assert anchor["stop_signal"] == "SIGTERM"


def test_compose_kafka_is_sasl_ssl_with_default_deny() -> None:
    """The compose cluster's nodes have no plaintext listener, SCRAM-SHA-512 for clients and
    the StandardAuthorizer denying whatever no ACL allows."""
    start = (DEPLOY / "kafka" / "start-node.sh").read_text(encoding="utf-8")
    assert 'cat "$(dirname "$0")/cluster.properties"' in start
    start += (DEPLOY / "kafka" / "cluster.properties").read_text(encoding="utf-8")
    protocols = re.search(r"^listener\.security\.protocol\.map=(.*)$", start, re.MULTILINE)
    assert protocols is not None
    assert set(protocols[1].split(",")) == {"CLIENT:SASL_SSL", "INTERNAL:SSL", "CONTROLLER:SSL"}
    for setting in [
        "listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        "listener.name.controller.ssl.client.auth=required",
        "super.users=User:admin;User:kafka-1;User:kafka-2;User:kafka-3",
    ]:
        assert setting in start.splitlines(), setting
    nodes = [name for name in compose()["services"] if name.startswith("kafka-")]
    assert sorted(nodes) == ["kafka-1", "kafka-2", "kafka-3", "kafka-init"]
    assert COMPOSE.is_file()


HARDENING = {
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "KillSignal": "SIGTERM",
}


@pytest.mark.parametrize("unit", sorted(SYSTEMD.glob("*.service")), ids=lambda p: p.name)
def test_systemd_units_carry_the_hardening_directives(unit: Path) -> None:
    """Each unit sets the sandboxing directives, a state directory, credentials for its
    secrets, a syscall filter, an unprivileged user and a stop timeout for the drain."""
    directives = systemd_directives(unit)
    for key, value in HARDENING.items():
        assert directives.get(key) == [value], key
    assert directives["SystemCallFilter"][0] == "@system-service"
    assert directives["StateDirectory"][0].startswith("broker/")
    assert {c.split(":")[0] for c in directives["LoadCredential"]} >= {
        "kafka-password",
        "key-passphrase",
        "signing.pem",
    }
    assert directives.get("DynamicUser") == ["yes"] or directives.get("User") == ["broker"]
    assert "TimeoutStopSec" in directives
    assert not any(
        "PASSWORD=" in e or "PASSPHRASE=" in e for e in directives.get("Environment", [])
    )
