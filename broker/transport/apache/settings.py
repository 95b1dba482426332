"""Apache Kafka's broker settings for the exchange: the one table deploy/ and the local
cluster are both made from.

* :data:`CLUSTER_SETTINGS`: every cluster, wherever it runs. Durability (three replicas, two
  in sync, no unclean election), no topic created by accident, the record size limit, TLS
  versions. ``deploy/kafka/cluster.properties`` (compose) is rendered from it together with
  the next table, ``spec.kafka.config`` in ``deploy/k8s/kafka.yaml`` (Strimzi) equals it, and
  the local cluster starts from it; ``tests/unit/deploy_artifacts`` fails when they drift.
* :data:`SECURED_SETTINGS`: how a secured cluster authenticates and authorises: SCRAM-SHA-512
  over TLS for clients on listener ``CLIENT``, mutual TLS between nodes (``INTERNAL``) and to
  the quorum (``CONTROLLER``), the ``StandardAuthorizer`` denying whatever no ACL allows.
  Strimzi says the same in its own words (listener ``authentication: scram-sha-512``,
  ``authorization: simple``) and forbids these keys in ``config``.
* :data:`LOCAL_SETTINGS`: the local cluster only: threads and internal topics sized for a
  two-core machine shared with the tests, and quick consumer-group joins for tests.

Node-specific settings (ids, listeners, directories, key files) are not here: compose's
``start-node.sh`` and :mod:`broker.transport.apache.cluster` add them per node.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from broker import limits

__all__ = [
    "CLUSTER_SETTINGS",
    "LISTENERS",
    "LOCAL_SETTINGS",
    "SCRAM_MECHANISM",
    "SECURED_SETTINGS",
    "for_nodes",
    "render_properties",
]

#: the one SASL mechanism clients use (Strimzi provisions the same)
SCRAM_MECHANISM: Final = "SCRAM-SHA-512"
#: listener name -> its security protocol on a secured cluster
LISTENERS: Final = MappingProxyType({"CLIENT": "SASL_SSL", "INTERNAL": "SSL", "CONTROLLER": "SSL"})

CLUSTER_SETTINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "auto.create.topics.enable": "false",
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        # a lagging replica must never become leader and silently drop acknowledged records
        "unclean.leader.election.enable": "false",
        # one batch holding the largest record the exchange writes (broker.limits)
        "message.max.bytes": str(limits.KAFKA_MESSAGE_MAX_BYTES),
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
    }
)

SECURED_SETTINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in LISTENERS.items()),
        "inter.broker.listener.name": "INTERNAL",
        "controller.listener.names": "CONTROLLER",
        "ssl.keystore.type": "PEM",
        "ssl.truststore.type": "PEM",
        # clients check the brokers' names, brokers check each other's
        "ssl.endpoint.identification.algorithm": "https",
        "listener.name.internal.ssl.client.auth": "required",
        "listener.name.controller.ssl.client.auth": "required",
        # SCRAM credentials live in the metadata log, so only the client listener can use them
        "listener.name.client.sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"listener.name.client.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
    }
)

LOCAL_SETTINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        # two cores shared by the nodes, the daemons and the tests
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.replica.fetchers": "1",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.num.partitions": "6",
        "share.coordinator.state.topic.num.partitions": "1",
        # tests join groups with 3 s sessions and cannot wait out the default 3 s join delay
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "3000",
        # a stopped node is back in the ISR soon after it restarts
        "replica.lag.time.max.ms": "10000",
    }
)

#: settings whose value is a replica count, clamped to the nodes a small local cluster has
_REPLICA_COUNTS: Final = (
    "default.replication.factor",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "share.coordinator.state.topic.replication.factor",
)
_IN_SYNC_COUNTS: Final = ("min.insync.replicas", "transaction.state.log.min.isr")


def for_nodes(settings: Mapping[str, str], nodes: int) -> dict[str, str]:
    """``settings`` for a cluster of ``nodes``: replica counts at most ``nodes``, in-sync
    counts at most ``nodes - 1`` (at least 1), so one node may fail; unchanged from three on.
    """
    adjusted = dict(settings)
    for key in _REPLICA_COUNTS:
        if key in adjusted:
            adjusted[key] = str(min(int(adjusted[key]), nodes))
    for key in _IN_SYNC_COUNTS:
        if key in adjusted:
            adjusted[key] = str(max(1, min(int(adjusted[key]), nodes - 1)))
    return adjusted


def render_properties(settings: Mapping[str, str], *, header: str = "") -> str:
    """``settings`` as a Java properties file, in a stable order, ``header`` as comments."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for key, value in settings.items():
        if any(c in key for c in "=: \n") or "\n" in value:
            raise ValueError(f"cannot write {key!r} as one properties line")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"
