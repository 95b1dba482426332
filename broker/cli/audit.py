"""``broker audit``: export, verify, replay, prove and report on the audit log.

Everything but ``export`` and ``--topic`` works offline on a bundle file (docs/AUDIT.md).
Those two connect in PLAINTEXT to ``--bootstrap``, or with the servers and TLS/SASL settings
of a daemon configuration given by ``--config``. ``verify``, ``replay`` and ``report`` all
verify first; a log that does not verify (in ``report``, after the report is written) exits
with the AuditError code (11) after naming the first bad index and the kind of problem.
Witnessing is a daemon of its own: ``broker witness run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from broker import errors, keys
from broker.bounded import read_bounded
from broker.clock import SystemClock
from broker.config import kafka_client_security, load_config, witness_topic
from broker.cosign import accord_digest
from broker.keys import Registry
from broker.pipeline.records import format_time
from broker.policy import Accord, load_accord
from broker.replay import (
    ActEvidence,
    Entry,
    Provenance,
    Verdict,
    VerifyReport,
    export_topic,
    iter_entries,
    prove_message,
    read_header,
    render_html,
    render_text,
    replay_entries,
    summarize,
    verify_entries,
    verify_proof,
    write_csv,
)
from broker.transport.kafka import ConsumerSettings, open_consumer
from broker.transport.security import PLAINTEXT, ClientSecurity
from broker.trust.acts import MAX_ACTS_FILE_BYTES, ActsFile, parse_acts_file

__all__ = ["group"]

_FILE = click.Path(dir_okay=False, exists=True, path_type=pathlib.Path)
_ANY_PATH = click.Path(exists=True, path_type=pathlib.Path)
_OUT = click.Path(dir_okay=False, path_type=pathlib.Path)
#: a replay or verification shorter than this ends before progress would be worth drawing
_PROGRESS_FROM = 5000


@click.group(name="audit")
def group() -> None:
    """The signed audit log: export, verify, replay, prove, report; and an adapter's own
    s.62 records (s62-export)."""


def _registry_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--registry``: pin the registry to trust instead of the bundle's embedded copy."""
    return click.option(
        "--registry",
        "registry_file",
        type=_FILE,
        default=None,
        help="The registry document to trust [default: the one embedded in the bundle].",
    )(command)


def _connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--bootstrap`` / ``--config``: where the audit topic is, and how to connect."""
    command = click.option(
        "--config",
        "config_path",
        type=_FILE,
        default=None,
        help="Take the bootstrap servers and TLS/SASL settings from this daemon configuration.",
    )(command)
    return click.option(
        "--bootstrap",
        default=None,
        help="Kafka bootstrap HOST:PORT [default: the --config file's; alone: PLAINTEXT].",
    )(command)


def _topic_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--topic`` with ``--bootstrap`` / ``--config``: read the live audit topic instead."""
    command = click.option("--topic", default=None, help="Read the audit topic instead.")(command)
    return _connection_options(command)


def _connection(
    bootstrap: str | None, config_path: pathlib.Path | None
) -> tuple[str, ClientSecurity]:
    """The bootstrap servers and client security: ``--bootstrap`` overrides the config's."""
    security = PLAINTEXT
    if config_path is not None:
        kafka = load_config(config_path).kafka
        security = kafka_client_security(kafka)
        bootstrap = bootstrap or ",".join(kafka.bootstrap)
    if bootstrap is None:
        raise errors.UsageError("give --bootstrap or --config")
    return bootstrap, security


