"""The ACL plan, enforced by a real authoriser: every principal can do exactly what
``broker deploy acls`` grants it, and nothing else (DESIGN section 3, docs/THREAT-MODEL.md).

The cluster runs the ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``;
clients log in with SCRAM-SHA-512 over TLS; nodes talk to each other over mutual TLS. Each
test grants the plan for a prefix of its own, then tries the allowed and the forbidden with
the principal's own credentials: a refusal is an authorisation error from the broker, never
a timeout.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest

from broker.config import (
    acl_plan,
    adapter_group,
    audit_topic,
    inbox_topic,
    outbox_topic,
    quarantine_topic,
    topic_plan,
)
from broker.transport.admin import create_acls
from broker.transport.apache.cluster import ApacheCluster
from broker.transport.kafka import (
    ConsumerSettings,
    ProducerSettings,
    TopicSpec,
    create_topics,
    open_consumer,
    open_producer,
)
from broker.transport.probe import answers_api_versions
from broker.transport.security import ClientSecurity
from broker.transport.testing import KafkaUnderTest

from .support import refused

pytestmark = pytest.mark.kafka

PARTNERS = ("GB", "RS")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prefix(secured: KafkaUnderTest) -> str:
    """A prefix of this module's own: the plan's topics, and its ACLs granted by the admin."""
    chosen = f"z{uuid.uuid4().hex[:8]}."
    access = secured.kafka_access
    specs = [
        TopicSpec(t.name, t.partitions, t.replication_factor, dict(t.configs))
        for t in topic_plan(
            PARTNERS,
            prefix=chosen,
            partitions=1,
            replication_factor=min(3, len(secured.cluster.node_ids)) if secured.cluster else 1,
            min_insync_replicas=1,
        )
    ]
    asyncio.run(create_topics(access.bootstrap, specs, security=access.security()))
    rules = acl_plan(PARTNERS, prefix=chosen)
    asyncio.run(create_acls(access.bootstrap, rules, security=access.security()))
    return chosen


def _write(kafka: KafkaUnderTest, user: str, topic: str) -> None:
    settings = ProducerSettings(
        bootstrap=kafka.bootstrap,
        client_id=f"authz-{user}",
        enable_idempotence=True,
        request_timeout_ms=15_000,
        security=kafka.kafka_access.security(user),
    )

    async def run() -> None:
        async with open_producer(settings) as producer:
            await producer.send(topic, b"authz probe")

    asyncio.run(run())


def _read(kafka: KafkaUnderTest, user: str, topic: str, group: str) -> None:
    settings = ConsumerSettings(
        bootstrap=kafka.bootstrap,
        group_id=group,
        client_id=f"authz-{user}",
        session_timeout_ms=kafka.session_timeout_ms,
        security=kafka.kafka_access.security(user),
    )

    async def run() -> None:
        async with open_consumer(settings, [topic]) as consumer:
            await consumer.fetch(timeout_ms=2_000)

    asyncio.run(run())


def test_an_adapter_writes_its_own_outbox_and_no_other_topic(
    secured: KafkaUnderTest, prefix: str
) -> None:
    """adapter-gb writes xb.outbox.GB (idempotently); it cannot write RS's outbox, any
    inbox, the audit topic or the quarantine."""
    _write(secured, "adapter-gb", outbox_topic(prefix, "GB"))
    for topic in (
        outbox_topic(prefix, "RS"),
        inbox_topic(prefix, "RS"),
        inbox_topic(prefix, "GB"),
        audit_topic(prefix),
        quarantine_topic(prefix),
    ):
        with refused("TopicAuthorizationFailed"):
            _write(secured, "adapter-gb", topic)


def test_an_adapter_reads_its_own_inbox_in_its_own_group_only(
    secured: KafkaUnderTest, prefix: str
) -> None:
    """adapter-gb reads xb.inbox.GB as group xb.adapter.GB; not RS's inbox, not any outbox,
    not the audit log, and not under a group of another name."""
    own_group = adapter_group(prefix, "GB")
    _read(secured, "adapter-gb", inbox_topic(prefix, "GB"), own_group)
    for topic in (inbox_topic(prefix, "RS"), outbox_topic(prefix, "RS"), audit_topic(prefix)):
        with refused("TopicAuthorizationFailed"):
            _read(secured, "adapter-gb", topic, own_group)
    with refused("GroupAuthorizationFailed"):
        _read(secured, "adapter-gb", inbox_topic(prefix, "GB"), adapter_group(prefix, "RS"))


def test_no_daemon_principal_creates_topics(secured: KafkaUnderTest, prefix: str) -> None:
    """Neither an adapter, the gateway nor the auditor may create a topic."""
    for user in ("adapter-gb", "gateway", "auditor"):
        security = secured.kafka_access.security(user)
        with refused("Authorization failed"):
            asyncio.run(
                create_topics(
                    secured.bootstrap, [TopicSpec(f"{prefix}rogue.{user}")], security=security
                )
            )


def test_the_gateway_reads_outboxes_and_writes_inboxes_audit_and_quarantine(
    secured: KafkaUnderTest, prefix: str
) -> None:
    """The gateway's grants, used: read an outbox in its group, write an inbox, the audit
    topic and the quarantine; it cannot read an inbox (only the recipient reads it)."""
    gateway_group = f"{prefix}gateway"
    _read(secured, "gateway", outbox_topic(prefix, "RS"), gateway_group)
    for topic in (inbox_topic(prefix, "RS"), audit_topic(prefix), quarantine_topic(prefix)):
        _write(secured, "gateway", topic)
    with refused("TopicAuthorizationFailed"):
        _read(secured, "gateway", inbox_topic(prefix, "RS"), gateway_group)


def test_the_auditor_reads_the_audit_log_and_nothing_else(
    secured: KafkaUnderTest, prefix: str
) -> None:
    """The auditor reads the audit topic in an ``auditor-`` group; it cannot write it, and
    cannot read the quarantine or an inbox."""
    _read(secured, "auditor", audit_topic(prefix), f"auditor-{uuid.uuid4().hex[:8]}")
    # with no Write anywhere it cannot even obtain an idempotent producer id
    with refused("ClusterAuthorizationFailed"):
        _write(secured, "auditor", audit_topic(prefix))
    for topic in (quarantine_topic(prefix), inbox_topic(prefix, "GB")):
        with refused("TopicAuthorizationFailed"):
            _read(secured, "auditor", topic, f"auditor-{uuid.uuid4().hex[:8]}")


def test_a_wrong_scram_password_isrefused(secured: KafkaUnderTest, prefix: str) -> None:
    """The right user with a wrong password never gets a session."""
    access = secured.kafka_access
    assert access.ca_file is not None
    wrong = ClientSecurity.sasl_ssl(
        ca_file=access.ca_file,
        mechanism="SCRAM-SHA-512",
        username="adapter-gb",
        password="not-the-password",
    )
    settings = ProducerSettings(
        bootstrap=secured.bootstrap, client_id="authz-wrong", security=wrong
    )

    async def run() -> None:
        async with open_producer(settings):
            pass

    with refused("Unable to bootstrap"):
        asyncio.run(run())


def test_a_client_without_tls_or_sasl_isrefused(secured: KafkaUnderTest) -> None:
    """The client listener speaks only SASL_SSL: a PLAINTEXT client gets no answer."""
    node = secured.cluster.record.nodes[0] if secured.cluster else None
    assert node is not None
    assert not answers_api_versions("127.0.0.1", node.client_port, timeout_s=2.0)


def _node_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context


def test_between_nodes_only_a_certificate_of_the_cluster_ca_is_accepted(
    cluster: ApacheCluster, secured: KafkaUnderTest, tmp_path: Path
) -> None:
    """The inter-node listener requires a client certificate from the cluster's CA: a node's
    own certificate is served, one with the same name from another CA is refused, and so is
    a client with none."""
    tls = cluster.root / "tls"
    node = cluster.record.nodes[0]
    port = node.internal_port
    own = _node_context(tls / "ca.pem", tls / "kafka-1.pem", tls / "kafka-1.key.pem")
    assert answers_api_versions("127.0.0.1", port, timeout_s=5.0, tls=own)

    foreign_dir = tmp_path / "foreign-ca"
    subprocess.run(
        ["/bin/sh", str(REPO / "deploy" / "tls" / "make-certs.sh"), str(foreign_dir)],
        env={"NODES": "kafka-1", "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    # trusts the real cluster CA, so only the client certificate differs
    foreign = _node_context(
        tls / "ca.pem", foreign_dir / "kafka-1.pem", foreign_dir / "kafka-1.key.pem"
    )
    assert not answers_api_versions("127.0.0.1", port, timeout_s=5.0, tls=foreign)
    anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls / "ca.pem"))
    assert not answers_api_versions("127.0.0.1", port, timeout_s=5.0, tls=anonymous)
