"""Broker faults on a replicated Apache Kafka cluster, while reports flow (docs/RELIABILITY.md).

Three nodes, every topic with three replicas, two in sync, unclean leader election off, the
daemons logging in with SCRAM over TLS under the ACL plan: the leader of an outbox partition
and the leader of the audit partition are SIGKILLed mid-stream and restarted later, and the
whole cluster is stopped and started again from its disks. After each, the history checker
finds 0 lost, 0 duplicated, 0 unauthorised, and the audit log verifies and replays
(``drain``). A node cut off by the network is in test_partitioned_node.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from benchmarks.soak.driver import unlimited_accords
from broker.config import audit_topic, outbox_topic
from broker.demo.federation import Federation
from broker.transport.admin import partition_leaders
from broker.transport.apache.cluster import ApacheCluster
from broker.transport.testing import KafkaUnderTest
from tests.e2e.harness import new_federation
from tests.faults.flow import RECIPIENTS, drain, run_stream

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: a restarted node must be back in every ISR within this (a bound on a hang, not a goal)
_REJOIN_S = 120.0


@pytest.fixture
def federation(replicated: KafkaUnderTest, tmp_path: Path) -> Federation:
    """A federation on the three-node cluster: its topics have three replicas, two in sync."""
    return new_federation(
        tmp_path / "federation", replicated, accords=unlimited_accords(tmp_path / "accords")
    )


def _leader(federation: Federation, topic: str, partition: int = 0) -> tuple[int, int]:
    """(leader, ISR size) of one partition now."""
    security = federation.access.security()
    leaders = asyncio.run(partition_leaders(federation.bootstrap, topic, security=security))
    leader, isr = leaders[partition]
    return leader, len(isr)


def _wait_whole(federation: Federation, topics: list[str]) -> None:
    """Wait until every partition of ``topics`` has a leader and all three replicas in sync."""
    deadline = time.monotonic() + _REJOIN_S
    security = federation.access.security()
    while True:
        states = [
            state
            for topic in topics
            for state in asyncio.run(
                partition_leaders(federation.bootstrap, topic, security=security)
            ).values()
        ]
        if all(leader >= 0 and len(isr) == 3 for leader, isr in states):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the cluster did not heal within {_REJOIN_S:.0f} s: {states}")
        time.sleep(0.5)  # another process's state: polling is the only way to see it


def _topics_replicated_three_two(federation: Federation) -> None:
    for spec in federation.topics(brokers=3):
        assert spec.replication_factor == 3
        assert spec.configs["min.insync.replicas"] == "2"
        assert spec.configs["unclean.leader.election.enable"] == "false"


@pytest.mark.parametrize("which", ["outbox", "audit"])
def test_the_leader_of_a_partition_sigkilled_mid_stream_loses_and_doubles_nothing(
    federation: Federation, cluster: ApacheCluster, tmp_path: Path, which: str
) -> None:
    """The node leading GB's outbox partition 0 (or the audit partition) is SIGKILLed after
    the second burst and started again after the fourth: leadership moves to an in-sync
    replica, producers and consumers follow it, and every acked report arrives once."""
    topic = (
        outbox_topic(federation.prefix, "GB")
        if which == "outbox"
        else audit_topic(federation.prefix)
    )
    stem = {"outbox": "LEADOUTBOX", "audit": "LEADAUDIT"}[which]
    _topics_replicated_three_two(federation)
    killed: list[int] = []
    with federation:
        for name in ("gateway", "GB", *RECIPIENTS):
            federation.start(name)

        def between(step: int) -> None:
            if step == 1:
                leader, in_sync = _leader(federation, topic)
                assert in_sync == 3
                cluster.kill_node(leader)
                killed.append(leader)
            elif step == 3:
                cluster.start_node(killed[0])

        driver = run_stream(federation, tmp_path / "gb.jsonl", stem=stem, between=between)
        verdict = drain(federation, driver)
    assert verdict.passed, verdict.to_json()
    assert (len(verdict.lost), len(verdict.duplicated), len(verdict.unauthorised)) == (0, 0, 0)
    # only the reports GB's own accord refuses failed: the rest were acked and delivered
    assert verdict.counts["failed"] == driver.submitted // 10
    _wait_whole(federation, [topic])
    new_leader, _ = _leader(federation, topic)
    assert killed
    assert cluster.is_running(killed[0])
    print(f"\nkilled node {killed[0]} (leader of {topic}); leader now {new_leader}")


def test_the_whole_cluster_stopped_and_started_from_its_disks_loses_nothing(
    federation: Federation, cluster: ApacheCluster, tmp_path: Path
) -> None:
    """After the second burst every node is stopped (SIGTERM) and started again on the same
    ports and log directories; the daemons reconnect by themselves and nothing acked before
    or after is lost or doubled."""
    pids_before: list[int | None] = []
    with federation:
        for name in ("gateway", "GB", *RECIPIENTS):
            federation.start(name)

        def between(step: int) -> None:
            if step == 1:
                pids_before.extend(n.pid for n in cluster.record.nodes)
                cluster.stop()
                assert not any(cluster.is_running(n) for n in cluster.node_ids)
                cluster.start()

        driver = run_stream(federation, tmp_path / "gb.jsonl", stem="RESTART", between=between)
        verdict = drain(federation, driver)
    assert verdict.passed, verdict.to_json()
    assert (len(verdict.lost), len(verdict.duplicated), len(verdict.unauthorised)) == (0, 0, 0)
    # only the reports GB's own accord refuses failed: the rest were acked and delivered
    assert verdict.counts["failed"] == driver.submitted // 10
    assert set(pids_before).isdisjoint(n.pid for n in cluster.record.nodes)
