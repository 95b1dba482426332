"""Network faults between every client and the broker, through the TCP fault proxy (R5): a
partition (black-hole) longer than the group session, added latency, and bursts of
connection resets, while reports flow. The broker advertises the proxy's address, so the
gateway and every adapter reach it only through the proxy. Nothing acked is lost, nothing
is doubled, and the history check passes once the network heals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.soak.driver import unlimited_accords
from broker.checker import FaultProxy, Mode
from broker.demo.federation import Federation
from broker.transport.embedded import EmbeddedBroker
from broker.transport.testing import KafkaUnderTest
from tests.e2e.harness import new_federation

from .flow import RECIPIENTS, drain, run_stream

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: (mode, seconds, latency) applied after each burst; the last step heals
SCHEDULE: tuple[tuple[Mode, float, float], ...] = (
    (Mode.BLACKHOLE, 10.0, 0.0),
    (Mode.LATENCY, 10.0, 0.2),
    (Mode.RESET, 2.0, 0.0),
    (Mode.PASS, 1.0, 0.0),
    (Mode.RESET, 2.0, 0.0),
    (Mode.BLACKHOLE, 4.0, 0.0),
)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[FaultProxy, Federation]]:
    """A broker of its own that advertises the proxy, and a federation bootstrapped there."""
    with FaultProxy() as proxy:
        broker = EmbeddedBroker(port=0, advertised_port=proxy.port)
        broker.start()
        try:
            proxy.upstream_port = broker.port
            kafka = KafkaUnderTest(bootstrap=f"127.0.0.1:{proxy.port}", backend="embedded")
            federation = new_federation(
                tmp_path / "federation", kafka, accords=unlimited_accords(tmp_path / "accords")
            )
            yield proxy, federation
        finally:
            broker.stop()


def test_partition_latency_and_resets_lose_and_double_nothing(
    proxied: tuple[FaultProxy, Federation], tmp_path: Path
) -> None:
    """Each burst of reports is followed by a network fault of the schedule; after the last
    the network heals and the history check passes."""
    proxy, federation = proxied
    with federation:
        for name in ("gateway", "GB", *RECIPIENTS):
            federation.start(name)

        def between(step: int) -> None:
            mode, seconds, latency = SCHEDULE[step]
            proxy.set_mode(mode, latency_s=latency)
            time.sleep(seconds)  # the fault window itself, not a wait for an event
            proxy.set_mode(Mode.PASS)

        driver = run_stream(
            federation, tmp_path / "gb.jsonl", stem="NET", between=between, steps=len(SCHEDULE)
        )
        verdict = drain(federation, driver)
        assert verdict.passed, verdict.to_json()
        assert proxy.connections > len(RECIPIENTS) + 2  # the resets forced reconnections
