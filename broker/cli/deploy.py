"""`broker deploy ...`: deployment artefacts for a real Kafka cluster, and config checks.

- ``acls``: the ACL set, from the verified partner registry or a list of partner codes, as
  ``kafka-acls.sh`` command lines or Strimzi ``KafkaUser`` manifests;
- ``check-config``: validate a daemon configuration file (with ``BROKER_*`` overrides) as the
  daemon of its role reads it, so a file it passes is one that daemon starts with;
- ``config-schema``: print the JSON Schema of the configuration file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, get_args

import click

from broker import errors, keys
from broker.bounded import read_bounded
from broker.clock import SystemClock
from broker.config import (
    DEFAULT_PREFIX,
    ROLES,
    AdapterConfig,
    DaemonConfig,
    Role,
    WitnessConfig,
    config_json_schema,
    load_config,
)
from broker.deployment import acl_plan, render_kafka_acls, render_strimzi

__all__ = ["group"]

_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)
_MAX_REGISTRY_BYTES = 4 * 1024 * 1024


@click.group(name="deploy")
def group() -> None:
    """Deployment artefacts for real Kafka: ACLs, configuration checks."""


@group.command(name="acls")
@click.option("--registry", type=_FILE, help="The signed partner registry (verified now).")
@click.option("--partners", help="Comma-separated partner codes, e.g. GB,RS,MK,XK,TR,AL.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["kafka-acls", "strimzi"]),
    default="kafka-acls",
    show_default=True,
    help="kafka-acls.sh command lines, or Strimzi KafkaUser manifests.",
)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Topic prefix.")
@click.option("--gateway-group", default=None, help="Gateway consumer group [<prefix>gateway].")
@click.option(
    "--auditor",
    "auditors",
    multiple=True,
    default=("auditor",),
    show_default=True,
    help="Auditor user allowed to read the audit topic (repeatable).",
)
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    default=("witness",),
    show_default=True,
    help="Witness user: reads the audit topic, publishes on the witness topic (repeatable).",
)
@click.option("--cluster", default="broker", show_default=True, help="Strimzi cluster label.")
def acls(
    registry: Path | None,
    partners: str | None,
    output_format: Literal["kafka-acls", "strimzi"],
    prefix: str,
    gateway_group: str | None,
    auditors: tuple[str, ...],
    witnesses: tuple[str, ...],
    cluster: str,
) -> None:
    """Print the ACLs: each adapter writes its outbox and reads its inbox; nothing else."""
    if (registry is None) == (partners is None):
        raise errors.UsageError("give exactly one of --registry or --partners")
    if registry is not None:
        codes = sorted(_registry_partners(registry))
    else:
        codes = [code.strip() for code in (partners or "").split(",") if code.strip()]
    rules = acl_plan(
        codes,
        prefix=prefix,
        gateway_group=gateway_group,
        auditors=auditors,
        witnesses=witnesses,
    )
    if output_format == "strimzi":
        click.echo(render_strimzi(rules, cluster=cluster), nl=False)
    else:
        click.echo(render_kafka_acls(rules), nl=False)


@group.command(name="check-config")
@click.argument("path", type=_FILE)
@click.option(
    "--role",
    type=click.Choice(get_args(Role)),
    default=None,
    help="The daemon the file is for [default: read from the file: partner makes an adapter, "
    "a witness section a witness, anything else a gateway].",
)
def check_config(path: Path, role: Role | None) -> None:
    """Validate the configuration file PATH, with BROKER_* environment overrides applied, as
    the daemon of its role reads it when it starts."""
    config = load_config(path, None if role is None else ROLES[role])
    servers = len(config.kafka.bootstrap)
    click.echo(
        f"ok: {path}: {_who(config)}, {config.kafka.security.protocol} to {servers} "
        "bootstrap servers"
    )


@group.command(name="config-schema")
def config_schema() -> None:
    """Print the JSON Schema of the daemon configuration file."""
    click.echo(json.dumps(config_json_schema(), indent=2, sort_keys=True))


def _who(config: DaemonConfig) -> str:
    if isinstance(config, AdapterConfig):
        return f"adapter for partner {config.partner}"
    if isinstance(config, WitnessConfig):
        return f"witness {config.witness.name}"
    return "gateway"


def _registry_partners(path: Path) -> frozenset[str]:
    data = read_bounded(
        path, limit=_MAX_REGISTRY_BYTES, what="the registry", too_large=errors.RegistryError
    )
    registry = keys.verify_registry(data, trusted=None, now=SystemClock().now())
    return frozenset(registry.partners)
