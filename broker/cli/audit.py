"""``broker audit``: export, verify, replay, prove, witness and report on the audit log.

Everything but ``export`` and ``--topic`` works offline on a bundle file (docs/AUDIT.md).
Those two connect in PLAINTEXT to ``--bootstrap``, or with the servers and TLS/SASL settings
of a daemon configuration given by ``--config``. A failed verification (also in ``report``,
after the report is written) exits with the AuditError code (11) after naming the first bad
index and the kind of tampering.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from broker import errors, keys
from broker.cli.keys import passphrase_options
from broker.clock import SystemClock
from broker.config import kafka_client_security, load_config
from broker.cosign import accord_digest
from broker.keys import Registry
from broker.pipeline.records import format_time
from broker.policy import Accord, load_accord
from broker.replay import (
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
    witness_log,
)
from broker.transport.kafka import ConsumerSettings, open_consumer
from broker.transport.security import PLAINTEXT, ClientSecurity

__all__ = ["group"]

_FILE = click.Path(dir_okay=False, exists=True, path_type=pathlib.Path)
_ANY_PATH = click.Path(exists=True, path_type=pathlib.Path)
_OUT = click.Path(dir_okay=False, path_type=pathlib.Path)
#: a replay shorter than this finishes before a progress bar would be worth drawing
_PROGRESS_FROM = 5000


@click.group(name="audit")
def group() -> None:
    """The signed audit log: export, verify, replay, prove, witness, report."""


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
@click.option("--quiet-seconds", type=click.FloatRange(0.5, 600), default=3.0, show_default=True)
def export(
    bootstrap: str | None,
    config_path: pathlib.Path | None,
    topic: str,
    registry_file: pathlib.Path,
    accord_paths: tuple[pathlib.Path, ...],
    out: pathlib.Path,
    quiet_seconds: float,
) -> None:
    """Export the audit TOPIC into a portable bundle file."""
    servers, security = _connection(bootstrap, config_path)
    accords = _load_accords(accord_paths)
    registry_bytes = registry_file.read_bytes()
    result = asyncio.run(
        _export(servers, topic, registry_bytes, accords, out, quiet_seconds, security=security)
    )
    click.echo(f"exported {result[0]} records from {topic} to {out}")
    for digest in sorted(result[1]):
        click.echo(f"warning: accord version {digest[:16]}... named by records was not supplied")


@group.command(name="verify")
@click.argument("bundle", type=_FILE, required=False)
@_topic_options
@_registry_option
@click.option(
    "--trusted-checkpoint",
    "trusted",
    type=_FILE,
    multiple=True,
    help="A checkpoint note obtained elsewhere (e.g. co-signed by a witness).",
)
@click.option(
    "--thorough",
    is_flag=True,
    help="Also check the own signature of every record a signed checkpoint already covers.",
)
def verify(
    bundle: pathlib.Path | None,
    topic: str | None,
    bootstrap: str | None,
    config_path: pathlib.Path | None,
    registry_file: pathlib.Path | None,
    trusted: tuple[pathlib.Path, ...],
    thorough: bool,
) -> None:
    """Verify the checkpoints, the records they sign and the unsigned tail of BUNDLE/--topic."""
    with _bundle_path(bundle, topic, bootstrap, config_path, registry_file) as path:
        registry = _registry(path, registry_file)
        notes = [p.read_bytes() for p in trusted]
        report = verify_entries(
            iter_entries(path), registry=registry, trusted_notes=notes, thorough=thorough
        )
    click.echo(
        f"{report.records} records, {report.checkpoints} checkpoints, "
        f"{report.signed_size} records signed, {report.unsigned_tail} not yet signed"
    )
    problem = report.first_problem
    if problem is not None:
        for finding in report.findings:
            click.echo(f"  {finding.describe()}", err=True)
        raise errors.AuditError(f"the audit log does not verify: {problem.describe()}")
    click.echo("ok: every signature and every signed entry verifies")


@group.command(name="replay")
@click.argument("bundle", type=_FILE)
@click.option("--accords", "accord_paths", type=_ANY_PATH, multiple=True, help="Extra accords.")
def replay(bundle: pathlib.Path, accord_paths: tuple[pathlib.Path, ...]) -> None:
    """Re-evaluate every decision in BUNDLE with the accord version it names."""
    accords = read_header(bundle).accords()
    accords.update({accord_digest(a): a for a in _load_accords(accord_paths)})
    total = sum(1 for _ in iter_entries(bundle))
    with Progress(
        "replaying",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=total < _PROGRESS_FROM,
    ) as bar:
        task = bar.add_task("replay", total=total)
        report = replay_entries(
            iter_entries(bundle),
            accords=accords,
            progress=lambda done: bar.update(task, completed=done),
        )
    versions = ", ".join(f"{k}: {v}" for k, v in sorted(report.by_accord.items()))
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(report.skipped.items()))
    click.echo(
        f"{report.records} records, {report.reevaluated} decisions re-evaluated ({versions})"
    )
    if skipped:
        click.echo(f"not policy decisions: {skipped}")
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


@group.command(name="witness")
@click.option("--bundle", type=_FILE, default=None, help="The bundle to witness.")
@_topic_options
@_registry_option
@click.option("--key", "key_file", type=_FILE, required=True, help="The witness signing key.")
@click.option(
    "--state", "state_dir", type=click.Path(file_okay=False, path_type=pathlib.Path), required=True
)
@passphrase_options
def witness(
    bundle: pathlib.Path | None,
    topic: str | None,
    bootstrap: str | None,
    config_path: pathlib.Path | None,
    registry_file: pathlib.Path | None,
    key_file: pathlib.Path,
    state_dir: pathlib.Path,
    passphrase_file: pathlib.Path | None,
    passphrase_env: str,
) -> None:
    """Co-sign the log's newest checkpoint after checking it extends the last one signed."""
    key = keys.load_signing_key(
        key_file, passphrase=keys.read_passphrase(file=passphrase_file, env=passphrase_env)
    )
    with _bundle_path(bundle, topic, bootstrap, config_path, registry_file) as path:
        result = witness_log(
            iter_entries(path),
            registry=_registry(path, registry_file),
            key=key,
            state_dir=state_dir,
            now=SystemClock().now(),
        )
    since = (
        "first use" if result.previous_size is None else f"consistent with {result.previous_size}"
    )
    click.echo(f"co-signed size {result.checkpoint.size} ({since}): {result.path}")


