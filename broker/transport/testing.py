"""Helpers for tests that talk to a real Kafka-protocol broker (shipped, like structlog's).

:class:`KafkaUnderTest` is what the ``kafka`` pytest fixture returns: the bootstrap address
plus helpers that keep tests apart on one shared broker and settings tuned for quick tests.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Final

from broker.transport.kafka import ConsumerSettings, ProducerSettings

__all__ = ["TEST_SESSION_TIMEOUT_MS", "KafkaUnderTest"]

#: short enough that a group join (session / 2 on the embedded broker) takes about 1.5-2 s
TEST_SESSION_TIMEOUT_MS: Final = 3_000


@dataclasses.dataclass(frozen=True)
class KafkaUnderTest:
    """The broker a test talks to, and helpers that keep tests apart on a shared broker."""

    bootstrap: str
    #: ``embedded``, ``testcontainers`` or ``external``
    backend: str
    #: consumer-group session timeout for tests; Apache Kafka refuses one below its
    #: ``group.min.session.timeout.ms`` (6000 unless configured lower)
    session_timeout_ms: int = TEST_SESSION_TIMEOUT_MS

    def topic(self, stem: str) -> str:
        """A topic name no other test uses: ``test.<stem>.<random>``."""
        return f"test.{stem}.{uuid.uuid4().hex[:12]}"

    def group(self, stem: str) -> str:
        """A consumer group id no other test uses: ``test-<stem>-<random>``."""
        return f"test-{stem}-{uuid.uuid4().hex[:12]}"

    def producer_settings(self, *, client_id: str = "test-producer") -> ProducerSettings:
        """Producer settings for this broker (acks=all, no idempotence)."""
        return ProducerSettings(bootstrap=self.bootstrap, client_id=client_id)

    def consumer_settings(
        self, group_id: str, *, client_id: str = "test-consumer"
    ) -> ConsumerSettings:
        """Group-consumer settings for this broker, with a short session for quick joins."""
        return ConsumerSettings(
            bootstrap=self.bootstrap,
            group_id=group_id,
            client_id=client_id,
            session_timeout_ms=self.session_timeout_ms,
        )
