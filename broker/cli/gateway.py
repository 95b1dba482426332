"""``broker gateway run`` and ``broker quarantine list|show|release``."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from broker import logging as broker_logging
from broker.config import GatewayConfig, load_config
from broker.gateway import list_quarantine, release, serve_gateway
from broker.gateway.quarantine import Listed, Verification, find
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
    """List quarantined records: id, verification, time, reason code, sender -> recipient,
    message id. Only a ``verified`` record was written by a registered gateway."""
    listed = asyncio.run(list_quarantine(load_config(config_path, GatewayConfig)))
    for entry in listed:
        if as_json:
            click.echo(json.dumps(_summary(entry, full=False), sort_keys=True))
            continue
        record = entry.record
        if record is None:
            click.echo(f"{entry.position}  {entry.verification}  -  -  -  -  {entry.problem}")
            continue
        route = f"{record.sender or '??'} -> {record.recipient or '??'}"
        click.echo(
            f"{record.id}  {entry.verification}  {record.quarantined_at}  {record.reason_code}  "
            f"{route}  {record.message_id or '-'}"
        )
    if not as_json:
        suspect = sum(e.verification is not Verification.VERIFIED for e in listed)
        click.echo(f"{len(listed)} quarantined record(s), {suspect} not verified", err=True)


@quarantine_group.command("show")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.argument("record_id")
def show_command(config_path: str, record_id: str) -> None:
    """Show one quarantine record in full, with its verification (the value's prefix stays
    encrypted, as base64)."""
    entry = asyncio.run(find(load_config(config_path, GatewayConfig), record_id))
    click.echo(json.dumps(_summary(entry, full=True), indent=2, sort_keys=True))


def _summary(entry: Listed, *, full: bool) -> dict[str, object]:
    """A record as JSON with its ``verification`` (and ``problem`` unless verified)."""
    extra: dict[str, object] = {"verification": str(entry.verification), "position": entry.position}
    if entry.problem:
        extra["problem"] = entry.problem
    if entry.record is None:
        return extra
    exclude = set() if full else {"value_prefix_b64", "signature"}
    return {**entry.record.model_dump(mode="json", exclude=exclude), **extra}


@quarantine_group.command("release")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.argument("record_id")
def release_command(config_path: str, record_id: str) -> None:
    """Re-send the original record, read back from its outbox, to that outbox; the gateway
    decides on it again. Only a verified record of a registered partner's outbox is released."""
    delivery = asyncio.run(release(load_config(config_path, GatewayConfig), record_id))
    click.echo(
        f"released {record_id} to {delivery.topic} partition {delivery.partition} "
        f"offset {delivery.offset}"
    )
