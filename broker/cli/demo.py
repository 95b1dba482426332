"""`broker demo`: the whole exchange on the embedded broker, in one command.

An embedded Kafka-protocol broker starts (or, with ``--engine apache``, a local Apache Kafka
cluster with SASL_SSL and the ACL plan enforced, every daemon logging in as its own
principal); a federation of six partners (GB, RS, MK, XK, TR,
AL) is provisioned in a state directory (keys, signed registry, co-signed accords, configs);
the gateway and the adapters of GB, RS, MK and XK run as real processes; the scenario of
:mod:`broker.demo.scenario` is played while a table shows each view's fate. Then the gateway
stops (signing a last checkpoint), the audit log is exported to a bundle, verified and
replayed, and the HTML report is written beside it. ``--keep`` leaves everything running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live

from broker import errors
from broker.cli import _app
from broker.config import acl_plan, audit_topic, users_of, witness_topic
from broker.cosign import accord_digest
from broker.demo.after import AfterDelivery
from broker.demo.federation import DEFAULT_PARTNERS, GATEWAY, Federation, provision
from broker.demo.play import RecordedLog, play
from broker.demo.scenario import RUNNING, Step, expected_outcome, scenario
from broker.demo.tracker import Tracker
from broker.demo.view import fates_table, plain_line
from broker.pipeline.records import format_time
from broker.policy import load_accord
from broker.replay import (
    Verdict,
    export_topic,
    iter_entries,
    read_header,
    render_html,
    replay_entries,
    summarize,
    verify_entries,
)
from broker.runtime import EXPIRY_WARNING
from broker.transport import embedded
from broker.transport.access import KafkaAccess
from broker.transport.apache._layout import read_record
from broker.transport.apache.cluster import ApacheCluster
from broker.transport.selfcheck import RoundTrip, round_trip
from broker.trust import AccordBook, AccordStatus

__all__ = ["command"]

_PIDS = "pids.json"
#: where ``--engine apache`` keeps its cluster, inside the demo's kafka directory
_APACHE = "apache-kafka"
_STOP_TIMEOUT_S = 30.0


@click.command(name="demo")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to put the broker, keys, logs and report [default: a new temporary directory].",
)
@click.option("--keep", is_flag=True, help="Leave the broker and the daemons running after.")
@click.option(
    "--stop",
    "stop_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Stop what `broker demo --keep` left running in this state directory, then exit.",
)
@click.option(
    "--records",
    type=click.IntRange(1, 10_000),
    default=5,
    show_default=True,
    help="Records for the Kafka round trip that runs while the daemons start.",
)
@_app.engine_option
@_app.nodes_option
def command(
    state_dir: Path | None,
    keep: bool,
    stop_dir: Path | None,
    records: int,
    engine: str,
    nodes: int,
) -> None:
    """Run the exchange's scenario on a Kafka broker and show each message's fate.

    --engine apache runs a local Apache Kafka cluster of the pinned release instead of the
    embedded broker (java 17+ and mvn needed; exit status 23 without them): SCRAM over TLS,
    mutual TLS between nodes, and the ACLs of `broker deploy acls`, each daemon logging in
    as its own principal.

    Prints `demo: OK` and exits 0 when every view met its expected fate and the audit log
    verifies and replays; otherwise one line saying what failed and a non-zero status. The
    daemons and the broker are stopped either way, unless --keep (then `broker demo --stop`).
    """
    if stop_dir is not None:
        _stop_kept(stop_dir, Console())
        return
    started = time.monotonic()
    console = Console()
    root = state_dir or Path(tempfile.mkdtemp(prefix="broker-demo-"))
    kafka_dir = root / "kafka"
    access = _start_kafka(console, engine, nodes, kafka_dir)
    federation: Federation | None = None
    kept = False
    try:
        console.print(f"state directory {root}")
        federation = provision(root / "federation", kafka=access)
        console.print(
            "provisioned GB, RS, MK, XK, TR, AL: keys, signed registry, co-signed accords"
        )
        now = dt.datetime.now(dt.UTC)
        steps = scenario(now=now)
        accords = federation.accords(now=now)
        expected = _expectations(steps, accords.book(now), now=now)
        tracker = Tracker(
            delivery_dirs={code: federation.delivery_dir(code) for code in RUNNING},
            spool_dirs={code: federation.spool_dir(code) for code in RUNNING},
            audit_topic=audit_topic(federation.prefix),
            witness_topic=witness_topic(federation.prefix),
        )
        values = [f"demo record {n} of {records}".encode() for n in range(1, records + 1)]
        after = AfterDelivery()
        checked, stopped = _play(
            console, federation, steps, tracker, values, after=after, started=started
        )
        _print_round_trip(console, checked)
        _check_fates(tracker, steps, expected)
        summary = _audit(console, federation, tracker, root)
        if keep:
            federation.start(GATEWAY)
            _keep(console, federation, root, kafka_dir)
            kept = True
            statuses: dict[str, int] = {}
        else:
            statuses = stopped | federation.stop_all(timeout_s=_STOP_TIMEOUT_S)
            if any(statuses.values()):
                raise errors.AvailabilityError(f"a daemon did not exit cleanly: {statuses}")
        standing = _standing(accords.statuses(now), steps, expected, now=now)
        _print_summary(
            console,
            tracker,
            steps,
            [*after.lines, *summary, _suites(accords.statuses(now)), *standing],
            statuses,
            time.monotonic() - started,
        )
    finally:
        if not kept:
            if federation is not None:
                with contextlib.suppress(errors.BrokerError):
                    federation.stop_all(timeout_s=_STOP_TIMEOUT_S)
            _stop_kafka(kafka_dir)


def _start_kafka(console: Console, engine: str, nodes: int, kafka_dir: Path) -> KafkaAccess:
    """Start the chosen broker, detached (a kept demo outlives this command)."""
    if engine == "embedded":
        state = embedded.start_detached(port=0, state_dir=kafka_dir)
        console.print(f"embedded broker on {state.bootstrap}")
        return KafkaAccess(bootstrap=state.bootstrap, engine="embedded")
    cluster = ApacheCluster.create(
        kafka_dir / _APACHE,
        nodes=nodes,
        security="sasl_ssl",
        users=users_of(acl_plan(DEFAULT_PARTNERS, prefix="xb.")),
    )
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    cluster.detach()
    console.print(
        f"Apache Kafka {cluster.record.version}, {nodes} nodes on {cluster.bootstrap}: "
        "SASL_SSL (SCRAM-SHA-512), mutual TLS between nodes, ACLs enforced"
    )
    return cluster.access()


def _stop_kafka(kafka_dir: Path) -> None:
    """Stop whichever broker the demo started in ``kafka_dir``."""
    embedded.stop_detached(state_dir=kafka_dir)
    if read_record(kafka_dir / _APACHE) is not None:
        ApacheCluster.open(kafka_dir / _APACHE).stop()


def _play(
    console: Console,
    federation: Federation,
    steps: tuple[Step, ...],
    tracker: Tracker,
    values: list[bytes],
    *,
    after: AfterDelivery,
    started: float,
) -> tuple[RoundTrip, dict[str, int]]:
    """Play the scenario (and the Kafka round trip beside the daemons' start-up); the round
    trip and the gateway's exit status."""

    async def both() -> tuple[RoundTrip, dict[str, int]]:
        await federation.create_topics()
        return await asyncio.gather(
            round_trip(
                federation.bootstrap,
                values,
                topic_prefix="demo",
                security=federation.access.security(),
                idempotence=federation.access.capabilities.idempotence,
            ),
            play(federation, steps, tracker, on_change=redraw, after=after),
        )

    live = Live(console=console, refresh_per_second=8) if console.is_terminal else None

    def redraw() -> None:
        if live is not None:
            live.update(fates_table(tracker, steps, elapsed_s=time.monotonic() - started))
            return
        for row in tracker.take_changes():  # not a terminal (CI, a pipe): a line per change
            click.echo(plain_line(row, steps))

    if live is None:
        return asyncio.run(both())
    with live:
        return asyncio.run(both())


def _expectations(
    steps: tuple[Step, ...], accords: AccordBook, *, now: dt.datetime
) -> dict[tuple[int, str], str]:
    """The outcome each view must reach, given the accords in force today."""
    return {
        (index, recipient): expected_outcome(step, recipient, accords, now=now)
        for index, step in enumerate(steps)
        for recipient in step.to
    }


def _check_fates(
    tracker: Tracker, steps: tuple[Step, ...], expected: dict[tuple[int, str], str]
) -> None:
    for row in tracker.rows:
        wanted = expected[row.step, row.recipient]
        if row.outcome != wanted:
            raise errors.AvailabilityError(
                f"{steps[row.step].title} ({row.sender} -> {row.recipient}): "
                f"expected {wanted}, got {row.describe()}"
            )


def _suites(statuses: list[AccordStatus]) -> str:
    """The envelope suite each accord deciding now seals and signs its flows in."""
    deciding = sorted((s.deciding for s in statuses), key=lambda accord: accord.accord_id)
    return "suites: " + ", ".join(f"{a.accord_id} v{a.version} {a.suite}" for a in deciding)


def _standing(
    statuses: list[AccordStatus],
    steps: tuple[Step, ...],
    expected: dict[tuple[int, str], str],
    *,
    now: dt.datetime,
) -> list[str]:
    """What the summary says of the accords: which have lapsed and need renewal, which lapse
    within the warning window, and which of the scenario's flows that leaves undemonstrated."""
    lines = []
    for status in statuses:
        held, last = status.deciding, status.last
        name = f"{held.accord} v{held.version}"
        if status.state == "expired":
            lines.append(
                f"accord {name} expired {held.expires_when}: needs renewal "
                "(its flows are refused as accord_expired)"
            )
        elif status.state == "not_yet_effective":
            lines.append(f"accord {name} is not in force until {held.effective_text}")
        elif status.lapses_at - now <= EXPIRY_WARNING:
            lines.append(f"accord {name} lapses {last.expires_when}: renew it soon")
    unshown = [
        f"{steps[index].title} ({steps[index].sender} -> {recipient})"
        for (index, recipient), outcome in expected.items()
        if outcome != steps[index].expected
    ]
    if unshown:
        lines.append("not demonstrated, their accords are not in force: " + "; ".join(unshown))
    return lines or ["accords: every accord is in force"]


def _audit(console: Console, federation: Federation, tracker: Tracker, root: Path) -> list[str]:
    """Export the audit records to a bundle, verify and replay it, write the HTML report."""
    bundle = root / "audit.bundle"
    accords = [load_accord(path) for path in sorted(federation.accords_dir.glob("*.yaml"))]
    records = [*tracker.audit_records, *tracker.witness_records]
    exported = asyncio.run(
        export_topic(
            RecordedLog(records),
            bundle,
            topic=audit_topic(federation.prefix),
            witness_topic=witness_topic(federation.prefix),
            exported_at=format_time(dt.datetime.now(dt.UTC)),
            registry_bytes=federation.registry_path.read_bytes(),
            accords=accords,
            quiet_s=0.5,
            count=len(records),
        )
    )
    if exported.missing_accords:
        raise errors.AuditError(f"records name accords not supplied: {exported.missing_accords}")
    header = read_header(bundle)
    verified = verify_entries(
        iter_entries(bundle), registry=header.registry(), bundle_witnessed=header.witnessed
    )
    problem = verified.first_problem
    if problem is not None:
        raise errors.AuditError(f"the audit log does not verify: {problem.describe()}")
    if verified.unsigned_tail:
        raise errors.AuditError(f"{verified.unsigned_tail} audit records not under a checkpoint")
    if not verified.witnesses:
        raise errors.AuditError("no witness cosigned the newest checkpoint")
    by_digest = {accord_digest(a): a for a in accords}
    replayed = replay_entries(iter_entries(bundle), accords=by_digest)
    if not replayed.agrees:
        first = replayed.disagreements[0]
        raise errors.AuditError(f"a decision does not replay: {first.message_id}: {first.detail}")
    html = root / "report.html"
    title = f"Audit report: {read_header(bundle).topic}"
    summary = summarize(iter_entries(bundle), exclude=verified.unauthenticated)
    html.write_text(render_html(summary, title=title, verdict=Verdict.of(verified)))
    return [
        f"audit: {verified.records} records, {verified.checkpoints} checkpoints, "
        f"{verified.signed_size} signed, {verified.unsigned_tail} unsigned: verified",
        f"witness: the newest checkpoint is cosigned by {', '.join(verified.witnesses)}",
        f"replay: {replayed.reevaluated} decisions re-evaluated, no disagreements",
        f"bundle: {bundle}",
        f"report: {html}",
    ]


def _print_round_trip(console: Console, checked: RoundTrip) -> None:
    first, last = checked.deliveries[0], checked.deliveries[-1]
    console.print(
        f"kafka round trip: {len(checked.deliveries)} records, acks=all, offsets "
        f"{first.offset}-{last.offset}, read back by group {checked.group_id}"
    )
    console.print("OK: every record came back unchanged, at its offset")


def _print_summary(
    console: Console,
    tracker: Tracker,
    steps: tuple[Step, ...],
    audit: list[str],
    statuses: dict[str, int],
    elapsed_s: float,
) -> None:
    lines = ["", "summary"]
    for row in tracker.rows:
        detail = f" ({row.detail})" if row.detail and row.outcome == "receipt back" else ""
        lines.append(
            f"  {steps[row.step].title}: {row.sender} -> {row.recipient} "
            f"{row.message_type}: {row.outcome}{detail}"
        )
    lines += [f"  {line}" for line in audit]
    if statuses:
        lines.append(
            "  daemons stopped (SIGTERM): "
            + ", ".join(f"{name} exit {code}" for name, code in statuses.items())
        )
    lines.append(f"  elapsed: {elapsed_s:.1f} s")
    lines.append("demo: OK")
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _keep(console: Console, federation: Federation, root: Path, kafka_dir: Path) -> None:
    pids = federation.detach_all()
    (root / _PIDS).write_text(json.dumps(pids, indent=2) + "\n", encoding="utf-8")
    config = federation.config_path
    for line in (
        "",
        "kept running (pids in " + str(root / _PIDS) + "). Explore:",
        f"  broker inbox list --config {config('RS')}",
        f"  broker inbox list --config {config('GB')}",
        f"  broker quarantine list --config {config(GATEWAY)}",
        f"  broker send --config {config('GB')} --to RS MESSAGE.json",
        f"  broker audit export --bootstrap {federation.bootstrap} "
        f"--topic {audit_topic(federation.prefix)} --registry {federation.registry_path} "
        f"--accords {federation.accords_dir} -o audit.bundle",
        f"stop it all: broker demo --stop {root}",
        f"  (or: kill {' '.join(str(p) for p in pids.values())}; "
        f"broker kafka down --state-dir {kafka_dir})",
    ):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _stop_kept(root: Path, console: Console) -> None:
    """SIGTERM each daemon `--keep` recorded (if it is still that daemon), stop the broker."""
    try:
        pids: dict[str, int] = json.loads((root / _PIDS).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise errors.UsageError(f"{root} has no readable {_PIDS}: is it a kept demo?") from exc
    for name, pid in pids.items():
        if _is_daemon(pid, root):
            os.kill(pid, signal.SIGTERM)
            console.print(f"stopping {name} (pid {pid})")
    for pid in pids.values():
        for _ in _waiting(_STOP_TIMEOUT_S):
            if not _is_daemon(pid, root):
                break
    _stop_kafka(root / "kafka")
    (root / _PIDS).unlink(missing_ok=True)
    console.print(f"stopped; {root} is left for you to read or delete")


def _is_daemon(pid: int, root: Path) -> bool:
    """Whether ``pid`` is alive and runs a configuration from ``root`` (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(arg.startswith(str(root).encode()) for arg in argv)


def _waiting(timeout_s: float) -> Iterator[None]:
    """Yield every 0.1 s until ``timeout_s``: the daemons are not our children any more."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        yield
        time.sleep(0.1)
