"""The configuration tree of both daemons: one frozen, strict model per section.

Every default is chosen so that a forgotten setting fails closed: nothing listens on a public
interface, nothing unsigned is trusted, no secret is written in the file itself, and the replay
window always outlives the acceptance window. Each field's description says why its default is
safe; the same text appears in ``schemas/config.schema.json``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from broker.config.topics import validate_prefix
from broker.envelope import MAX_ENVELOPE_BYTES
from broker.ids import PartnerCode, partner_code
from broker.transport.access import ENGINES, Capabilities, Engine

__all__ = [
    "AccordSettings",
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
]

#: the only address health and metrics ever bind to: they are for the local supervisor
OBSERVABILITY_HOST = "127.0.0.1"

_HOST_PORT_RE = re.compile(
    r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})):(?P<port>\d{1,5})$"
)
_ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _to_path(value: object, info: ValidationInfo) -> Path:
    # Relative paths are read against the configuration file's directory, not the working
    # directory, so a unit file and a shell reading the same file mean the same files.
    if isinstance(value, Path):
        path = value
    elif isinstance(value, str) and value and "\x00" not in value:
        try:
            path = Path(value).expanduser()
        except RuntimeError:  # "~name/..." for a user this machine does not know
            raise ValueError(f"cannot expand {value.split('/', 1)[0]!r}: no such user") from None
    else:
        raise ValueError("a path is a non-empty string")
    base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    if not path.is_absolute() and isinstance(base, Path):
        path = base / path
    return path


FilePath = Annotated[Path, BeforeValidator(_to_path)]
"""A filesystem path; relative paths resolve against the configuration file's directory."""