@group.command(name="export")
@_connection_options
@click.option("--topic", default="xb.audit", show_default=True, help="The audit topic.")
@click.option("--registry", "registry_file", type=_FILE, required=True, help="Registry to embed.")
@click.option(
    "--accords",
    "accord_paths",
    type=_ANY_PATH,
    multiple=True,
    help="Accord files or directories of accord versions to embed (repeatable).",
)
@click.option("-o", "--out", type=_OUT, required=True, help="The bundle file to write.")
@click.option(
    "--quiet-seconds",
    type=click.FloatRange(0.5, 600),
    default=3.0,
    show_default=True,
    help="The export ends once the topic has been this long without a new record.",
)
@click.option(
    "--format",
    "bundle_format",
    type=click.Choice(["jsonl", "binary"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines (readable with any JSON tool), or the binary form: the same header and "
    "records, length-prefixed, faster to verify (docs/AUDIT.md).",
)
def export(
    bootstrap: str | None,
    config_path: pathlib.Path | None,
    topic: str,
    registry_file: pathlib.Path,
    accord_paths: tuple[pathlib.Path, ...],
    out: pathlib.Path,
    quiet_seconds: float,
    bundle_format: str,
) -> None:
    """Export the audit TOPIC into a portable bundle file."""
    servers, security = _connection(bootstrap, config_path)
    accords = _load_accords(accord_paths)
    registry_bytes = registry_file.read_bytes()
    result = asyncio.run(
        _export(
            servers,
            topic,
            registry_bytes,
            accords,
            out,
            quiet_seconds,
            security=security,
            binary=bundle_format == "binary",
        )
    )
    click.echo(f"exported {result[0]} records from {topic} to {out}")
    for digest in sorted(result[1]):
        click.echo(f"warning: accord version {digest[:16]}... named by records was not supplied")


@group.command(name="verify")
@click.argument("bundle", type=_FILE, required=False)
@_topic_options
@_registry_option
@click.option(
    "--witnessed",
    "witnessed",
    type=_FILE,
    multiple=True,
    help="A checkpoint note cosigned by a registered witness, obtained from the witness; "
    "the log must extend it (repeatable).",
)
@click.option(
    "--thorough",
    is_flag=True,
    help="Also judge every record a signed checkpoint already covers, as the checkpointer did.",
)
def verify(
    bundle: pathlib.Path | None,
    topic: str | None,
    bootstrap: str | None,
    config_path: pathlib.Path | None,
    registry_file: pathlib.Path | None,
    witnessed: tuple[pathlib.Path, ...],
    thorough: bool,
) -> None:
    """Verify every checkpoint, every record and every witnessed checkpoint of BUNDLE/--topic."""
    with _bundle_path(bundle, topic, bootstrap, config_path, registry_file) as path:
        report = _verify(path, registry_file, witnessed=witnessed, thorough=thorough)
    click.echo(
        f"{report.records} records, {report.checkpoints} checkpoints, "
        f"{report.signed_size} records signed, {report.unsigned_tail} not yet signed"
    )
    if report.latest is not None:
        names = ", ".join(report.witnesses) or "none"
        click.echo(
            f"newest checkpoint: size {report.latest.size}, cosigned by "
            f"{len(report.witnesses)} witnesses ({names})"
        )
    _fail_unless_intact(report)
    click.echo("ok: every record is a valid gateway record and every signed entry verifies")


@group.command(name="replay")
@click.argument("bundle", type=_FILE)
@click.option("--accords", "accord_paths", type=_ANY_PATH, multiple=True, help="Extra accords.")
@click.option(
    "--acts",
    "acts_paths",
    type=_ANY_PATH,
    multiple=True,
    help="Signed acts files (<accord>.acts.json, or a folder of them) to prove the log's "
    "suspensions, resumptions and terminations with.",
)
@_registry_option
@click.option("--thorough", is_flag=True, help="Verify with --thorough first.")
def replay(
    bundle: pathlib.Path,
    accord_paths: tuple[pathlib.Path, ...],
    acts_paths: tuple[pathlib.Path, ...],
    registry_file: pathlib.Path | None,
    thorough: bool,
) -> None:
    """Verify BUNDLE, then re-evaluate every authenticated decision with the accord version
    it names, and prove each signed act it records against --acts. A log that does not
    verify exits 11 before any decision is re-evaluated."""
    verified = _verify(bundle, registry_file, thorough=thorough)
    _fail_unless_intact(verified)
    accords = read_header(bundle).accords()
    accords.update({accord_digest(a): a for a in _load_accords(accord_paths)})
    evidence = (
        ActEvidence(
            _load_acts(acts_paths),
            accords=accords.values(),
            registry=_registry(bundle, registry_file),
        )
        if acts_paths
        else None
    )
    total = sum(1 for _ in iter_entries(bundle))
    with Progress(
        "replaying",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=(console := Console(stderr=True)),
        transient=True,
        disable=total < _PROGRESS_FROM or not console.is_terminal,
    ) as bar:
        task = bar.add_task("replay", total=total)
        report = replay_entries(
            iter_entries(bundle),
            accords=accords,
            exclude=verified.unauthenticated,
            progress=lambda done: bar.update(task, completed=done),
            acts=evidence,
        )
    versions = ", ".join(f"{k}: {v}" for k, v in sorted(report.by_accord.items()))
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(report.skipped.items()))
    click.echo(
        f"{report.records} records, {report.reevaluated} decisions re-evaluated ({versions})"
    )
    if skipped:
        click.echo(f"not policy decisions: {skipped}")
    if evidence is not None:
        click.echo(f"signed acts proven: {report.acts_proven}")
    elif report.acts_unproven:
        click.echo(
            f"warning: {report.acts_unproven} signed acts recorded and not proven "
            "(give their acts files with --acts)",
            err=True,
        )
    for item in report.disagreements:
        click.echo(f"  index {item.index} message {item.message_id}: {item.detail}", err=True)
    if not report.agrees:
        raise errors.AuditError(f"{len(report.disagreements)} decisions do not replay as recorded")
    click.echo("ok: every decision replays as recorded")


@group.command(name="prove")
@click.argument("bundle", type=_FILE)
@click.option("--message-id", required=True, help="The message whose audit records to prove.")
@_registry_option
@click.option("-o", "--out", type=_OUT, required=True, help="The proof file to write.")
def prove(
    bundle: pathlib.Path, message_id: str, registry_file: pathlib.Path | None, out: pathlib.Path
) -> None:
    """Write an offline inclusion proof for MESSAGE_ID's audit records."""
    registry = _registry(bundle, registry_file)
    proof = prove_message(lambda: iter_entries(bundle), message_id=message_id, registry=registry)
    out.write_bytes(proof)
    click.echo(f"wrote {out}")


@group.command(name="verify-proof")
@click.argument("proof", type=_FILE)
@click.option("--registry", "registry_file", type=_FILE, required=True, help="Trusted registry.")
def verify_proof_command(proof: pathlib.Path, registry_file: pathlib.Path) -> None:
    """Check an inclusion proof file offline against the registry."""
    registry = keys.load_trusted_registry(registry_file.read_bytes())
    for item in verify_proof(proof.read_bytes(), registry=registry):
        click.echo(
            f"ok: {item.record.kind} of message {item.record.message_id} is record {item.index} "
            f"of the log signed at size {item.checkpoint.size} "
            f"({format_time(item.checkpoint.timestamp)})"
        )


@group.command(name="report")
@click.argument("bundle", type=_FILE)
@click.option("--html", "html_out", type=_OUT, default=None, help="Also write the HTML page.")
@click.option("--csv", "csv_out", type=_OUT, default=None, help="Also write every decision as CSV.")
@_registry_option
@click.option("--thorough", is_flag=True, help="Verify with --thorough first.")
def report(
    bundle: pathlib.Path,
    html_out: pathlib.Path | None,
    csv_out: pathlib.Path | None,
    registry_file: pathlib.Path | None,
    thorough: bool,
) -> None:
    """Verify BUNDLE, then summarise its authenticated records: totals, the sharing matrix,
    refusals by reason, a timeline and the decisions. Records that do not verify are left
    out of every count.

    Exits with the AuditError code (11), after writing the report, if BUNDLE does not verify.
    """
    verified = _verify(bundle, registry_file, thorough=thorough)
    verdict = Verdict.of(verified)
    summary = summarize(iter_entries(bundle), exclude=verified.unauthenticated)
    click.echo(verdict.text)
    click.echo(render_text(summary), nl=False)
    if html_out is not None:
        header = read_header(bundle)
        page = render_html(
            summary,
            title=f"Audit report: {header.topic}",
            verdict=verdict,
            provenance=Provenance.of(verified, header),
        )
        html_out.write_text(page, "utf-8")
        click.echo(f"wrote {html_out}")
    if csv_out is not None:
        with csv_out.open("w", encoding="utf-8", newline="") as out:
            rows = write_csv(iter_entries(bundle), out, exclude=verified.unauthenticated)
        click.echo(f"wrote {csv_out} ({rows} decisions)")
    # after writing the report: it is most useful exactly when the log does not verify
    _fail_unless_intact(verified)


def _verify(
    bundle: pathlib.Path,
    registry_file: pathlib.Path | None,
    *,
    witnessed: tuple[pathlib.Path, ...] = (),
    thorough: bool = False,
) -> VerifyReport:
    registry = _registry(bundle, registry_file)
    with _counting("verifying" + (" (thorough)" if thorough else "")) as count:
        return verify_entries(
            count(iter_entries(bundle)),
            registry=registry,
            witnessed=[path.read_bytes() for path in witnessed],
            bundle_witnessed=read_header(bundle).witnessed,
            thorough=thorough,
        )


@contextlib.contextmanager
def _counting(what: str) -> Iterator[Callable[[Iterable[Entry]], Iterator[Entry]]]:
    """A wrapper for an entry stream that shows, on stderr if it is a terminal, how many entries
    have gone through and for how long, once past :data:`_PROGRESS_FROM` (without a second
    pass over the bundle to count them first)."""
    console = Console(stderr=True)
    with Progress(
        TextColumn(what),
        TextColumn("{task.completed:,} records"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(what, total=None, visible=False)

        def count(entries: Iterable[Entry]) -> Iterator[Entry]:
            for done, entry in enumerate(entries, start=1):
                if done % 1000 == 0:
                    bar.update(task, completed=done, visible=done >= _PROGRESS_FROM)
                yield entry

        yield count


def _fail_unless_intact(report: VerifyReport) -> None:
    """Name every finding, then exit 11 with the first one."""
    problem = report.first_problem
    if problem is None:
        return
    for finding in report.findings:
        click.echo(f"  {finding.describe()}", err=True)
    raise errors.AuditError(f"the audit log does not verify: {problem.describe()}")


def _load_accords(paths: tuple[pathlib.Path, ...]) -> list[Accord]:
    files: list[pathlib.Path] = []
    for path in paths:
        files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return [load_accord(f) for f in files]


def _load_acts(paths: tuple[pathlib.Path, ...]) -> list[ActsFile]:
    files: list[pathlib.Path] = []
    for path in paths:
        files += sorted(path.glob("*.acts.json")) if path.is_dir() else [path]
    return [
        parse_acts_file(
            read_bounded(f, limit=MAX_ACTS_FILE_BYTES, what="acts", too_large=errors.PolicyError),
            source=str(f),
        )
        for f in files
    ]


def _registry(bundle: pathlib.Path, registry_file: pathlib.Path | None) -> Registry:
    if registry_file is not None:
        return keys.load_trusted_registry(registry_file.read_bytes())
    return read_header(bundle).registry()


@contextlib.contextmanager
def _bundle_path(
    bundle: pathlib.Path | None,
    topic: str | None,
    bootstrap: str | None,
    config_path: pathlib.Path | None,
    registry_file: pathlib.Path | None,
) -> Iterator[pathlib.Path]:
    """The bundle file to read: the one given, or a temporary export of ``--topic``."""
    if (bundle is None) == (topic is None):
        raise errors.UsageError(
            "give either a bundle file or --topic (with --bootstrap or --config)"
        )
    if bundle is not None:
        yield bundle
        return
    if (bootstrap is None and config_path is None) or registry_file is None or topic is None:
        raise errors.UsageError("--topic needs --bootstrap or --config, and --registry")
    servers, security = _connection(bootstrap, config_path)
    registry_bytes = registry_file.read_bytes()
    with tempfile.TemporaryDirectory(prefix="broker-audit-") as scratch:
        path = pathlib.Path(scratch) / "audit.bundle"
        asyncio.run(_export(servers, topic, registry_bytes, [], path, 3.0, security=security))
        yield path


async def _export(
    bootstrap: str,
    topic: str,
    registry_bytes: bytes,
    accords: list[Accord],
    out: pathlib.Path,
    quiet_s: float,
    *,
    security: ClientSecurity,
    binary: bool = False,
) -> tuple[int, frozenset[str]]:
    settings = ConsumerSettings(
        bootstrap=bootstrap,
        # the generated ACLs grant auditors the groups prefixed "auditor-"
        group_id=f"auditor-{uuid.uuid4().hex[:12]}",
        client_id="broker-audit",
        session_timeout_ms=6000,
        security=security,
    )
    witnesses = _witness_topic_of(topic)
    async with open_consumer(settings, [topic, *([witnesses] if witnesses else [])]) as consumer:
        result = await export_topic(
            consumer,
            out,
            topic=topic,
            witness_topic=witnesses,
            exported_at=format_time(SystemClock().now()),
            registry_bytes=registry_bytes,
            accords=accords,
            quiet_s=quiet_s,
            binary=binary,
        )
    return result.entries, result.missing_accords


def _witness_topic_of(topic: str) -> str | None:
    """The witness topic beside audit topic ``<prefix>audit``: ``<prefix>witness``."""
    prefix = topic.removesuffix("audit")
    try:
        return witness_topic(prefix) if prefix != topic else None
    except errors.UsageError:
        return None
