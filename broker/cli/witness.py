"""``broker witness run``: the witness daemon."""

from __future__ import annotations

import sys

import click

from broker import logging as broker_logging
from broker.config import WitnessConfig, load_config
from broker.runtime import StopSignal, route_library_logs, run
from broker.witness import serve_witness

__all__ = ["witness_group"]

_CONFIG_HELP = "The witness's YAML configuration (or set BROKER_CONFIG)."
_DRAIN_TIMEOUT_S = 30.0


@click.group("witness")
def witness_group() -> None:
    """Run a witness of the audit log."""


@witness_group.command("run")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
def run_command(config_path: str) -> None:
    """Run the witness daemon until SIGTERM: it follows the audit topic, checks every new
    checkpoint against all it has seen, and publishes its cosignature of the newest."""
    config = load_config(config_path, WitnessConfig)
    broker_logging.configure(
        style=config.observability.log_format, level=config.observability.log_level
    )
    route_library_logs()

    async def serve(stop: StopSignal) -> None:
        await serve_witness(config, stop)

    sys.exit(run(serve, drain_timeout_s=_DRAIN_TIMEOUT_S, name="witness"))