@group.command(name="report")
@click.argument("bundle", type=_FILE)
@click.option("--html", "html_out", type=_OUT, default=None, help="Also write the HTML page.")
@_registry_option
def report(
    bundle: pathlib.Path, html_out: pathlib.Path | None, registry_file: pathlib.Path | None
) -> None:
    """Summarise BUNDLE: the sharing matrix, refusals by reason, a timeline.

    Exits with the AuditError code (11), after writing the report, if BUNDLE does not verify.
    """
    verified = verify_entries(iter_entries(bundle), registry=_registry(bundle, registry_file))
    problem = verified.first_problem
    status = (
        f"verified: {verified.records} records, {verified.signed_size} under signed checkpoints"
        if problem is None
        else f"DOES NOT VERIFY: {problem.describe()}"
    )
    summary = summarize(iter_entries(bundle))
    click.echo(status)
    click.echo(render_text(summary), nl=False)
    if html_out is not None:
        title = f"Audit report: {read_header(bundle).topic}"
        html_out.write_text(render_html(summary, title=title, verification=status), "utf-8")
        click.echo(f"wrote {html_out}")
    if problem is not None:
        # after writing the report: it is most useful exactly when the log does not verify
        raise errors.AuditError(f"the log does not verify: {problem.describe()}")


def _load_accords(paths: tuple[pathlib.Path, ...]) -> list[Accord]:
    files: list[pathlib.Path] = []
    for path in paths:
        files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return [load_accord(f) for f in files]


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
) -> tuple[int, frozenset[str]]:
    settings = ConsumerSettings(
        bootstrap=bootstrap,
        # the generated ACLs grant auditors the groups prefixed "auditor-"
        group_id=f"auditor-{uuid.uuid4().hex[:12]}",
        client_id="broker-audit",
        session_timeout_ms=6000,
        security=security,
    )
    async with open_consumer(settings, [topic]) as consumer:
        result = await export_topic(
            consumer,
            out,
            topic=topic,
            exported_at=format_time(SystemClock().now()),
            registry_bytes=registry_bytes,
            accords=accords,
            quiet_s=quiet_s,
        )
    return result.entries, result.missing_accords
