"""`broker kafka up|down|topics create`: a broker on this machine (the embedded one, or a
local Apache Kafka cluster), and the exchange's topics on any cluster."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from broker import keys
from broker.cli import _app
from broker.config import (
    DEFAULT_PREFIX,
    acl_plan,
    audit_topic,
    kafka_client_security,
    load_config,
    replication_for,
    topic_plan,
    users_of,
)
from broker.demo.federation import DEFAULT_PARTNERS
from broker.errors import EmbeddedBrokerError, LocalClusterError, RegistryError, UsageError
from broker.transport import embedded
from broker.transport.admin import broker_ids, create_acls
from broker.transport.apache._layout import read_record
from broker.transport.apache.cluster import ApacheCluster, Security
from broker.transport.kafka import TopicSpec, create_topics
from broker.transport.security import PLAINTEXT

__all__ = ["group"]

_STATE_DIR_HELP = (
    f"Where the pid and state files live "
    f"[default: ${embedded.STATE_DIR_ENV} or ~/.local/state/broker]."
)


#: where a local Apache Kafka cluster lives inside the state directory
_APACHE_DIR = "apache-kafka"


@click.group(name="kafka")
def group() -> None:
    """A Kafka broker on this machine, on 127.0.0.1 only, and the exchange's topics.

    --engine embedded (the default): Tansu, in memory, no TLS and no authentication; set
    BROKER_KAFKA_BIN to run another Tansu binary than the packaged one. --engine apache: a
    local KRaft cluster of the pinned Apache Kafka release, resolved with Maven from Maven
    Central into $BROKER_CACHE_DIR (default ~/.cache/broker); it needs java 17+ and mvn.
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
@_app.engine_option
@_app.nodes_option
@click.option(
    "--security",
    type=click.Choice(["sasl_ssl", "plaintext"]),
    default="sasl_ssl",
    show_default=True,
    help="apache: SCRAM over TLS with ACLs enforced, or no security at all.",
)
@click.option(
    "--partners",
    default=",".join(DEFAULT_PARTNERS),
    show_default=True,
    help="apache, sasl_ssl: the partners whose principals and ACLs the cluster gets.",
)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Topic prefix.")
def up(
    port: int,
    detach: bool,
    state_dir: Path | None,
    engine: str,
    nodes: int,
    security: Security,
    partners: str,
    prefix: str,
) -> None:
    """Start a broker and print its bootstrap address (host:port[,...]).

    In the foreground it runs until Ctrl-C or SIGTERM, then stops cleanly. With --detach it
    keeps running after this command returns; `broker kafka down` stops it.

    With --engine apache the cluster lives in STATE_DIR/apache-kafka: a first start formats
    it (with SCRAM users admin, gateway, auditor and adapter-<p>, passwords in its secrets/
    directory, and the ACLs of `broker deploy acls` for --partners and --prefix); a later
    start runs the same cluster again from its disks.

    Exit status 22 if the embedded broker cannot start (binary missing, port busy, already
    running), 23 if the Apache Kafka cluster cannot (java or mvn missing, a node failing).
    """
    directory = state_dir or embedded.default_state_dir()
    if engine == "apache":
        codes = [code.strip() for code in partners.split(",") if code.strip()]
        _apache_up(directory / _APACHE_DIR, nodes, security, codes, prefix, detach=detach)
        return
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
    """Stop what `broker kafka up` started in the state directory and wait until it exited:
    the embedded broker, a local Apache Kafka cluster, or both (its disks are kept).

    Exit status 0 also when nothing is running (it says so); 22 or 23 if it would not stop.
    """
    directory = state_dir or embedded.default_state_dir()
    stopped = embedded.stop_detached(state_dir=directory)
    if stopped is None:
        click.echo("no embedded broker is running")
    else:
        click.echo(f"stopped the embedded broker at {stopped.bootstrap} (pid {stopped.pid})")
    record = read_record(directory / _APACHE_DIR)
    if record is not None:
        cluster = ApacheCluster.open(directory / _APACHE_DIR)
        running = [n for n in cluster.node_ids if cluster.is_running(n)]
        cluster.stop()
        if running:
            click.echo(f"stopped the Apache Kafka cluster at {cluster.bootstrap} (nodes {running})")
        else:
            click.echo("no Apache Kafka node is running")


