"""The Kafka ACLs of the exchange, derived mechanically from the partner list (DESIGN section 3).

Principals and what each may do. Topics are always named literally (never a wildcard or a
prefix); the only prefixed patterns are consumer groups of throwaway readers, which pick a
fresh random group name per run, and the gateway instances' transactional ids:

==========================  ============================================================
principal                   allowed
==========================  ============================================================
``User:adapter-<p>``        Write, Describe its outbox; Read, Describe its inbox;
                            Read its consumer group ``<prefix>adapter.<P>``
``User:gateway``            Read, Write, Describe every outbox; Write, Describe every
                            inbox; Read, Write, Describe the quarantine and the audit
                            topic; Read its group; Read the groups prefixed
                            ``<gateway group>.checkpointer.`` (the audit checkpointer)
                            and ``<prefix>quarantine-reader.`` (``broker quarantine``);
                            Write, Describe the transactional ids prefixed
                            ``<gateway group>.tx.`` (one per instance, Apache Kafka)
``User:<auditor>``          Read, Describe the audit and the witness topic; Read the
                            groups prefixed ``auditor-`` (``broker audit export``)
``User:<witness>``          Read, Describe the audit topic; Write, Describe the witness
                            topic; Read the groups prefixed ``<prefix>witness.<witness>.``
                            (``broker witness run``)
==========================  ============================================================

Why the gateway may write outboxes: ``broker quarantine release`` runs with the gateway's
credentials and re-submits the ORIGINAL signed envelope bytes to the outbox they came from.
The gateway verifies the sender's signature on everything it reads from an outbox, so this
grants no power to forge a partner's message: a changed envelope fails verification and is
quarantined again. Why it reads the audit and quarantine topics: the checkpointer follows
the audit log to sign checkpoints, and ``broker quarantine list|show`` reads the quarantine.

Why witnesses publish on a topic of their own: a witness is run by a partner, and writing the
audit topic would let it add records there. The checkpointer refuses whatever is not a valid
gateway record, but each refusal is still a permanent entry in the log; a witness that can
write only ``<prefix>witness`` cannot touch the log it vouches for, and nobody but witnesses
can publish there. Each witness's groups carry its own name, so one witness cannot join (and
stall) another's. Auditors read the witness topic so that an exported bundle carries the
cosignatures.

Everything else is denied by the cluster's authoriser (``allow.everyone.if.no.acl.found=false``).
The plan is data (:class:`AclRule`), beside the topic plan it follows from: the federation
applies it to a local Apache Kafka cluster through the transport, and
:mod:`broker.deployment.acls` renders it as ``kafka-acls.sh`` command lines or Strimzi
``KafkaUser`` manifests.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Final, Literal

from broker import errors
from broker.config.topics import (
    adapter_group,
    audit_topic,
    inbox_topic,
    outbox_topic,
    quarantine_topic,
    validate_partner,
    validate_prefix,
    witness_group,
    witness_topic,
)

__all__ = [
    "GATEWAY_PRINCIPAL",
    "USER_NAME_RE",
    "AclRule",
    "Operation",
    "PatternType",
    "ResourceType",
    "acl_plan",
    "adapter_principal",
    "users_of",
]

Operation = Literal["Read", "Write", "Describe"]
ResourceType = Literal["topic", "group", "transactional_id"]
PatternType = Literal["literal", "prefixed"]

GATEWAY_PRINCIPAL = "User:gateway"
#: a principal's user name: a Kubernetes object name, so Strimzi can hold it as a KafkaUser
USER_NAME_RE: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclasses.dataclass(frozen=True, order=True)
class AclRule:
    """One principal allowed some operations on one topic or group.

    ``pattern_type`` is ``"literal"`` (the name exactly) unless it says ``"prefixed"`` (every
    name starting with ``resource_name``); the plan uses prefixes for groups only.
    """

    principal: str
    resource_type: ResourceType
    resource_name: str
    operations: tuple[Operation, ...]
    pattern_type: PatternType = "literal"


def adapter_principal(partner: str) -> str:
    """The Kafka principal of ``partner``'s adapter: ``User:adapter-<code in lowercase>``."""
    return f"User:adapter-{validate_partner(partner).lower()}"


