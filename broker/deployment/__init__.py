"""Deployment artefacts for a real Kafka cluster: ACLs for Apache Kafka and Strimzi.

Topic names and the provisioning plan are in :mod:`broker.config.topics`, beside the
configuration, because the daemons need them too.
"""

from __future__ import annotations

from broker.deployment.acls import (
    GATEWAY_PRINCIPAL,
    STRIMZI_API_VERSION,
    AclRule,
    Operation,
    PatternType,
    ResourceType,
    acl_plan,
    adapter_principal,
    render_kafka_acls,
    render_strimzi,
)

__all__ = [
    "GATEWAY_PRINCIPAL",
    "STRIMZI_API_VERSION",
    "AclRule",
    "Operation",
    "PatternType",
    "ResourceType",
    "acl_plan",
    "adapter_principal",
    "render_kafka_acls",
    "render_strimzi",
]
