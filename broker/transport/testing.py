"""Helpers for tests that talk to a real Kafka-protocol broker (shipped, like structlog's).

:class:`KafkaUnderTest` is what the ``kafka`` pytest fixture returns: how to reach the broker
(:class:`~broker.transport.access.KafkaAccess`: address, engine, credentials), helpers that
keep tests apart on one shared broker, and settings tuned for quick tests. Its clients use the
cluster's administrator on a secured cluster: tests observe and arrange; the daemons under
test use the principals the ACL plan names.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING, Final

from broker.transport.access import Engine, KafkaAccess
from broker.transport.kafka import ConsumerSettings, ProducerSettings
from broker.transport.security import ClientSecurity

if TYPE_CHECKING:
    from broker.transport.apache.cluster import ApacheCluster

__all__ = ["TEST_SESSION_TIMEOUT_MS", "KafkaUnderTest"]

#: short enough that a group join (session / 2 on the embedded broker) takes about 1.5-2 s
TEST_SESSION_TIMEOUT_MS: Final = 3_000


@dataclasses.dataclass(frozen=True)
class KafkaUnderTest:
    """The broker a test talks to, and helpers that keep tests apart on a shared broker."""

    bootstrap: str
    #: ``embedded``, ``apache``, ``testcontainers`` or ``external``
    backend: str
    #: consumer-group session timeout for tests; Apache Kafka refuses one below its
    #: ``group.min.session.timeout.ms`` (6000 unless configured lower)
    session_timeout_ms: int = TEST_SESSION_TIMEOUT_MS
    #: how to reach it; by default PLAINTEXT to ``bootstrap`` on the embedded engine
    access: KafkaAccess | None = None
    #: the local Apache Kafka cluster behind it, for tests that stop and start its nodes
    cluster: ApacheCluster | None = None

    @property
    def kafka_access(self) -> KafkaAccess:
        """How the exchange's processes reach this broker."""
        if self.access is not None:
            return self.access
        engine: Engine = "embedded" if self.backend == "embedded" else "apache"
        return KafkaAccess(bootstrap=self.bootstrap, engine=engine)

    @property
    def security(self) -> ClientSecurity:
        """The tests' own clients' security: the administrator's on a secured cluster."""
        return self.kafka_access.security()

    def topic(self, stem: str) -> str:
        """A topic name no other test uses: ``test.<stem>.<random>``."""
        return f"test.{stem}.{uuid.uuid4().hex[:12]}"

    def group(self, stem: str) -> str:
        """A consumer group id no other test uses: ``test-<stem>-<random>``."""
        return f"test-{stem}-{uuid.uuid4().hex[:12]}"

    def producer_settings(self, *, client_id: str = "test-producer") -> ProducerSettings:
        """Producer settings for this broker (acks=all; idempotent where the engine can)."""
        return ProducerSettings(
            bootstrap=self.bootstrap,
            client_id=client_id,
            enable_idempotence=self.kafka_access.capabilities.idempotence,
            security=self.security,
        )

    def consumer_settings(
        self, group_id: str, *, client_id: str = "test-consumer"
    ) -> ConsumerSettings:
        """Group-consumer settings for this broker, with a short session for quick joins."""
        return ConsumerSettings(
            bootstrap=self.bootstrap,
            group_id=group_id,
            client_id=client_id,
            session_timeout_ms=self.session_timeout_ms,
            security=self.security,
        )
