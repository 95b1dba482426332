"""One node of a three-node cluster cut off by the network, then healed, while reports flow.

A cluster of its own, whose node 3 is reached only through fault proxies (broker.checker):
clients, followers and controllers reach its client, inter-node and controller listeners
through three of them, and node 3 reaches the other two controllers through two more. Black-
holing all five cuts node 3 off from everyone's requests and from the quorum: its broker
heartbeats stop arriving, the controller fences it, and the partitions it led move to in-sync
replicas on nodes 1 and 2 (unclean election is off, so only those). Its own replica fetches
from the other leaders go out directly (Kafka gives a node one address per peer), which keeps
it a warm follower. When the proxies pass again, it rejoins. The history checker finds
nothing lost or doubled, and the audit log verifies and replays.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.soak.driver import unlimited_accords
from broker.checker import FaultProxy, Mode
from broker.config import acl_plan, outbox_topic, users_of
from broker.demo.federation import DEFAULT_PARTNERS, Federation
from broker.transport.admin import partition_leaders
from broker.transport.apache.cluster import ApacheCluster
from broker.transport.testing import KafkaUnderTest
from tests.e2e.harness import new_federation
from tests.faults.flow import RECIPIENTS, drain, run_stream

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CUT = 3
#: longer than the brokers' session (9 s), so the controller fences the node
CUT_S = 20.0
_PROXIES = ("CLIENT", "INTERNAL", "CONTROLLER", "to-1", "to-2")


@pytest.fixture
def partitionable(
    cluster: ApacheCluster, tmp_path: Path
) -> Iterator[tuple[ApacheCluster, dict[str, FaultProxy], Federation]]:
    """A three-node SASL_SSL cluster whose node 3 sits behind fault proxies, and a
    federation on it. (``cluster``, the session's, only makes sure the suite runs on one.)"""
    del cluster
    proxies = {name: FaultProxy() for name in _PROXIES}
    for proxy in proxies.values():
        proxy.start()
    own: ApacheCluster | None = None
    try:
        own = ApacheCluster.create(
            tmp_path / "cluster",
            nodes=3,
            security="sasl_ssl",
            users=users_of(acl_plan(DEFAULT_PARTNERS, prefix="xb.")),
            advertised={CUT: {name: proxies[name].port for name in _PROXIES[:3]}},
            controller_routes={CUT: {1: proxies["to-1"].port, 2: proxies["to-2"].port}},
        )
        cut = own.record.node(CUT)
        proxies["CLIENT"].upstream_port = cut.client_port
        proxies["INTERNAL"].upstream_port = cut.internal_port
        proxies["CONTROLLER"].upstream_port = cut.controller_port
        proxies["to-1"].upstream_port = own.record.node(1).controller_port
        proxies["to-2"].upstream_port = own.record.node(2).controller_port
        own.start()
        kafka = KafkaUnderTest(
            bootstrap=own.bootstrap, backend="apache", access=own.access(), cluster=own
        )
        federation = new_federation(
            tmp_path / "federation", kafka, accords=unlimited_accords(tmp_path / "accords")
        )
        yield own, proxies, federation
    finally:
        if own is not None:
            own.stop()
        for proxy in proxies.values():
            proxy.stop()


def _leaders(federation: Federation, topic: str) -> dict[int, tuple[int, tuple[int, ...]]]:
    return asyncio.run(
        partition_leaders(federation.bootstrap, topic, security=federation.access.security())
    )


def test_a_node_cut_off_and_healed_loses_and_doubles_nothing(
    partitionable: tuple[ApacheCluster, dict[str, FaultProxy], Federation], tmp_path: Path
) -> None:
    """After the second burst node 3 is cut off for 20 s, then healed; it leads nothing while
    cut off, and every report GB acked reaches RS, MK and XK exactly once."""
    own, proxies, federation = partitionable
    outbox = outbox_topic(federation.prefix, "GB")
    during: list[dict[int, tuple[int, tuple[int, ...]]]] = []
    with federation:
        for name in ("gateway", "GB", *RECIPIENTS):
            federation.start(name)

        def between(step: int) -> None:
            if step != 1:
                return
            for proxy in proxies.values():
                proxy.set_mode(Mode.BLACKHOLE)
            time.sleep(CUT_S)  # the partition itself, not a wait for an event
            during.append(_leaders(federation, outbox))
            for proxy in proxies.values():
                proxy.set_mode(Mode.PASS)

        driver = run_stream(federation, tmp_path / "gb.jsonl", stem="CUT", between=between)
        verdict = drain(federation, driver)
    assert verdict.passed, verdict.to_json()
    assert (len(verdict.lost), len(verdict.duplicated), len(verdict.unauthorised)) == (0, 0, 0)
    assert verdict.counts["failed"] == driver.submitted // 10
    (while_cut,) = during
    assert all(leader in (1, 2) for leader, _ in while_cut.values()), while_cut
    assert own.is_running(CUT)
