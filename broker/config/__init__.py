"""Daemon configuration: one frozen, documented tree from one YAML file plus ``BROKER_*``
environment overrides, and the topic and consumer-group names derived from it.

    >>> config = load_config("deploy/examples/adapter-gb.yaml", env={})  # doctest: +SKIP
    >>> outbox_topic(config.kafka.topic_prefix, config.partner)          # doctest: +SKIP
    'xb.outbox.GB'

The override rule is documented in :mod:`broker.config._loader`; every field's default and
why it is safe is documented on the models and in ``schemas/config.schema.json``.
"""

from __future__ import annotations

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
    Config,
    GatewaySettings,
    KafkaSettings,
    KeySettings,
    LimitSettings,
    ObservabilitySettings,
    PlaintextSecurity,
    RegistrySettings,
    SaslSslSecurity,
    SecretSource,
    SpoolSettings,
    SslSecurity,
    StoreSettings,
)
from broker.config._security import kafka_client_security
from broker.config.acls import GATEWAY_PRINCIPAL, AclRule, acl_plan, adapter_principal, users_of
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
)

__all__ = [
    "DEFAULT_PREFIX",
    "ENV_PREFIX",
    "GATEWAY_PRINCIPAL",
    "MAX_CONFIG_BYTES",
    "OBSERVABILITY_HOST",
    "AccordSettings",
    "AclRule",
    "Config",
    "GatewaySettings",
    "KafkaSettings",
    "KeySettings",
    "LimitSettings",
    "ObservabilitySettings",
    "PlaintextSecurity",
    "RegistrySettings",
    "SaslSslSecurity",
    "SecretSource",
    "SpoolSettings",
    "SslSecurity",
    "StoreSettings",
    "TopicSpec",
    "acl_plan",
    "adapter_group",
    "adapter_principal",
    "audit_topic",
    "config_json_schema",
    "gateway_group",
    "inbox_topic",
    "kafka_client_security",
    "load_config",
    "outbox_topic",
    "quarantine_topic",
    "read_secret",
    "replication_for",
    "topic_plan",
    "users_of",
    "validate_partner",
    "validate_prefix",
]
