"""`broker kafka up|down|topics create`: the embedded broker, and the exchange's topics."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from broker import keys
from broker.config import DEFAULT_PREFIX, kafka_client_security, load_config, topic_plan
from broker.errors import EmbeddedBrokerError, RegistryError, UsageError
from broker.transport import embedded
from broker.transport.kafka import TopicSpec, create_topics
from broker.transport.security import PLAINTEXT

__all__ = ["group"]

_STATE_DIR_HELP = (
    f"Where the pid and state files live "
    f"[default: ${embedded.STATE_DIR_ENV} or ~/.local/state/broker]."
)


@click.group(name="kafka")
def group() -> None:
    """The embedded Kafka-protocol broker (Tansu): in memory, on 127.0.0.1 only.

    It has no TLS and no authentication, so it never listens on another interface.
    Set BROKER_KAFKA_BIN to run another Tansu binary than the packaged one.
    """


@group.command(name="up")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=embedded.DEFAULT_PORT,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--detach",
    is_flag=True,
    help="Start in the background, print the bootstrap address and return.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=_STATE_DIR_HELP,
)
def up(port: int, detach: bool, state_dir: Path | None) -> None:
    """Start the embedded broker and print its bootstrap address (host:port).

    In the foreground it runs until Ctrl-C or SIGTERM, then stops cleanly. With --detach it
    keeps running after this command returns; `broker kafka down` stops it.

    Exit status 22 if the broker cannot start (binary missing, port busy, already running).
    """
    directory = state_dir or embedded.default_state_dir()
    if detach:
        state = embedded.start_detached(port=port, state_dir=directory)
        click.echo(state.bootstrap)
        return
    stop_requested = threading.Event()
    # handlers first: whoever reads the printed address may signal us at once
    previous = _on_stop_signals(stop_requested)
    try:
        with embedded.EmbeddedBroker(port=port, state_dir=directory) as broker:
            click.echo(broker.bootstrap)
            click.echo("press Ctrl-C to stop", err=True)
            # wake up now and then to notice a broker that died on its own
            while not stop_requested.wait(timeout=1.0):
                if not broker.is_running():
                    raise EmbeddedBrokerError("the embedded broker exited unexpectedly")
    finally:
        _restore_signals(previous)
    click.echo("stopped", err=True)


@group.command(name="down")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=_STATE_DIR_HELP,
)
def down(state_dir: Path | None) -> None:
    """Stop the embedded broker started by `broker kafka up` and wait until it has exited.

    Exit status 0 also when no broker is running (it says so); 22 if it would not stop.
    """
    stopped = embedded.stop_detached(state_dir=state_dir or embedded.default_state_dir())
    if stopped is None:
        click.echo("no embedded broker is running")
    else:
        click.echo(f"stopped the embedded broker at {stopped.bootstrap} (pid {stopped.pid})")


@group.group(name="topics")
def topics() -> None:
    """The exchange's topics: outbox and inbox per partner, quarantine, audit."""


@topics.command(name="create")
@click.option(
    "--bootstrap",
    default=None,
    help="Kafka bootstrap servers, host:port[,...] [default: the --config file's].",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    help="Take the bootstrap servers and TLS/SASL settings from this daemon configuration.",
)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Topic name prefix.")
@click.option("--partners", default=None, help="Partner codes, comma-separated, e.g. GB,RS,MK.")
@click.option(
    "--registry",
    "registry_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Take the partners from this signed registry instead (its roots' signatures checked).",
)
@click.option("--partitions", type=click.IntRange(1, 1_000), default=3, show_default=True)
@click.option("--replication-factor", type=click.IntRange(1, 16), default=1, show_default=True)
@click.option("--min-insync-replicas", type=click.IntRange(1, 16), default=1, show_default=True)
def topics_create(
    bootstrap: str | None,
    config_path: str | None,
    prefix: str,
    partners: str | None,
    registry_file: Path | None,
    partitions: int,
    replication_factor: int,
    min_insync_replicas: int,
) -> None:
    """Create every topic the exchange needs; topics that already exist are left as they are.

    The audit topic always has one partition (one total order for the hash chain). In
    production use replication factor 3 and min.insync.replicas 2, so an acknowledged record
    survives the loss of a broker. Exit status 2 on bad options, 9 for a registry that does
    not verify, 21 if Kafka refused.
    """
    codes = _partner_codes(partners, registry_file)
    plan = topic_plan(
        codes,
        prefix=prefix,
        partitions=partitions,
        replication_factor=replication_factor,
        min_insync_replicas=min_insync_replicas,
    )
    specs = [TopicSpec(t.name, t.partitions, t.replication_factor, dict(t.configs)) for t in plan]
    security = PLAINTEXT
    if config_path is not None:
        kafka = load_config(config_path).kafka
        security = kafka_client_security(kafka)
        bootstrap = bootstrap or ",".join(kafka.bootstrap)
    if bootstrap is None:
        raise UsageError("give --bootstrap or --config")
    asyncio.run(create_topics(bootstrap, specs, security=security))
    for spec in specs:
        click.echo(
            f"{spec.name}\t{spec.partitions} partitions, replication {spec.replication_factor}"
        )


def _partner_codes(partners: str | None, registry_file: Path | None) -> list[str]:
    if (partners is None) == (registry_file is None):
        raise UsageError("give exactly one of --partners or --registry")
    if partners is not None:
        return [code.strip() for code in partners.split(",") if code.strip()]
    assert registry_file is not None  # noqa: S101 - checked just above
    try:
        data = registry_file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {registry_file}: {exc.strerror}") from exc
    # Its own roots' signatures are checked, not its expiry: creating topics for the partners
    # it names is harmless even for an expired document.
    registry = keys.load_trusted_registry(data)
    if not registry.partners:
        raise RegistryError(f"{registry_file} names no partners")
    return sorted(registry.partners)


_SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def _on_stop_signals(event: threading.Event) -> dict[signal.Signals, _SignalHandler]:
    """Turn Ctrl-C and SIGTERM into ``event``, so the broker is stopped in an orderly way."""

    def handle(_signum: int, _frame: FrameType | None) -> None:
        event.set()

    return {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(previous: dict[signal.Signals, _SignalHandler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
