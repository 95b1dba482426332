"""Fault-injection tests: a federation of real daemon processes per test, faults injected
while reports flow, and the history checker's verdict (docs/RELIABILITY.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.soak.driver import unlimited_accords
from broker.demo.federation import Federation
from broker.transport.testing import KafkaUnderTest
from tests.e2e.harness import new_federation


@pytest.fixture
def federation(kafka: KafkaUnderTest, tmp_path: Path) -> Federation:
    """A federation with its own topics on the session broker, rate limits lifted."""
    return new_federation(
        tmp_path / "federation", kafka, accords=unlimited_accords(tmp_path / "accords")
    )
