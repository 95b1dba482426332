"""Broker bounce on persistent storage (R2): the federation's broker keeps its data in a bucket
on a loopback S3 server and is stopped mid-stream, once with SIGTERM and once with SIGKILL,
then restarted on the same port and the same bucket while reports keep flowing (with the
memory engine instead, the same run loses every view sent after the first bounce). Every daemon
reconnects to the address it knows; the history checker finds nothing lost, doubled or
leaked, and every acked view stored exactly once."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.soak.driver import SpoolDriver, unlimited_accords
from broker.demo.federation import Federation
from broker.transport.embedded import EmbeddedBroker, free_port
from broker.transport.objectstore import LoopbackS3
from broker.transport.testing import KafkaUnderTest
from tests.e2e.harness import new_federation

from .flow import RECIPIENTS, SEED, drain

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: reports in this test (each to RS, MK and XK, every tenth TLP:AMBER to XK, which GB's own
#: adapter must refuse); fewer than the other fault tests, as every bounce costs each daemon
#: a reconnect and a group rejoin
MESSAGES = 60
#: the stream's pace: the bounces land while reports are being sealed, produced and consumed
RATE_PER_S = 10.0
#: (report number before which the broker is bounced, how); a seeded offset is added
BOUNCES = ((15, "SIGTERM"), (40, "SIGKILL"))


@pytest.fixture
def on_s3(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, Federation]]:
    """A broker of its own on a loopback S3 bucket, on a port outside the ephemeral range (so
    no reconnecting client can take it while the broker is down), and a federation on it."""
    with LoopbackS3() as s3:
        broker = EmbeddedBroker(port=free_port(outside_ephemeral=True), storage=s3.storage())
        with broker:
            kafka = KafkaUnderTest(bootstrap=broker.bootstrap, backend="embedded")
            federation = new_federation(
                tmp_path / "federation", kafka, accords=unlimited_accords(tmp_path / "accords")
            )
            yield broker, federation


def test_broker_bounced_mid_stream_on_s3_loses_and_doubles_nothing(
    on_s3: tuple[EmbeddedBroker, Federation], tmp_path: Path
) -> None:
    """Reports flow at a steady pace; at two seeded points the broker is stopped (SIGTERM,
    then SIGKILL) and restarted on the same port and storage from a second thread, so the
    stream goes on while it is down and restarting. Every report GB acked reaches RS, MK and
    XK exactly once, every report GB itself refused is a ``fail``, no recipient rejected
    anything, and nothing was left without an outcome."""
    broker, federation = on_s3
    rng = random.Random(SEED)
    triggers = {number + rng.randrange(5): how for number, how in BOUNCES}
    pids = [broker.pid]

    def bounce(how: str) -> None:
        if how == "SIGTERM":
            broker.stop()
        else:
            broker.kill()
        broker.start()
        pids.append(broker.pid)

    with federation:
        for name in ("gateway", "GB", *RECIPIENTS):
            federation.start(name)
        driver = SpoolDriver(federation, tmp_path / "gb.jsonl")
        bouncer: threading.Thread | None = None
        for number in range(MESSAGES):
            if number in triggers:
                if bouncer is not None:
                    bouncer.join()
                bouncer = threading.Thread(target=bounce, args=(triggers[number],))
                bouncer.start()
            key = f"GB-BOUNCE-{number:05d}"
            if number % 10 == 9:
                driver.submit(key, ["XK"], allowed=[])
            else:
                driver.submit(key, RECIPIENTS)
            driver.poll()
            time.sleep(1 / RATE_PER_S)  # the stream's pace, not a wait for an event
        assert bouncer is not None
        bouncer.join()
        verdict = drain(federation, driver)
    assert len(set(pids)) == len(BOUNCES) + 1  # the broker process really was replaced twice
    assert verdict.passed, verdict.to_json()
    assert verdict.counts["failed"] == MESSAGES // 10
    assert verdict.counts["acked"] == MESSAGES - MESSAGES // 10
    assert verdict.indeterminate == 0
    assert verdict.rejected_by_recipient == ()
    # one stored (report, recipient) pair per expected view; with 0 duplicated: exactly once
    assert len(verdict.lags_s) == driver.expected_views
