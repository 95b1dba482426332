"""The running exchange, end to end: a provisioned federation whose daemons are real processes
on the session's Kafka-protocol broker (the ``kafka`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from broker.demo.federation import Federation
from broker.transport.testing import KafkaUnderTest

from .harness import new_federation


@pytest.fixture(scope="module")
def exchange(
    kafka: KafkaUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    """The gateway and the adapters of GB, RS, MK and XK, running (TR and AL are not)."""
    with new_federation(tmp_path_factory.mktemp("federation"), kafka) as federation:
        for name in ("gateway", "GB", "RS", "MK", "XK"):
            federation.start(name)
        yield federation
