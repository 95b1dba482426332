"""What every command shares: the context object, logging set-up, and error-to-exit-code mapping."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from rich.console import Console

from broker import errors
from broker import logging as broker_logging

__all__ = ["configure_logging", "console", "fail", "run"]

#: width when the output is not a terminal: no id, digest or path is ever cut short in a pipe
_PIPED_WIDTH = 10_000


def console() -> Console:
    """The console tables and styled lines are printed to: a terminal's own width, or, piped
    or redirected, wide enough that nothing is truncated or wrapped (a table is only as wide
    as its content)."""
    return Console(width=None if sys.stdout.isatty() else _PIPED_WIDTH)


def configure_logging(*, verbose: bool) -> None:
    """Readable console logs for people; daemons reconfigure to JSON when they start."""
    broker_logging.configure(style="console", level="DEBUG" if verbose else "WARNING")


def fail(error: errors.BrokerError) -> None:
    """Print ``error`` as one line on stderr and exit with its documented code."""
    click.echo(f"error: {error.diagnostics()}", err=True)
    sys.exit(error.exit_code)


def run(command: click.Group, args: Sequence[str] | None = None) -> int:
    """Run ``command`` on ``args`` (default: the process's arguments); a ``BrokerError``
    becomes one line and its exit code, not a traceback."""
    argv = list(sys.argv[1:] if args is None else args)
    verbose = argv[:1] in (["-v"], ["--verbose"])
    try:
        command.main(args=argv, standalone_mode=False)
    except errors.BrokerError as exc:
        if verbose:
            raise
        click.echo(f"error: {exc.diagnostics()}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


#: ``--engine`` of the commands that start a broker on this machine
engine_option = click.option(
    "--engine",
    type=click.Choice(["embedded", "apache"]),
    default="embedded",
    show_default=True,
    help="The embedded broker, or a local Apache Kafka cluster (java 17+ and mvn needed).",
)
#: ``--nodes`` of a local Apache Kafka cluster
nodes_option = click.option(
    "--nodes",
    type=click.IntRange(1, 9),
    default=3,
    show_default=True,
    help="apache: combined broker and controller nodes.",
)
