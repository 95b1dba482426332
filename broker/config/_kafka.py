"""The ``kafka`` section: where the brokers are, how to prove who we are to them, and the
names to use there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from broker.config._base import NAME_PATTERN, FilePath, SecretSource, Section, is_loopback
from broker.config.topics import PREFIX_PATTERN, validate_prefix
from broker.transport.access import ENGINES, Capabilities, Engine

__all__ = ["KafkaSettings", "PlaintextSecurity", "SaslSslSecurity", "Security", "SslSecurity"]

# One bootstrap server: a host name or bracketed IPv6 address, and a port from 1 to 65535
# written without leading zeros. The same text is the published schema's pattern.
_HOST_PORT = (
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})"
    r":(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
)
_HOST_PORT_RE = re.compile(f"^{_HOST_PORT}$")
#: the comma-separated form Kafka's own tools take: no spaces, no empty item, at most 64
_HOST_PORTS_RE = re.compile(f"^{_HOST_PORT}(,{_HOST_PORT}){{0,63}}$")
_BOOTSTRAP_SCHEMA = {
    "anyOf": [
        {
            "type": "array",
            "items": {"type": "string", "pattern": _HOST_PORT_RE.pattern},
            "minItems": 1,
            "maxItems": 64,
        },
        {"type": "string", "pattern": _HOST_PORTS_RE.pattern},
    ]
}


class PlaintextSecurity(Section):
    """No transport security: only for the embedded broker on loopback, or with the unsafe flag.

    Envelopes still protect every message end to end; transport security is defence in depth.
    """

    protocol: Literal["PLAINTEXT"] = "PLAINTEXT"
    unsafe_allow_remote: bool = False
    """Allow PLAINTEXT to a non-loopback broker. Off: credentials-free plaintext to a network
    host is refused unless someone says so in writing."""


_PAIR = ("cert_file", "key_file")
_A_PATH: dict[str, Any] = {"type": "string"}
_BOTH_FILES: dict[str, Any] = dict.fromkeys(_PAIR, _A_PATH)


class _Tls(Section):
    model_config = ConfigDict(
        # _pair() in the published schema's terms: both files given, or neither
        json_schema_extra={
            "anyOf": [
                {"required": ["cert_file", "key_file"], "properties": _BOTH_FILES},
                {"not": {"anyOf": [{"required": [f], "properties": {f: _A_PATH}} for f in _PAIR]}},
            ]
        }
    )

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


class KafkaSettings(Section):
    """How to reach Kafka and which names to use there."""

    bootstrap: Annotated[
        tuple[str, ...], Field(min_length=1, max_length=64), WithJsonSchema(_BOOTSTRAP_SCHEMA)
    ] = ("127.0.0.1:9092",)
    """Bootstrap servers as ``host:port``: a list, or one string of them separated by commas
    without spaces (``kafka-1:9093,kafka-2:9093``). The default is loopback, so a missing
    setting never reaches out to a network host."""
    topic_prefix: Annotated[str, WithJsonSchema({"type": "string", "pattern": PREFIX_PATTERN})] = (
        "xb."
    )
    """Prefix of every topic and consumer-group name: lowercase words, each ending in a dot."""
    security: Security = PlaintextSecurity()
    """PLAINTEXT (loopback only unless unsafe_allow_remote), SSL (mTLS) or SASL_SSL (SCRAM)."""
    client_id: Annotated[str, Field(pattern=NAME_PATTERN)] = "broker"
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

    @property
    def certificate_files(self) -> tuple[Path, ...]:
        """The certificate files the client trusts or presents (none without TLS): what
        expires under it (``broker doctor``, ``xb_certificate_expiry_seconds``)."""
        security = self.security
        if isinstance(security, PlaintextSecurity):
            return ()
        return (security.ca_file, *(() if security.cert_file is None else (security.cert_file,)))

    @field_validator("bootstrap", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not _HOST_PORTS_RE.fullmatch(value):
                raise ValueError(
                    f"{value!r} is not host:port, or several separated by commas without spaces"
                )
            return tuple(value.split(","))
        if isinstance(value, list):
            return tuple(value)
        return value

    @field_validator("bootstrap")
    @classmethod
    def _host_ports(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _HOST_PORT_RE.fullmatch(item):
                raise ValueError(f"{item!r} is not host:port (a port from 1 to 65535)")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return validate_prefix(value, error=ValueError)

    @property
    def is_local_plaintext(self) -> bool:
        """PLAINTEXT to loopback brokers only: a laptop's own broker, nothing else."""
        security = self.security
        return (
            isinstance(security, PlaintextSecurity)
            and not security.unsafe_allow_remote
            and all(is_loopback(b.rsplit(":", 1)[0]) for b in self.bootstrap)
        )

    @model_validator(mode="after")
    def _plaintext_stays_local(self) -> KafkaSettings:
        security = self.security
        if isinstance(security, PlaintextSecurity) and not security.unsafe_allow_remote:
            remote = [b for b in self.bootstrap if not is_loopback(b.rsplit(":", 1)[0])]
            if remote:
                raise ValueError(
                    f"PLAINTEXT to non-loopback {', '.join(remote)}: use SSL or SASL_SSL, or set "
                    "security.unsafe_allow_remote"
                )
        return self
