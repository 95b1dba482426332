"""Topic and consumer-group names, and the topic provisioning plan (pure functions).

Every name is built from a validated prefix and a validated partner code, so no input can
smuggle a wildcard, a path or another partner's topic into a name (DESIGN section 3)::

    <prefix>outbox.<P>   written by partner P's adapter only, read by the gateway
    <prefix>inbox.<P>    written by the gateway only, read by partner P's adapter only
    <prefix>quarantine   written by the gateway
    <prefix>audit        written by the gateway, read by auditors and witnesses
    <prefix>witness      written by witnesses (cosigned checkpoints), read by auditors

The plan is data; the transport's admin client applies it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from broker import errors, limits
from broker.ids import PartnerCode, partner_code

__all__ = [
    "DEFAULT_PREFIX",
    "PREFIX_PATTERN",
    "TopicSpec",
    "adapter_group",
    "audit_topic",
    "gateway_group",
    "inbox_topic",
    "outbox_topic",
    "quarantine_topic",
    "replication_for",
    "topic_plan",
    "validate_partner",
    "validate_prefix",
    "witness_group",
    "witness_topic",
]

DEFAULT_PREFIX = "xb."

# Lowercase words each closed by a dot: no '_' (Kafka folds '.' and '_' together in metric
# names, so two topics could collide) and no wildcard or separator characters.
PREFIX_PATTERN = r"^(?:[a-z0-9][a-z0-9-]{0,30}\.){1,4}$"
"""One to four lowercase words, each ending in a dot (``xb.``)."""
_PREFIX_RE = re.compile(PREFIX_PATTERN)

_DAY_MS = 86_400_000
#: Kafka's "keep forever": the audit log is append-only evidence
_FOREVER = "-1"


def validate_prefix(prefix: str, *, error: type[Exception] = errors.UsageError) -> str:
    """Return ``prefix`` if it is one to four lowercase words each ending in a dot (``xb.``)."""
    if not _PREFIX_RE.fullmatch(str(prefix)):
        raise error(
            f"topic prefix {prefix!r} must be lowercase words each ending in '.', e.g. 'xb.'"
        )
    return prefix


def validate_partner(code: str) -> PartnerCode:
    """Return ``code`` as a partner code, or raise :class:`errors.UsageError` (two capitals)."""
    try:
        return partner_code(code)
    except (ValueError, TypeError) as exc:
        raise errors.UsageError(f"partner code {code!r} must be two capital letters") from exc


def outbox_topic(prefix: str, partner: str) -> str:
    """The topic partner ``partner`` writes its envelopes to: ``<prefix>outbox.<P>``."""
    return f"{validate_prefix(prefix)}outbox.{validate_partner(partner)}"


def inbox_topic(prefix: str, partner: str) -> str:
    """The topic the gateway delivers ``partner``'s envelopes to: ``<prefix>inbox.<P>``."""
    return f"{validate_prefix(prefix)}inbox.{validate_partner(partner)}"


def quarantine_topic(prefix: str) -> str:
    """The gateway's quarantine: ``<prefix>quarantine``."""
    return f"{validate_prefix(prefix)}quarantine"


def audit_topic(prefix: str) -> str:
    """The signed audit log: ``<prefix>audit``."""
    return f"{validate_prefix(prefix)}audit"


def witness_topic(prefix: str) -> str:
    """Where witnesses publish the checkpoints they cosigned: ``<prefix>witness``."""
    return f"{validate_prefix(prefix)}witness"


def witness_group(prefix: str, name: str) -> str:
    """The start of witness ``name``'s consumer groups: ``<prefix>witness.<name>.``; each
    start reads the audit log from its first record in a fresh group under it."""
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", name):
        raise errors.UsageError(f"witness name {name!r} must be a lowercase name")
    return f"{validate_prefix(prefix)}witness.{name}."


def gateway_group(prefix: str) -> str:
    """The consumer group shared by every gateway instance: ``<prefix>gateway``."""
    return f"{validate_prefix(prefix)}gateway"


def adapter_group(prefix: str, partner: str) -> str:
    """Partner ``partner``'s adapter consumer group: ``<prefix>adapter.<P>``."""
    return f"{validate_prefix(prefix)}adapter.{validate_partner(partner)}"


def replication_for(brokers: int) -> tuple[int, int]:
    """The safe (replication factor, min.insync.replicas) on a cluster of ``brokers``: three
    replicas with two in sync from three brokers on, so an acknowledged record survives the
    loss of a broker and a write needs two of them; below that, every broker holds a replica
    and one in sync is all there can be (a development cluster: say so to the operator)."""
    if brokers < 1:
        raise errors.UsageError(f"a cluster has at least one broker, not {brokers}")
    if brokers >= 3:
        return 3, 2
    return brokers, 1


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    """One topic to create: name, partitions, replication and topic-level configs."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]


def topic_plan(
    partners: Iterable[str],
    *,
    prefix: str,
    partitions: int,
    replication_factor: int,
    min_insync_replicas: int,
    retention_days: int = 7,
    quarantine_retention_days: int = 30,
) -> list[TopicSpec]:
    """Every topic the exchange needs for ``partners``, sorted by name.

    Outboxes, inboxes and quarantine get ``partitions`` partitions (scale-out is more
    partitions and more gateway instances). The audit topic has exactly one partition: the
    audit log is a single hash chain, and only one partition keeps one total order. Outbox
    and inbox retention should stay within the recipients' key lifetime, since a stolen KEM
    key opens whatever is still retained; the audit topic is kept forever.
    """
    codes = sorted({validate_partner(p) for p in partners})
    if not codes:
        raise errors.UsageError("a topic plan needs at least one partner")
    if partitions < 1 or replication_factor < 1:
        raise errors.UsageError("partitions and replication factor must be at least 1")
    if not 1 <= min_insync_replicas <= replication_factor:
        raise errors.UsageError(
            f"min.insync.replicas {min_insync_replicas} must be between 1 and the replication "
            f"factor {replication_factor}"
        )
    if retention_days < 1 or quarantine_retention_days < 1:
        raise errors.UsageError("retention must be at least one day")

    def spec(name: str, count: int, retention_ms: str) -> TopicSpec:
        configs = {
            "cleanup.policy": "delete",
            # the one table of limits: every record any component writes fits, and no more
            "max.message.bytes": str(limits.KAFKA_MESSAGE_MAX_BYTES),
            "min.insync.replicas": str(min_insync_replicas),
            "retention.ms": retention_ms,
            # a lagging replica must never become leader and silently drop acknowledged records
            "unclean.leader.election.enable": "false",
        }
        return TopicSpec(name, count, replication_factor, MappingProxyType(configs))

    window = str(retention_days * _DAY_MS)
    plan = [spec(outbox_topic(prefix, code), partitions, window) for code in codes]
    plan += [spec(inbox_topic(prefix, code), partitions, window) for code in codes]
    plan.append(
        spec(quarantine_topic(prefix), partitions, str(quarantine_retention_days * _DAY_MS))
    )
    plan.append(spec(audit_topic(prefix), 1, _FOREVER))
    plan.append(spec(witness_topic(prefix), 1, _FOREVER))
    return sorted(plan, key=lambda topic: topic.name)