def _to_partner(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("a partner code is a string of two capital letters")  # noqa: TRY004 - pydantic wants ValueError
    return partner_code(value)


Partner = Annotated[PartnerCode, BeforeValidator(_to_partner)]


class _Section(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        str_max_length=4096,
        validate_default=True,
        use_attribute_docstrings=True,
    )


class SecretSource(_Section):
    """Where a secret is read from at start-up: a file or an environment variable, never inline.

    The configuration file only names the place, so the file can be shown, logged and
    committed without disclosing anything.
    """

    file: FilePath | None = None
    """A file holding the secret (one trailing newline is ignored); keep it mode 0600."""
    env: str | None = None
    """The name of an environment variable holding the secret."""

    @field_validator("env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME_RE.fullmatch(value):
            raise ValueError("an environment variable name is capitals, digits and underscores")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretSource:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of 'file' or 'env'")
        return self


class PlaintextSecurity(_Section):
    """No transport security: only for the embedded broker on loopback, or with the unsafe flag.

    Envelopes still protect every message end to end; transport security is defence in depth.
    """

    protocol: Literal["PLAINTEXT"] = "PLAINTEXT"
    unsafe_allow_remote: bool = False
    """Allow PLAINTEXT to a non-loopback broker. Off: credentials-free plaintext to a network
    host is refused unless someone says so in writing."""


class _Tls(_Section):
    ca_file: FilePath
    """The CA bundle that signs the brokers' certificates (never the system store: a private
    cluster has a private CA, and trusting every public CA would widen who can impersonate it)."""
    cert_file: FilePath | None = None
    """The client certificate for mTLS; give it together with ``key_file``."""
    key_file: FilePath | None = None
    """The client certificate's private key (unencrypted PEM, mode 0600); with ``cert_file``."""

    @model_validator(mode="after")
    def _pair(self) -> _Tls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("'cert_file' and 'key_file' go together (mTLS) or not at all")
        return self


class SslSecurity(_Tls):
    """TLS to the brokers, optionally with a client certificate (mTLS) as the identity."""

    protocol: Literal["SSL"]


class SaslSslSecurity(_Tls):
    """TLS plus SASL/SCRAM: the principal is ``User:<username>``."""

    protocol: Literal["SASL_SSL"]
    mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    """The SCRAM variant; SHA-512 by default, the one Strimzi provisions."""
    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    """The SCRAM user; the generated ACLs name ``adapter-<code>``, ``gateway``, ``auditor``."""
    password: SecretSource
    """Where the password is read from; a password written in the file is refused."""


Security = Annotated[
    PlaintextSecurity | SslSecurity | SaslSslSecurity, Field(discriminator="protocol")
]


class KafkaSettings(_Section):
    """How to reach Kafka and which names to use there."""

    bootstrap: Annotated[tuple[str, ...], Field(min_length=1, max_length=64)] = ("127.0.0.1:9092",)
    """Bootstrap servers as ``host:port``; a comma-separated string is accepted. The default is
    loopback, so a missing setting never reaches out to a network host."""
    topic_prefix: str = "xb."
    """Prefix of every topic and consumer-group name: lowercase words, each ending in a dot."""
    security: Security = PlaintextSecurity()
    """PLAINTEXT (loopback only unless unsafe_allow_remote), SSL (mTLS) or SASL_SSL (SCRAM)."""
    client_id: Annotated[str, Field(pattern=_NAME_RE.pattern)] = "broker"
    """The Kafka client id, for the brokers' logs and quotas."""
    session_timeout_ms: Annotated[int, Field(ge=3_000, le=300_000)] = 10_000
    """Consumer-group session timeout: a dead consumer's partitions move within this time."""
    request_timeout_ms: Annotated[int, Field(ge=1_000, le=300_000)] = 30_000
    """How long a request may wait for a broker before it counts as failed and is retried."""
    engine: Engine = "apache"
    """The broker's engine: ``apache`` (Apache Kafka: idempotent producers, so a retried send
    is never written twice) or ``embedded`` (the development broker, Tansu, which refuses
    idempotence; de-duplication covers the repeats)."""

    @property
    def capabilities(self) -> Capabilities:
        """What the engine serves beyond plain produce and consume."""
        return ENGINES[self.engine]

    @field_validator("bootstrap", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list):
            return tuple(value)
        return value

    @field_validator("bootstrap")
    @classmethod
    def _host_ports(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            match = _HOST_PORT_RE.fullmatch(item)
            if match is None or not 1 <= int(match["port"]) <= 65_535:
                raise ValueError(f"{item!r} is not host:port")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return validate_prefix(value, error=ValueError)

    @model_validator(mode="after")
    def _plaintext_stays_local(self) -> KafkaSettings:
        security = self.security
        if isinstance(security, PlaintextSecurity) and not security.unsafe_allow_remote:
            remote = [b for b in self.bootstrap if not _is_loopback(b.rsplit(":", 1)[0])]
            if remote:
                raise ValueError(
                    f"PLAINTEXT to non-loopback {', '.join(remote)}: use SSL or SASL_SSL, or set "
                    "security.unsafe_allow_remote"
                )
        return self


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RegistrySettings(_Section):
    """The signed partner registry and the roots it must chain to."""

    path: FilePath
    """The signed registry file."""
    trusted_roots: FilePath
    """The root public keys, distributed out of band, that must sign the registry."""


class AccordSettings(_Section):
    """The signed accords (sharing policies) in force. None configured: nothing may flow."""

    paths: Annotated[tuple[FilePath, ...], Field(max_length=256)] = ()
    """Individual accord files."""
    dir: FilePath | None = None
    """A directory whose ``*.yaml`` files are all accords."""
    unsafe_allow_unsigned: bool = False
    """Development only: accept accords without valid signatures, with a warning on every use.
    Off, so a policy nobody signed can never decide what crosses a border."""

    @field_validator("paths", mode="before")
    @classmethod
    def _as_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


class KeySettings(_Section):
    """This daemon's private keys (encrypted PKCS#8) and where their passphrase comes from."""

    signing_key: FilePath
    """The signing key: the adapter signs envelopes, the gateway signs audit records."""
    decryption_keys: Annotated[tuple[FilePath, ...], Field(max_length=16)] = ()
    """Adapters' KEM private keys, newest first; more than one only while rotating."""
    passphrase: SecretSource
    """Where the key files' passphrase is read from."""

    @field_validator("decryption_keys", mode="before")
    @classmethod
    def _as_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


class StoreSettings(_Section):
    """The receiving adapter's durable local store and onward delivery."""

    path: FilePath
    """The SQLite database (created mode 0600): inbox, de-duplication record."""
    delivery_dir: FilePath | None = None
    """If set, each verified message is also written here for the agency's systems."""
    webhook_url: Annotated[str, Field(max_length=2048)] | None = None
    """If set, each verified message is POSTed here; https, or http to loopback only."""
    retention_days: Annotated[int, Field(ge=1, le=3_650)] = 30
    """Messages without their own expiry are crypto-shredded after this many days: short,
    because what is not kept cannot leak."""

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = re.fullmatch(r"(https?)://(\[[^\]]+\]|[^/:?#@]+)(:\d{1,5})?(/[^\s]*)?", value)
        if match is None:
            raise ValueError("not an http(s) URL with a host")
        if match[1] == "http" and not _is_loopback(match[2]):
            raise ValueError("plain http is allowed only to loopback; use https")
        return value


class SpoolSettings(_Section):
    """The directory an adapter watches for messages to send."""

    dir: FilePath
    """Files appear in ``incoming/`` beneath it, then move to ``sent/`` (at least one recipient's
    envelope was sent) or ``rejected/`` (nothing was sent; ``<name>.reason`` says why)."""


class GatewaySettings(_Section):
    """The policy gateway's consumer group and audit checkpoints."""

    group_id: Annotated[str, Field(pattern=_NAME_RE.pattern)] | None = None
    """The consumer group of all gateway instances; default ``<prefix>gateway``, the name the
    generated ACLs grant."""
    checkpoint_interval_seconds: Annotated[int, Field(ge=1, le=86_400)] = 60
    """How often a signed checkpoint of the audit log is published: a minute bounds how long
    an entry stays uncommitted to a signed head."""
    transactional_id: Annotated[str, Field(pattern=_NAME_RE.pattern)] | None = None
    """On Apache Kafka, each batch is one transaction of this instance's own id; a restarted
    instance with the same id aborts what its predecessor left open. Default
    ``<group>.tx.<host>-<digest of store.path>``: stable across restarts, distinct per
    instance. The generated ACLs grant ids prefixed ``<group>.tx.``."""


class ObservabilitySettings(_Section):
    """Health, metrics and logs. Health and metrics bind to 127.0.0.1 only."""

    port: Annotated[int, Field(ge=1_024, le=65_535)] | None = None
    """The health and metrics port on 127.0.0.1; unset, nothing listens."""
    log_format: Literal["json", "console"] = "json"
    """JSON lines for the supervisor; console for a person at a terminal."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The least severe level logged."""


class LimitSettings(_Section):
    """Bounds every envelope must respect, and how long replays are remembered."""

    max_envelope_bytes: Annotated[int, Field(ge=1_024, le=MAX_ENVELOPE_BYTES)] = 1_048_576
    """The largest envelope accepted: 1 MiB by default; at most the envelope format's own limit,
    which the clusters' ``message.max.bytes`` is sized for (its quarantine record included),
    so the cluster never refuses what we accept and no batch is retried for ever."""
    max_age_seconds: Annotated[int, Field(ge=60, le=30 * 86_400)] = 86_400
    """Envelopes older than this are refused as stale (24 h)."""
    max_clock_skew_seconds: Annotated[int, Field(ge=0, le=3_600)] = 300
    """Envelopes dated further than this in the future are refused (5 min)."""
    replay_window_seconds: Annotated[int, Field(ge=120, le=90 * 86_400)] = 172_800
    """How long message ids are remembered; must exceed max age plus skew, so any replay
    still young enough to be accepted is still remembered (48 h)."""

    @model_validator(mode="after")
    def _window_covers_acceptance(self) -> LimitSettings:
        if self.replay_window_seconds <= self.max_age_seconds + self.max_clock_skew_seconds:
            raise ValueError(
                "replay_window_seconds must exceed max_age_seconds + max_clock_skew_seconds, "
                "or an old replay could be accepted once its id is forgotten"
            )
        return self


class Config(_Section):
    """The whole configuration of an adapter or a gateway daemon."""

    partner: Partner | None = None
    """The partner this adapter serves (two capitals, e.g. GB); unset for the gateway."""
    kafka: KafkaSettings = KafkaSettings()
    registry: RegistrySettings
    accords: AccordSettings = AccordSettings()
    keys: KeySettings
    store: StoreSettings | None = None
    """Required for adapters."""
    spool: SpoolSettings | None = None
    """Optional for adapters: without it, messages are submitted through the API only."""
    gateway: GatewaySettings = GatewaySettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    limits: LimitSettings = LimitSettings()

    @property
    def gateway_group_id(self) -> str:
        """The gateway's consumer group: the configured one, or ``<prefix>gateway``."""
        return self.gateway.group_id or f"{self.kafka.topic_prefix}gateway"

    def missing_for(self, role: Literal["adapter", "gateway"]) -> tuple[str, ...]:
        """The sections ``role`` needs that this configuration lacks (empty: ready to run)."""
        if role == "adapter":
            needed = {"partner": self.partner, "store": self.store}
            return tuple(name for name, value in needed.items() if value is None)
        return ()