def _apache_up(
    root: Path, nodes: int, security: Security, partners: list[str], prefix: str, *, detach: bool
) -> None:
    rules = acl_plan(partners, prefix=prefix)
    if read_record(root) is None:
        cluster = ApacheCluster.create(root, nodes=nodes, security=security, users=users_of(rules))
        fresh = True
    else:
        cluster = ApacheCluster.open(root)
        record = cluster.record
        if (len(record.nodes), record.security) != (nodes, security):
            raise LocalClusterError(
                f"{root} holds a {len(record.nodes)}-node {record.security} cluster; remove it "
                f"to make a {nodes}-node {security} one"
            )
        fresh = False
    stop_requested = threading.Event()
    previous = _on_stop_signals(stop_requested)
    try:
        cluster.start()
        if fresh and security == "sasl_ssl":
            asyncio.run(create_acls(cluster.bootstrap, rules, security=cluster.client_security()))
        click.echo(cluster.bootstrap)
        if security == "sasl_ssl":
            click.echo(
                f"SASL_SSL, SCRAM-SHA-512; CA {cluster.ca_file}; passwords in "
                f"{root / 'secrets'} (admin is a super user)",
                err=True,
            )
        if detach:
            cluster.detach()
            return
        click.echo("press Ctrl-C to stop", err=True)
        _watch_until_stopped(cluster, stop_requested)
    except BaseException:
        cluster.stop()
        raise
    finally:
        _restore_signals(previous)
    cluster.stop()
    click.echo("stopped", err=True)


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
@click.option(
    "--partitions",
    type=click.IntRange(1, 1_000),
    default=3,
    show_default=True,
    help="Partitions of each topic created (existing topics are left as they are).",
)
@click.option(
    "--replication-factor",
    type=click.IntRange(1, 16),
    default=None,
    help="[default: 3 on a cluster of three brokers or more, else one per broker]",
)
@click.option(
    "--min-insync-replicas",
    type=click.IntRange(1, 16),
    default=None,
    help="[default: 2 with three replicas or more, else 1]",
)
def topics_create(
    bootstrap: str | None,
    config_path: str | None,
    prefix: str,
    partners: str | None,
    registry_file: Path | None,
    partitions: int,
    replication_factor: int | None,
    min_insync_replicas: int | None,
) -> None:
    """Create every topic the exchange needs; topics that already exist are left as they are.

    The audit topic always has one partition (one total order for the hash chain). Unless
    told otherwise it asks the cluster how many brokers it has and chooses safe settings:
    replication factor 3 and min.insync.replicas 2 on three brokers or more, so an
    acknowledged record survives the loss of a broker; on a smaller cluster one replica per
    broker, with a warning, since the audit log would not survive losing its broker. Exit
    status 2 on bad options, 9 for a registry that does not verify, 21 if Kafka refused.
    """
    codes = _partner_codes(partners, registry_file)
    if replication_factor is not None and min_insync_replicas is not None:
        # checked before touching Kafka: the plan refuses min.insync above the replicas
        topic_plan(
            codes,
            prefix=prefix,
            partitions=partitions,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
        )
    security = PLAINTEXT
    if config_path is not None:
        kafka = load_config(config_path).kafka
        security = kafka_client_security(kafka)
        bootstrap = bootstrap or ",".join(kafka.bootstrap)
    if bootstrap is None:
        raise UsageError("give --bootstrap or --config")
    brokers = len(asyncio.run(broker_ids(bootstrap, security=security)))
    safe_replicas, safe_in_sync = replication_for(brokers)
    replicas = replication_factor if replication_factor is not None else safe_replicas
    if replicas > brokers:
        raise UsageError(f"replication factor {replicas} is more than the {brokers} brokers")
    in_sync = min_insync_replicas
    if in_sync is None:
        in_sync = safe_in_sync if replicas == safe_replicas else max(1, min(2, replicas - 1))
    plan = topic_plan(
        codes,
        prefix=prefix,
        partitions=partitions,
        replication_factor=replicas,
        min_insync_replicas=in_sync,
    )
    if replicas < 3:
        click.echo(
            f"warning: replication factor {replicas} on a cluster of {brokers} broker(s): the "
            f"audit log ({audit_topic(prefix)}) and every topic are lost with "
            f"{'that broker' if replicas == 1 else 'those brokers'}; use 3 brokers in production",
            err=True,
        )
    specs = [TopicSpec(t.name, t.partitions, t.replication_factor, dict(t.configs)) for t in plan]
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


def _watch_until_stopped(cluster: ApacheCluster, stop_requested: threading.Event) -> None:
    # wake up now and then to notice a node that died on its own
    while not stop_requested.wait(timeout=1.0):
        if not all(cluster.is_running(n) for n in cluster.node_ids):
            raise LocalClusterError("a node of the Apache Kafka cluster exited unexpectedly")


_SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def _on_stop_signals(event: threading.Event) -> dict[signal.Signals, _SignalHandler]:
    """Turn Ctrl-C and SIGTERM into ``event``, so the broker is stopped in an orderly way."""

    def handle(_signum: int, _frame: FrameType | None) -> None:
        event.set()

    return {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(previous: dict[signal.Signals, _SignalHandler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
