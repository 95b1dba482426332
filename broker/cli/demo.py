"""`broker demo`: the whole exchange on the embedded broker, in one command.

First the Kafka round trip the exchange stands on (records produced with ``acks=all``, read
back by a consumer group that commits by hand). Then a federation of six partners is
provisioned in a fresh directory (keys, signed registry, co-signed accords, configurations),
the gateway and the adapters of GB, RS, MK and XK run as real processes, GB shares a report
with the other three, each stores its own redacted view and receipts it, and a flow the
accord forbids is quarantined. Every daemon is then stopped with SIGTERM and must exit 0.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from broker.demo.exchange import RECIPIENTS, DemoResult, run_exchange_demo
from broker.demo.federation import GATEWAY, provision
from broker.errors import AvailabilityError
from broker.transport.embedded import EmbeddedBroker
from broker.transport.selfcheck import RoundTrip, round_trip

__all__ = ["command"]

# a short session keeps the consumer-group join (session / 2 on the embedded broker) quick
_SESSION_TIMEOUT_MS = 3_000


@click.command(name="demo")
@click.option(
    "--records",
    type=click.IntRange(1, 10_000),
    default=5,
    show_default=True,
    help="How many records to send through the broker.",
)
@click.option("--kafka-only", is_flag=True, help="Only the Kafka round trip, not the exchange.")
@click.option("--keep", is_flag=True, help="Keep the federation's directory (keys, logs) after.")
def command(records: int, kafka_only: bool, keep: bool) -> None:
    """Run the exchange on an embedded Kafka broker and print what happened.

    Exit status 0 when every record came back and the exchange behaved; 20 if a daemon failed
    or timed out, 21 if Kafka failed, 22 if the embedded broker could not start or stop.
    """
    console = Console()
    values = [f"demo record {number} of {records}".encode() for number in range(1, records + 1)]
    started = time.monotonic()
    with EmbeddedBroker(port=0) as kafka:
        bootstrap = kafka.bootstrap
        result = asyncio.run(
            round_trip(
                bootstrap, values, topic_prefix="demo", session_timeout_ms=_SESSION_TIMEOUT_MS
            )
        )
        _print_summary(console, bootstrap, result, total_s=time.monotonic() - started)
        if not kafka_only:
            _exchange(console, bootstrap, keep=keep)


def _exchange(console: Console, bootstrap: str, *, keep: bool) -> None:
    root = Path(tempfile.mkdtemp(prefix="broker-demo-"))
    try:
        federation = provision(root / "federation", bootstrap=bootstrap)
        asyncio.run(federation.create_topics())
        console.print(f"federation provisioned in {federation.root}")
        with federation:
            for name in (GATEWAY, "GB", *RECIPIENTS):
                federation.start(name)
                console.print(f"  {name} ready on 127.0.0.1:{federation.port(name)}")
            outcome = run_exchange_demo(federation, work_dir=root)
            statuses = federation.stop_all()
        _print_exchange(console, outcome, statuses)
        if any(statuses.values()):
            raise AvailabilityError(f"a daemon did not exit cleanly: {statuses}")
    finally:
        if keep:
            console.print(f"kept {root} (configs, keys, logs)")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _print_exchange(console: Console, outcome: DemoResult, statuses: dict[str, int]) -> None:
    table = Table(title=f"GB shares report {outcome.case_id}", title_justify="left")
    for column in ("recipient", "received", "removed by its accord"):
        table.add_column(column)
    for view in outcome.views:
        table.add_row(
            view.recipient,
            ", ".join(sorted(view.present)),
            ", ".join(sorted(view.removed)) or "-",
        )
    console.print(table)
    console.print(f"receipts back at GB from: {', '.join(outcome.receipts_from)}")
    console.print("forbidden flow (TLP:AMBER to XK) quarantined: policy_denied")
    console.print(
        "daemons stopped with SIGTERM, exit statuses: "
        + ", ".join(f"{name} {code}" for name, code in statuses.items())
    )
    console.print("[bold green]OK[/]: each partner got exactly what its accord allows")


def _print_summary(console: Console, bootstrap: str, result: RoundTrip, *, total_s: float) -> None:
    table = Table(title="Kafka round trip", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("broker", f"embedded, {bootstrap}")
    table.add_row("topic", result.topic)
    first, last = result.deliveries[0], result.deliveries[-1]
    table.add_row(
        "produced",
        f"{len(result.deliveries)} records, acks=all, "
        f"offsets {first.offset}-{last.offset} in {result.produce_s:.2f} s",
    )
    table.add_row(
        "consumed",
        f"{len(result.consumed)} records by group {result.group_id}, "
        f"committed by hand, in {result.consume_s:.2f} s (includes the group join)",
    )
    table.add_row("total", f"{total_s:.2f} s")
    console.print(table)
    console.print("[bold green]OK[/]: every record came back unchanged, at its offset")
