"""`broker kafka up|down`: the embedded Kafka-protocol broker for development and the demo."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from broker.errors import EmbeddedBrokerError
from broker.transport import embedded

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


_SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def _on_stop_signals(event: threading.Event) -> dict[signal.Signals, _SignalHandler]:
    """Turn Ctrl-C and SIGTERM into ``event``, so the broker is stopped in an orderly way."""

    def handle(_signum: int, _frame: FrameType | None) -> None:
        event.set()

    return {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(previous: dict[signal.Signals, _SignalHandler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
