"""The sections of the daemons' configuration, one frozen, strict model each.

Every default is chosen so that a forgotten setting fails closed: nothing listens on a public
interface, nothing unsigned is trusted, no secret is written in the file itself, and the replay
window always outlives the acceptance window. Each field's description says why its default is
safe; the same text appears in ``schemas/config.schema.json``. Which sections each daemon
needs is said by its role type in :mod:`broker.config.roles`.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from broker import cosign, errors, limits
from broker.config._base import (
    LIST_AS_TUPLE,
    NAME_PATTERN,
    FilePath,
    SecretSource,
    Section,
    is_loopback,
)
from broker.schema.evaluation import EvaluationScheme

__all__ = [
    "OBSERVABILITY_HOST",
    "AccordSettings",
    "AdapterKeySettings",
    "AdapterStoreSettings",
    "GatewaySettings",
    "KeySettings",
    "LimitSettings",
    "ObservabilitySettings",
    "RegistrySettings",
    "SpoolSettings",
    "StoreSettings",
    "WitnessSettings",
]

#: the only address health and metrics ever bind to: they are for the local supervisor
OBSERVABILITY_HOST = "127.0.0.1"


class RegistrySettings(Section):
    """The signed partner registry and the roots it must chain to."""

    path: FilePath
    """The signed registry file."""
    trusted_roots: FilePath
    """The root public keys, distributed out of band, that must sign the registry."""


class AccordSettings(Section):
    """The signed accords (sharing policies) in force. None configured: nothing may flow."""

    paths: Annotated[tuple[FilePath, ...], Field(max_length=256), LIST_AS_TUPLE] = ()
    """Individual accord files."""
    dir: FilePath | None = None
    """A directory whose ``*.yaml`` files are all accords."""
    unsafe_allow_unsigned: bool = False
    """Development only: accept accords without valid signatures, with a warning on every use.
    Off, so a policy nobody signed can never decide what crosses a border."""

    def files(self) -> list[Path]:
        """Every accord file named (``paths`` and ``dir/*.yaml``), sorted; raises UsageError
        when ``dir`` is not a directory."""
        files = set(self.paths)
        if self.dir is not None:
            if not self.dir.is_dir():
                raise errors.UsageError(f"{self.dir}: the accords directory does not exist")
            files |= set(self.dir.glob("*.yaml"))
        return sorted(files)

    def watched(self) -> tuple[Path, ...]:
        """The paths whose change means the accords must be read again: each file, its
        signature file, and the folder holding it (where its signed acts file appears, named by
        the accord's id, which no path says), and the accords directory."""
        sigs = tuple(cosign.signature_path(p) for p in self.paths)
        folders = tuple(sorted({p.parent for p in self.paths} - {self.dir}))
        return (*self.paths, *sigs, *folders, *(() if self.dir is None else (self.dir,)))


class KeySettings(Section):
    """This daemon's private signing key (encrypted PKCS#8) and where its passphrase comes from.

    The gateway and witnesses hold no decryption key: their ``keys`` section has no place for
    one, so a file that gives them one is refused rather than silently ignored."""

    signing_key: FilePath
    """The signing key: the adapter signs envelopes, the gateway audit records and checkpoints,
    a witness its cosignatures."""
    passphrase: SecretSource
    """Where the key files' passphrase is read from."""


class AdapterKeySettings(KeySettings):
    """An adapter's keys: its signing key and the KEM keys that open its inbox."""

    decryption_keys: Annotated[
        tuple[FilePath, ...], Field(min_length=1, max_length=16), LIST_AS_TUPLE
    ]
    """The KEM private keys, newest first; more than one while rotating, or while holding
    keys of two suites. At least one: without it the adapter could not read its inbox."""
    extra_signing_keys: Annotated[tuple[FilePath, ...], Field(max_length=4), LIST_AS_TUPLE] = ()
    """Signing keys of other suites than ``signing_key``'s, one per suite (``keys rotate
    --suite``): each accord's suite picks the key that signs for it."""


class StoreSettings(Section):
    """A daemon's durable local state: one SQLite database (the gateway's de-duplication
    record), with the trust memory (``trust-state.json``) beside it."""

    path: FilePath
    """The SQLite database (created mode 0600)."""


class AdapterStoreSettings(StoreSettings):
    """The adapter's durable local store (inbox and de-duplication record) and onward
    delivery."""

    delivery_dir: FilePath | None = None
    """If set, each verified message is also written here for the agency's systems."""
    webhook_url: Annotated[str, Field(max_length=2048)] | None = None
    """If set, each verified message is POSTed here; https, or http to loopback only."""
    retention_days: Annotated[int, Field(ge=1, le=3_650)] = 30
    """Messages without their own expiry are crypto-shredded after this many days: short,
    because what is not kept cannot leak."""
    evaluation_scheme: Annotated[EvaluationScheme, Field(strict=False)] | None = None
    """The grading scheme this agency reads (``admiralty-6x6``, ``uk-3x5x2``,
    ``europol-4x4``): ``broker inbox show`` adds each message's grading translated into it,
    with what the translation lost. The sender's grading is stored and shown unchanged."""

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = re.fullmatch(r"(https?)://(\[[^\]]+\]|[^/:?#@]+)(:\d{1,5})?(/[^\s]*)?", value)
        if match is None:
            raise ValueError("not an http(s) URL with a host")
        if match[1] == "http" and not is_loopback(match[2]):
            raise ValueError("plain http is allowed only to loopback; use https")
        return value


class SpoolSettings(Section):
    """The directory an adapter watches for messages to send."""

    dir: FilePath
    """Files appear in ``incoming/`` beneath it, then move to ``sent/`` (at least one recipient's
    envelope was sent) or ``rejected/`` (nothing was sent; ``<name>.reason`` says why)."""
    four_eyes_flows: Annotated[
        tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")], ...],
        Field(max_length=256),
        LIST_AS_TUPLE,
    ] = ()
    """Accord flows (their ids, e.g. ``GB-RS-OPS``) whose views a second officer, holding the
    ``approve`` role, must release before they are sealed: ``broker send`` holds them in
    ``held/`` until ``broker release``; the adapter refuses (``not_released``) a view of such a
    flow that no other officer released. Receipts and withdrawals are never held."""


class GatewaySettings(Section):
    """The policy gateway's consumer group and audit checkpoints."""

    group_id: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    """The consumer group of all gateway instances; default ``<prefix>gateway``, the name the
    generated ACLs grant."""
    checkpoint_interval_seconds: Annotated[int, Field(ge=1, le=86_400)] = 60
    """How often a signed checkpoint of the audit log is published: a minute bounds how long
    an entry stays uncommitted to a signed head."""
    refusal_audits_per_hour: Annotated[int, Field(ge=0, le=1_000_000)] = 1_000
    """How many refusals of one outbox in one UTC hour get an audit record each; past that,
    each is still quarantined, and one signed summary record counts them when the hour is
    over, so a flood cannot grow the audit log (kept for ever) without bound."""
    transactional_id: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    """On Apache Kafka, each batch is one transaction of this instance's own id; a restarted
    instance with the same id aborts what its predecessor left open. Default
    ``<group>.tx.<host>-<digest of store.path>``: stable across restarts, distinct per
    instance. The generated ACLs grant ids prefixed ``<group>.tx.``."""


class WitnessSettings(Section):
    """A witness daemon: where it keeps what it has seen of the audit log."""

    state_dir: FilePath
    """The directory (created mode 0700) holding the newest checkpoint this witness proved
    consistent and the right edge of its tree. Keep it across restarts: a witness that loses
    it re-reads the log from its first record (it never trusts what it cannot prove)."""
    name: Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")] = "witness"
    """The witness's short name in Kafka: its consumer groups are ``<prefix>witness.<name>.``
    (the generated ACLs grant them to ``User:<name>``). Its note key name is the one the
    registry gives its key, never this."""


class ObservabilitySettings(Section):
    """Health, metrics and logs. Health and metrics bind to 127.0.0.1 unless ``host`` says."""

    port: Annotated[int, Field(ge=1_024, le=65_535)] | None = None
    """The health and metrics port; unset, nothing listens."""
    host: Annotated[str, Field(max_length=45)] = OBSERVABILITY_HOST
    """The address health and metrics listen on: an IP address, the loopback by default. The
    endpoints have no authentication: name another address (a pod's, ``0.0.0.0`` in a pod's
    own network namespace) only for a Prometheus that scrapes it there (deploy/monitoring),
    and fence it with a network policy."""

    @field_validator("host")
    @classmethod
    def _an_address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address (a name could resolve anywhere)"
            ) from None

    log_format: Literal["json", "console"] = "json"
    """JSON lines for the supervisor; console for a person at a terminal."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The least severe level logged."""
    expiry_readiness_days: Annotated[int, Field(ge=0, le=365)] = 7
    """How many days before the registry, one of the daemon's own keys or a Kafka TLS
    certificate expires ``/readyz`` turns 503 (``degraded: ...``) while the daemon goes on
    working, so the cliff is seen before it stops the daemon; 0 turns it off. A week: long
    enough to renew in, short enough not to cry wolf (logs and gauges warn from 30 days)."""


class LimitSettings(Section):
    """Bounds every envelope must respect, and how long replays are remembered."""

    max_envelope_bytes: Annotated[int, Field(ge=1_024, le=limits.MAX_ENVELOPE_BYTES)] = (
        limits.MAX_ENVELOPE_BYTES
    )
    """The largest envelope accepted: at most (and by default) 1 MiB, the exchange's limit
    (broker.limits), which the Kafka cluster's message size is set to carry."""
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
