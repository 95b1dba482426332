"""Daemon configuration: one frozen, documented tree per role (adapter, gateway, witness) from
one YAML file plus ``BROKER_*`` environment overrides, and the topic and consumer-group names
derived from it.

    >>> config = load_config("deploy/examples/adapter-gb.yaml", AdapterConfig)  # doctest: +SKIP
    >>> outbox_topic(config.kafka.topic_prefix, config.partner)                # doctest: +SKIP
    'xb.outbox.GB'

The override rule is documented in :mod:`broker.config._loader`; every field's default and
why it is safe is documented on the models and in ``schemas/config.schema.json``.
"""

from __future__ import annotations

from broker.config._base import SecretSource
from broker.config._kafka import KafkaSettings, PlaintextSecurity, SaslSslSecurity, SslSecurity
from broker.config._loader import (
    ENV_PREFIX,
    MAX_CONFIG_BYTES,
    config_json_schema,
    load_config,
    read_secret,
)
from broker.config._model import (
    OBSERVABILITY_HOST,
    AccordSettings,
    AdapterKeySettings,
    AdapterStoreSettings,
    GatewaySettings,
    KeySettings,
    LimitSettings,
    ObservabilitySettings,
    RegistrySettings,
    SpoolSettings,
    StoreSettings,
    WitnessSettings,
)
from broker.config._security import kafka_client_security
from broker.config.acls import GATEWAY_PRINCIPAL, AclRule, acl_plan, adapter_principal, users_of
from broker.config.roles import (
    ROLES,
    AdapterConfig,
    BaseDaemonConfig,
    DaemonConfig,
    GatewayConfig,
    Role,
    TrustingConfig,
    WitnessConfig,
    role_of,
)
from broker.config.topics import (
    DEFAULT_PREFIX,
    TopicSpec,
    adapter_group,
    audit_topic,
    gateway_group,
    inbox_topic,
    outbox_topic,
    quarantine_topic,
    replication_for,
    topic_plan,
    validate_partner,
    validate_prefix,
    witness_group,
    witness_topic,
)
from broker.config.trust import (
    TrustOnFile,
    hold_trust,
    read_registry,
    read_trust,
    trust_state_path,
)

__all__ = [
    "DEFAULT_PREFIX",
    "ENV_PREFIX",
    "GATEWAY_PRINCIPAL",
    "MAX_CONFIG_BYTES",
    "OBSERVABILITY_HOST",
    "ROLES",
    "AccordSettings",
    "AclRule",
    "AdapterConfig",
    "AdapterKeySettings",
    "AdapterStoreSettings",
    "BaseDaemonConfig",
    "DaemonConfig",
    "GatewayConfig",
    "GatewaySettings",
    "KafkaSettings",
    "KeySettings",
    "LimitSettings",
    "ObservabilitySettings",
    "PlaintextSecurity",
    "RegistrySettings",
    "Role",
    "SaslSslSecurity",
    "SecretSource",
    "SpoolSettings",
    "SslSecurity",
    "StoreSettings",
    "TopicSpec",
    "TrustOnFile",
    "TrustingConfig",
    "WitnessConfig",
    "WitnessSettings",
    "acl_plan",
    "adapter_group",
    "adapter_principal",
    "audit_topic",
    "config_json_schema",
    "gateway_group",
    "hold_trust",
    "inbox_topic",
    "kafka_client_security",
    "load_config",
    "outbox_topic",
    "quarantine_topic",
    "read_registry",
    "read_secret",
    "read_trust",
    "replication_for",
    "role_of",
    "topic_plan",
    "trust_state_path",
    "users_of",
    "validate_partner",
    "validate_prefix",
    "witness_group",
    "witness_topic",
]
