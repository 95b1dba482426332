"""Suites that only mean something on Apache Kafka: the authoriser, idempotence and
transactions, record limits, and broker faults of a replicated cluster.

They run with ``BROKER_TEST_KAFKA=apache`` (see README, "Apache Kafka"; ``.ci/run`` has a
step of its own for them). On another broker they are not collected, and the run's header
says so in one line, so nobody mistakes an embedded-only run for a run of these.
"""

from __future__ import annotations

import os

import pytest

from broker.transport.apache.cluster import ApacheCluster
from broker.transport.testing import KafkaUnderTest
from tests.conftest import KAFKA_ENV

_ON_APACHE = os.environ.get(KAFKA_ENV, "embedded").strip().startswith("apache")

#: nothing here is collected unless the session's broker is a local Apache Kafka cluster
collect_ignore_glob = [] if _ON_APACHE else ["*.py"]


def pytest_report_header() -> str | None:
    if _ON_APACHE:
        return None
    return (
        f"tests/apache: not run on this broker; run them with {KAFKA_ENV}=apache "
        "(README, 'Apache Kafka')"
    )


@pytest.fixture(scope="session")
def cluster(kafka: KafkaUnderTest) -> ApacheCluster:
    """The session's local Apache Kafka cluster (``BROKER_TEST_KAFKA=apache...``)."""
    if kafka.cluster is None:
        pytest.fail(f"tests/apache need {KAFKA_ENV}=apache[:...]", pytrace=False)
    return kafka.cluster


@pytest.fixture(scope="session")
def secured(kafka: KafkaUnderTest, cluster: ApacheCluster) -> KafkaUnderTest:
    """The session's cluster, which must be SASL_SSL with ACLs enforced."""
    if cluster.record.security != "sasl_ssl":
        pytest.fail(
            f"this suite needs a secured cluster: {KAFKA_ENV}=apache or apache:sasl_ssl",
            pytrace=False,
        )
    return kafka


@pytest.fixture(scope="session")
def replicated(kafka: KafkaUnderTest, cluster: ApacheCluster) -> KafkaUnderTest:
    """The session's cluster, which must have three nodes or more (replication 3, two in sync)."""
    if len(cluster.node_ids) < 3:
        pytest.fail(
            f"broker faults need three nodes: {KAFKA_ENV}=apache or apache:sasl_ssl:3",
            pytrace=False,
        )
    return kafka
