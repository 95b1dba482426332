"""One configuration type per daemon: what the adapter, the gateway and a witness each need.

A section a role needs is required by its type, and a section it does not use is refused, so
a file either runs that daemon or is refused with the field it lacks or must not have. The
daemons, ``broker deploy check-config --role`` and the published JSON Schema all read these
types, so they accept exactly the same files.

=========  ====================================================================================
role       sections (required in bold, in the file's terms)
=========  ====================================================================================
adapter    **partner**, kafka, **registry**, accords, **keys** (with **decryption_keys**),
           **store**, spool, observability, limits
gateway    kafka, **registry**, accords, **keys**, **store**, gateway, observability, limits
witness    kafka, **registry**, **keys**, **witness**, observability
=========  ====================================================================================

A file names no role: :func:`role_of` reads it from the shape (``partner`` makes an adapter, a
``witness`` section a witness, anything else a gateway), for the commands that take any
daemon's configuration. The three shapes exclude each other, which is what lets the published
schema say ``oneOf``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Discriminator, Tag, TypeAdapter, model_validator

from broker.config._base import Partner, Section
from broker.config._kafka import KafkaSettings
from broker.config._model import (
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

__all__ = [
    "ROLES",
    "AdapterConfig",
    "BaseDaemonConfig",
    "DaemonConfig",
    "GatewayConfig",
    "Role",
    "TrustingConfig",
    "WitnessConfig",
    "any_role",
    "role_of",
]

Role = Literal["adapter", "gateway", "witness"]


class BaseDaemonConfig(Section):
    """What every daemon has: Kafka, the signed registry, health and logs."""

    role: ClassVar[Role]

    kafka: KafkaSettings = KafkaSettings()
    registry: RegistrySettings
    observability: ObservabilitySettings = ObservabilitySettings()


class _DecidingConfig(BaseDaemonConfig):
    """A daemon that decides by accords: unsigned accords only on a laptop's own broker."""

    accords: AccordSettings = AccordSettings()

    @model_validator(mode="after")
    def _unsigned_accords_stay_local(self) -> Self:
        if self.accords.unsafe_allow_unsigned and not self.kafka.is_local_plaintext:
            raise ValueError(
                "accords.unsafe_allow_unsigned: only with PLAINTEXT to a loopback broker (a "
                "laptop demo); with any other Kafka, an accord nobody signed could decide what "
                "crosses a border"
            )
        return self


class AdapterConfig(_DecidingConfig):
    """A partner's adapter: it seals what its agency sends and opens what it receives."""

    role: ClassVar[Role] = "adapter"

    partner: Partner
    """The partner this adapter serves (two capitals, e.g. GB)."""
    keys: AdapterKeySettings
    store: AdapterStoreSettings
    spool: SpoolSettings | None = None
    """Optional: without it, messages are submitted through the API only."""
    limits: LimitSettings = LimitSettings()


class GatewayConfig(_DecidingConfig):
    """The policy gateway: it decides on every envelope by its labels and writes the audit log.
    It holds no decryption key."""

    role: ClassVar[Role] = "gateway"

    keys: KeySettings
    store: StoreSettings
    """The de-duplication record, kept across restarts."""
    gateway: GatewaySettings = GatewaySettings()
    limits: LimitSettings = LimitSettings()

    @property
    def gateway_group_id(self) -> str:
        """The gateway's consumer group: the configured one, or ``<prefix>gateway``."""
        return self.gateway.group_id or f"{self.kafka.topic_prefix}gateway"


class WitnessConfig(BaseDaemonConfig):
    """A witness of the audit log: it follows the audit topic and cosigns every checkpoint it
    proves consistent with all it has seen. It decides nothing and holds no decryption key."""

    role: ClassVar[Role] = "witness"

    keys: KeySettings
    witness: WitnessSettings


DaemonConfig = AdapterConfig | GatewayConfig | WitnessConfig
"""Any daemon's configuration."""

TrustingConfig = AdapterConfig | GatewayConfig
"""A daemon that holds the registry and accords in force, with its trust memory beside its
store (:func:`broker.config.hold_trust`)."""

ROLES: Mapping[Role, type[DaemonConfig]] = MappingProxyType(
    {"adapter": AdapterConfig, "gateway": GatewayConfig, "witness": WitnessConfig}
)


def role_of(data: Any) -> Role:
    """The role a configuration is written for, read from its shape: ``partner`` makes an
    adapter, a ``witness`` section a witness, anything else a gateway."""
    if isinstance(data, Mapping):
        if "partner" in data:
            return "adapter"
        if "witness" in data:
            return "witness"
    elif isinstance(data, BaseDaemonConfig):
        return data.role
    return "gateway"


any_role: TypeAdapter[DaemonConfig] = TypeAdapter(
    Annotated[
        Annotated[AdapterConfig, Tag("adapter")]
        | Annotated[GatewayConfig, Tag("gateway")]
        | Annotated[WitnessConfig, Tag("witness")],
        Discriminator(role_of),
    ]
)
"""Every role's configuration as one type, the role read by :func:`role_of` (its JSON Schema
is the published ``oneOf``)."""
