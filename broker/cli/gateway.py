"""``broker gateway run`` and ``broker quarantine list|show|release``."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from broker import logging as broker_logging
from broker.config import GatewayConfig, load_config
from broker.gateway import list_quarantine, release, serve_gateway
from broker.gateway.quarantine import find
from broker.runtime import StopSignal, route_library_logs, run

__all__ = ["gateway_group", "quarantine_group"]

_CONFIG_HELP = "The gateway's YAML configuration (or set BROKER_CONFIG)."
_DRAIN_TIMEOUT_S = 30.0


@click.group("gateway")
def gateway_group() -> None:
    """Run the policy gateway."""


@gateway_group.command("run")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
def run_command(config_path: str) -> None:
    """Run the gateway daemon until SIGTERM (finishes the batch in hand, commits, exits 0)."""
    config = load_config(config_path, GatewayConfig)
    broker_logging.configure(
        style=config.observability.log_format, level=config.observability.log_level
    )
    route_library_logs()

    async def serve(stop: StopSignal) -> None:
        await serve_gateway(config, stop)

    sys.exit(run(serve, drain_timeout_s=_DRAIN_TIMEOUT_S, name="gateway"))


@click.group("quarantine")
def quarantine_group() -> None:
    """Inspect quarantined records and release them for re-evaluation."""


@quarantine_group.command("list")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(config_path: str, as_json: bool) -> None:
    """List quarantined records: id, time, reason code, sender -> recipient, message id."""
    records = asyncio.run(list_quarantine(load_config(config_path, GatewayConfig)))
    for record in records:
        if as_json:
            summary = record.model_dump(mode="json", exclude={"envelope_b64"})
            click.echo(json.dumps(summary, sort_keys=True))
        else:
            route = f"{record.sender or '??'} -> {record.recipient or '??'}"
            click.echo(
                f"{record.id}  {record.quarantined_at}  {record.reason_code}  {route}  "
                f"{record.message_id or '-'}"
            )
    if not as_json:
        click.echo(f"{len(records)} quarantined record(s)", err=True)


@quarantine_group.command("show")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.argument("record_id")
def show_command(config_path: str, record_id: str) -> None:
    """Show one quarantine record in full (the envelope stays encrypted, as base64)."""
    record = asyncio.run(find(load_config(config_path, GatewayConfig), record_id))
    click.echo(json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True))


@quarantine_group.command("release")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.argument("record_id")
def release_command(config_path: str, record_id: str) -> None:
    """Re-send the original envelope to its outbox; the gateway decides on it again."""
    delivery = asyncio.run(release(load_config(config_path, GatewayConfig), record_id))
    click.echo(
        f"released {record_id} to {delivery.topic} partition {delivery.partition} "
        f"offset {delivery.offset}"
    )