def acl_plan(
    partners: Iterable[str],
    *,
    prefix: str,
    gateway_group: str | None = None,
    auditors: Sequence[str] = ("auditor",),
    witnesses: Sequence[str] = ("witness",),
) -> tuple[AclRule, ...]:
    """Every ACL the exchange needs for ``partners``, sorted; nothing more."""
    validate_prefix(prefix)
    codes = sorted({validate_partner(p) for p in partners})
    if not codes:
        raise errors.UsageError("an ACL plan needs at least one partner")
    group = gateway_group if gateway_group is not None else f"{prefix}gateway"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", group):
        raise errors.UsageError(f"consumer group {group!r} is not a plain name")
    for name in auditors:
        if not USER_NAME_RE.fullmatch(name) or name == "gateway" or name.startswith("adapter-"):
            raise errors.UsageError(f"auditor user {name!r} must be a lowercase name of its own")
    for name in witnesses:
        if (
            not USER_NAME_RE.fullmatch(name)
            or name in ("gateway", *auditors)
            or name.startswith("adapter-")
        ):
            raise errors.UsageError(f"witness user {name!r} must be a lowercase name of its own")
    rules: list[AclRule] = []
    for code in codes:
        principal = adapter_principal(code)
        rules += [
            AclRule(principal, "topic", outbox_topic(prefix, code), ("Write", "Describe")),
            AclRule(principal, "topic", inbox_topic(prefix, code), ("Read", "Describe")),
            AclRule(principal, "group", adapter_group(prefix, code), ("Read",)),
            # Write: `broker quarantine release` re-submits the original signed bytes, which
            # the gateway verifies again like any other outbox record
            AclRule(
                GATEWAY_PRINCIPAL,
                "topic",
                outbox_topic(prefix, code),
                ("Read", "Write", "Describe"),
            ),
            AclRule(GATEWAY_PRINCIPAL, "topic", inbox_topic(prefix, code), ("Write", "Describe")),
        ]
    read_write: tuple[Operation, ...] = ("Read", "Write", "Describe")
    rules += [
        AclRule(GATEWAY_PRINCIPAL, "group", group, ("Read",)),
        # throwaway readers pick a fresh random group per run, hence the prefixes
        AclRule(GATEWAY_PRINCIPAL, "group", f"{group}.checkpointer.", ("Read",), "prefixed"),
        AclRule(GATEWAY_PRINCIPAL, "group", f"{prefix}quarantine-reader.", ("Read",), "prefixed"),
        AclRule(GATEWAY_PRINCIPAL, "topic", quarantine_topic(prefix), read_write),
        AclRule(GATEWAY_PRINCIPAL, "topic", audit_topic(prefix), read_write),
        # each instance's batches are transactions of its own id (broker.gateway._output)
        AclRule(
            GATEWAY_PRINCIPAL, "transactional_id", f"{group}.tx.", ("Write", "Describe"), "prefixed"
        ),
    ]
    for name in sorted(set(auditors)):
        rules += [
            AclRule(f"User:{name}", "topic", audit_topic(prefix), ("Read", "Describe")),
            AclRule(f"User:{name}", "topic", witness_topic(prefix), ("Read", "Describe")),
            AclRule(f"User:{name}", "group", "auditor-", ("Read",), "prefixed"),
        ]
    for name in sorted(set(witnesses)):
        rules += [
            AclRule(f"User:{name}", "topic", audit_topic(prefix), ("Read", "Describe")),
            AclRule(f"User:{name}", "topic", witness_topic(prefix), ("Write", "Describe")),
            AclRule(f"User:{name}", "group", witness_group(prefix, name), ("Read",), "prefixed"),
        ]
    return tuple(sorted(rules))


def users_of(rules: Iterable[AclRule]) -> tuple[str, ...]:
    """The user names the rules grant to (``User:gateway`` -> ``gateway``), sorted: the SCRAM
    users a cluster needs for this plan."""
    return tuple(sorted({rule.principal.removeprefix("User:") for rule in rules}))
