"""The committed topic and ACL artefacts equal what the project generates today.

When the partner list, the topic plan or the ACL rules change, these tests fail until the
files under deploy/ are regenerated, so a cluster is never provisioned from a stale copy.
Regenerate with the commands in deploy/README.md ("Topics and ACLs").
"""

from __future__ import annotations

import itertools
import shlex
from typing import Any

from click.testing import CliRunner

from broker.cli import cli
from broker.config import TopicSpec, topic_plan
from broker.transport.apache.distribution import KAFKA_VERSION

from ._deploy import DEPLOY, K8S, PARTNERS, compose, load_yaml_documents

PLAN = topic_plan(PARTNERS, prefix="xb.", partitions=3, replication_factor=3, min_insync_replicas=2)


def _generate(output_format: str, *extra: str) -> str:
    args = ["deploy", "acls", "--partners", ",".join(PARTNERS), "--format", output_format]
    result = CliRunner().invoke(cli, [*args, *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_strimzi_users_equal_a_fresh_generation() -> None:
    """deploy/k8s/users.yaml is byte for byte `broker deploy acls --format strimzi`."""
    committed = (K8S / "users.yaml").read_text(encoding="utf-8")
    assert committed == _generate("strimzi", "--cluster", "broker")


def test_kafka_acls_script_equals_a_fresh_generation() -> None:
    """deploy/kafka/acls.sh (run by compose's init job) is `broker deploy acls` output."""
    committed = (DEPLOY / "kafka" / "acls.sh").read_text(encoding="utf-8")
    assert committed == _generate("kafka-acls")


def test_strimzi_users_are_the_clients_the_deployments_use() -> None:
    """A KafkaUser exists for the gateway, the auditor, the witness and every adapter."""
    names = {doc["metadata"]["name"] for doc in load_yaml_documents(K8S / "users.yaml")}
    expected = {"gateway", "auditor", "witness"} | {f"adapter-{p.lower()}" for p in PARTNERS}
    assert names == expected


def _spec_of_kafka_topics_line(line: str) -> TopicSpec:
    words = shlex.split(line)
    configs: dict[str, str] = {}
    for flag, value in itertools.pairwise(words):
        if flag == "--config":
            key, _, setting = value.partition("=")
            configs[key] = setting
    return TopicSpec(
        name=words[words.index("--topic") + 1],
        partitions=int(words[words.index("--partitions") + 1]),
        replication_factor=int(words[words.index("--replication-factor") + 1]),
        configs=configs,
    )


def _as_comparable(specs: list[TopicSpec]) -> list[tuple[str, int, int, dict[str, str]]]:
    return [(s.name, s.partitions, s.replication_factor, dict(s.configs)) for s in specs]


def test_compose_topics_script_is_the_topic_plan() -> None:
    """deploy/kafka/topics.sh creates exactly the plan's topics with the plan's settings."""
    lines = (DEPLOY / "kafka" / "topics.sh").read_text(encoding="utf-8").splitlines()
    creates = [line for line in lines if line.startswith("kafka-topics.sh")]
    assert all("--if-not-exists" in line for line in creates), "the init job can be re-run"
    specs = [_spec_of_kafka_topics_line(line) for line in creates]
    assert _as_comparable(specs) == _as_comparable(PLAN)


def _spec_of_kafka_topic(document: dict[str, Any]) -> TopicSpec:
    spec = document["spec"]
    assert document["metadata"]["labels"] == {"strimzi.io/cluster": "broker"}
    return TopicSpec(spec["topicName"], spec["partitions"], spec["replicas"], spec["config"])


def test_strimzi_topics_are_the_topic_plan() -> None:
    """deploy/k8s/topics.yaml declares exactly the plan's topics, the audit topic with one
    partition and infinite retention."""
    documents = load_yaml_documents(K8S / "topics.yaml")
    specs = [_spec_of_kafka_topic(document) for document in documents]
    assert _as_comparable(specs) == _as_comparable(PLAN)
    audit = next(spec for spec in specs if spec.name == "xb.audit")
    assert (audit.partitions, audit.configs["retention.ms"]) == (1, "-1")


def test_every_topic_keeps_two_in_sync_replicas_of_three() -> None:
    """Both provisioning paths ask for replication 3 and min.insync.replicas 2."""
    for spec in PLAN:
        assert (spec.replication_factor, spec.configs["min.insync.replicas"]) == (3, "2")


def test_init_job_creates_a_scram_user_for_every_acl_principal() -> None:
    """Compose's init job gives every principal the ACLs name a SCRAM credential."""
    init = (DEPLOY / "kafka" / "init.sh").read_text(encoding="utf-8")
    (users_line,) = [line for line in init.splitlines() if line.startswith("for user in ")]
    users = set(users_line.removeprefix("for user in ").removesuffix("; do").split())
    principals = {
        word.removeprefix("User:")
        for word in shlex.split(_generate("kafka-acls"))
        if word.startswith("User:")
    }
    assert users == principals


def test_compose_cluster_properties_are_the_shared_settings_table() -> None:
    """deploy/kafka/cluster.properties is `broker deploy kafka-properties`: the settings the
    local test cluster runs (broker.transport.apache.settings), not a copy kept by hand."""
    committed = (DEPLOY / "kafka" / "cluster.properties").read_text(encoding="utf-8")
    result = CliRunner().invoke(cli, ["deploy", "kafka-properties"])
    assert result.exit_code == 0, result.output
    assert committed == result.output


def test_one_kafka_release_everywhere() -> None:
    """The pom the local cluster is resolved from and compose's image run the release the
    tests run (Strimzi's is checked with its CRDs in test_strimzi_schemas)."""
    pom = (DEPLOY / "kafka" / "pom.xml").read_text(encoding="utf-8")
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom
    images = {
        service["image"]
        for service in compose()["services"].values()
        if str(service.get("image", "")).startswith("apache/kafka")
    }
    anchors = {
        node["image"] for key, node in compose().items() if key.startswith("x-") and "image" in node
    }
    kafka_images = images | {i for i in anchors if i.startswith("apache/kafka")}
    assert kafka_images == {f"apache/kafka:{KAFKA_VERSION}"}
