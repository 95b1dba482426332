"""The Kafka ACLs of the exchange, derived mechanically from the partner list (DESIGN section 3).

Principals and what each may do. Topics are always named literally (never a wildcard or a
prefix); the only prefixed patterns are consumer groups of throwaway readers, which pick a
fresh random group name per run:

==========================  ============================================================
principal                   allowed
==========================  ============================================================
``User:adapter-<p>``        Write, Describe its outbox; Read, Describe its inbox;
                            Read its consumer group ``<prefix>adapter.<P>``
``User:gateway``            Read, Write, Describe every outbox; Write, Describe every
                            inbox; Read, Write, Describe the quarantine and the audit
                            topic; Read its group; Read the groups prefixed
                            ``<gateway group>.checkpointer.`` (the audit checkpointer)
                            and ``<prefix>quarantine-reader.`` (``broker quarantine``)
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
The plan is data (:class:`AclRule`); :func:`render_kafka_acls` and :func:`render_strimzi`
turn it into ``kafka-acls.sh`` command lines or Strimzi ``KafkaUser`` manifests.
"""

from __future__ import annotations

import dataclasses
import io
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from ruamel.yaml import YAML

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
    "AclRule",
    "Operation",
    "PatternType",
    "ResourceType",
    "acl_plan",
    "adapter_principal",
    "render_kafka_acls",
    "render_strimzi",
]

Operation = Literal["Read", "Write", "Describe"]
ResourceType = Literal["topic", "group"]
PatternType = Literal["literal", "prefixed"]

GATEWAY_PRINCIPAL = "User:gateway"
_STRIMZI_PATTERN: dict[PatternType, str] = {"literal": "literal", "prefixed": "prefix"}
_USER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")  # a Kubernetes object name


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
        if not _USER_RE.fullmatch(name) or name == "gateway" or name.startswith("adapter-"):
            raise errors.UsageError(f"auditor user {name!r} must be a lowercase name of its own")
    for name in witnesses:
        if (
            not _USER_RE.fullmatch(name)
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


def render_kafka_acls(rules: Iterable[AclRule]) -> str:
    """A POSIX shell script of ``kafka-acls.sh --add`` commands, one per rule.

    The script reads the bootstrap address and the admin client's properties file from
    ``$BOOTSTRAP`` and ``$ADMIN_CONFIG``, so no credential is written into it.
    """
    lines = [
        "#!/bin/sh",
        "# Generated by `broker deploy acls`: literal topics, prefixed groups only for throwaway",
        "# readers; everything else is denied.",
        "set -eu",
        ': "${BOOTSTRAP:?set BOOTSTRAP to host:port}"',
        ': "${ADMIN_CONFIG:?set ADMIN_CONFIG to the admin client properties file}"',
    ]
    for rule in rules:
        argv = [
            "kafka-acls.sh",
            '--bootstrap-server "$BOOTSTRAP"',
            '--command-config "$ADMIN_CONFIG"',
            "--add",
            f"--allow-principal {shlex.quote(rule.principal)}",
            "--allow-host '*'",
            *(f"--operation {op}" for op in rule.operations),
            f"--{rule.resource_type} {shlex.quote(rule.resource_name)}",
            f"--resource-pattern-type {rule.pattern_type}",
        ]
        lines.append(" ".join(argv))
    return "\n".join(lines) + "\n"


def render_strimzi(rules: Iterable[AclRule], *, cluster: str) -> str:
    """Strimzi ``KafkaUser`` manifests (one YAML document per principal), SCRAM-SHA-512."""
    if not _USER_RE.fullmatch(cluster):
        raise errors.UsageError(f"cluster name {cluster!r} is not a Kubernetes name")
    by_user: dict[str, list[AclRule]] = {}
    for rule in rules:
        by_user.setdefault(rule.principal.removeprefix("User:"), []).append(rule)
    documents: list[dict[str, Any]] = []
    for user, user_rules in sorted(by_user.items()):
        documents.append(
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaUser",
                "metadata": {"name": user, "labels": {"strimzi.io/cluster": cluster}},
                "spec": {
                    "authentication": {"type": "scram-sha-512"},
                    "authorization": {
                        "type": "simple",
                        "acls": [
                            {
                                "resource": {
                                    "type": rule.resource_type,
                                    "name": rule.resource_name,
                                    "patternType": _STRIMZI_PATTERN[rule.pattern_type],
                                },
                                "operations": list(rule.operations),
                                "host": "*",
                            }
                            for rule in sorted(user_rules)
                        ],
                    },
                },
            }
        )
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump_all(documents, out)
    return out.getvalue()
