"""``broker adapter run``, ``broker adapter rejected list|show`` and ``broker inbox
list|show|search|export|erase``: adapter commands (``broker send`` and ``broker status`` are in
:mod:`broker.cli.sending`)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from pathlib import Path

import click
import structlog
from rich.table import Table

from broker import errors, keys, limits
from broker import logging as broker_logging
from broker.adapter import DeliveryDir, serve_config
from broker.bounded import read_bounded
from broker.cli._app import console
from broker.cli._reader import inbox_of, officer_option, reading_as
from broker.clock import SystemClock, format_instant
from broker.config import AdapterConfig, load_config, validate_partner
from broker.runtime import StopSignal, route_library_logs, run
from broker.schema import EvaluationScheme, Message, parse_message, stix, translate_evaluation
from broker.schema.handling import duty
from broker.schema.stix import StixSource
from broker.store import InboxStore, Rejection, StoredMessage

__all__ = ["adapter_group", "inbox_group", "open_inbox"]

_CONFIG_HELP = "The adapter's YAML configuration (or set BROKER_CONFIG)."
_UNRECORDED = (
    "stored before the rule was recorded: store.retention_days or the message's own expiry"
)
_log = structlog.get_logger(__name__)
_DRAIN_TIMEOUT_S = 30.0
_DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]


def _config(path: str) -> AdapterConfig:
    """The adapter's configuration: every command here reads it as the daemon does."""
    return load_config(path, AdapterConfig)


@click.group("adapter")
def adapter_group() -> None:
    """Run a partner's adapter."""


@adapter_group.command("run")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
def run_command(config_path: str) -> None:
    """Run the adapter daemon until SIGTERM (drains, commits, exits 0)."""
    config = _config(config_path)
    broker_logging.configure(
        style=config.observability.log_format, level=config.observability.log_level
    )
    route_library_logs()

    async def serve(stop: StopSignal) -> None:
        await serve_config(config, stop)

    sys.exit(run(serve, drain_timeout_s=_DRAIN_TIMEOUT_S, name="adapter"))


@click.group("inbox")
def inbox_group() -> None:
    """Read the adapter's local inbox."""


def open_inbox(config_path: str) -> InboxStore:
    """The inbox named by the adapter's configuration (it must exist: the daemon made it)."""
    return inbox_of(_config(config_path))


@inbox_group.command("list")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--limit", default=1000, show_default=True, help="At most this many messages.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(config_path: str, limit: int, as_json: bool) -> None:
    """List received messages, oldest first (metadata only; content stays encrypted)."""
    with open_inbox(config_path) as inbox:
        rows = inbox.list(limit=limit)
    if as_json:
        for row in rows:
            click.echo(json.dumps(_stored_document(row), ensure_ascii=False))
        return
    table = Table(title=f"inbox: {len(rows)} message(s)")
    for column in ("received at", "message id", "sender", "type", "classification", "case id"):
        table.add_column(column, no_wrap=column == "message id")
    table.add_column("kept until (rule)")
    table.add_column("shredded?")
    for row in rows:
        table.add_row(
            row.received_at.strftime("%Y-%m-%d %H:%M:%SZ"),
            row.message_id,
            row.sender,
            str(row.message_type),
            str(row.labels.classification),
            row.case_id or "",
            f"{row.retain_until:%Y-%m-%d} ({row.retention_rule or 'not recorded'})",
            row.shredded_at.strftime("%Y-%m-%d") if row.shredded_at else "no",
        )
    console().print(table)


def _stored_document(row: StoredMessage) -> dict[str, object]:
    """What `inbox list --json` and `inbox search --json` print of one message."""
    return {
        "message_id": row.message_id,
        "sender": row.sender,
        "type": str(row.message_type),
        "classification": str(row.labels.classification),
        "case_id": row.case_id,
        "received_at": row.received_at.isoformat(),
        "retain_until": row.retain_until.isoformat(),
        "retention_rule": row.retention_rule,
        "shredded_at": None if row.shredded_at is None else row.shredded_at.isoformat(),
        "origin": None if row.origin is None else row.origin.model_dump(),
    }


@inbox_group.command("show")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option(
    "--grading-as",
    type=click.Choice([scheme.value for scheme in EvaluationScheme]),
    default=None,
    help="Also show the sender's grading translated into this scheme, with what it loses "
    "(default: the configuration's store.evaluation_scheme).",
)
@officer_option()
@click.argument("message_id")
def show_command(
    config_path: str, grading_as: str | None, officer_id: str | None, message_id: str
) -> None:
    """Print one verified message as JSON, with until when it is kept and which rule says so.
    MESSAGE_ID may be any unique prefix of the id (8 characters at least)."""
    scheme = grading_as or _reading_scheme(_config(config_path))
    with open_inbox(config_path) as inbox:
        reading = reading_as(inbox, officer_id)
        message_id = inbox.resolve(message_id)
        meta = inbox.metadata(message_id)
        plaintext = inbox.get(message_id)
        parsed = parse_message(plaintext)
        reading.may_see(parsed.handling_conditions, message_id=message_id)
        # logged before anything is shown: a read that cannot be logged does not happen
        inbox.reads.note([message_id], reader=reading.name, action="show", now=SystemClock().now())
    document = {
        "message_id": meta.message_id,
        "sender": meta.sender,
        "origin": None if meta.origin is None else meta.origin.model_dump(),
        "received_at": meta.received_at.isoformat(),
        "retain_until": meta.retain_until.isoformat(),
        "retention": {
            "rule": meta.retention_rule,
            "why": f"kept until {format_instant(meta.retain_until)}: "
            f"{meta.retention_reason or _UNRECORDED}",
        },
        "message": json.loads(plaintext),
    }
    if parsed.handling_conditions:
        document["duties"] = [duty(c) for c in parsed.handling_conditions]
    if scheme is not None:
        document["grading"] = _grading_as(parsed, EvaluationScheme(scheme))
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _reading_scheme(config: AdapterConfig) -> str | None:
    """The scheme this agency reads gradings in: its configuration's, else the registry's
    entry for its partner (None when neither names one, or the registry cannot be read)."""
    if config.store.evaluation_scheme is not None:
        return config.store.evaluation_scheme
    registry = registry_on_file(config)
    return None if registry is None else registry.evaluation_scheme_of(config.partner)


def _grading_as(message: Message, scheme: EvaluationScheme) -> dict[str, object]:
    """The sender's grading as this agency reads it; the message itself keeps the original."""
    if message.evaluation is None:
        return {"scheme": scheme.value, "evaluation": None, "lost": []}
    translated = translate_evaluation(message.evaluation, scheme)
    return {
        "scheme": scheme.value,
        "from": message.evaluation.scheme,
        "evaluation": translated.evaluation.model_dump(mode="json"),
        "lost": list(translated.lost),
    }


@inbox_group.command("search")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.argument("words", nargs=-1)
@click.option("--sender", help="Only from this partner (e.g. GB).")
@click.option("--case", "case_id", help="Only this case id.")
@click.option("--type", "message_type", help="Only this message type (e.g. network.report).")
@click.option("--since", type=click.DateTime(_DATE_FORMATS), help="Received at or after (UTC).")
@click.option("--until", type=click.DateTime(_DATE_FORMATS), help="Received before (UTC).")
@click.option("--limit", default=1000, show_default=True, help="At most this many messages.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@officer_option()
def search_command(
    config_path: str,
    words: tuple[str, ...],
    sender: str | None,
    case_id: str | None,
    message_type: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    as_json: bool,
    officer_id: str | None,
) -> None:
    """Find received messages holding every one of WORDS (in any script: a name written in
    Cyrillic finds it written in Latin, with or without diacritics; a phone number with or
    without spaces), and matching every filter given. Shredded messages are never found, nor
    (on an adapter with officers) those restricted to units the officer is not in."""
    with open_inbox(config_path) as inbox:
        # that a view holds a word is its content too: the same officer check as a read
        reading = reading_as(inbox, officer_id)
        found = inbox.search(
            " ".join(words),
            sender=None if sender is None else validate_partner(sender),
            case_id=case_id,
            message_type=message_type,
            since=None if since is None else since.replace(tzinfo=dt.UTC),
            until=None if until is None else until.replace(tzinfo=dt.UTC),
            limit=limit,
        )
        rows = [row for row in found if reading.may_find(inbox, row.message_id)]
    if as_json:
        for row in rows:
            click.echo(json.dumps(_stored_document(row), ensure_ascii=False))
        return
    table = Table(title=f"found: {len(rows)} message(s)")
    for column in ("received at", "message id", "sender", "type", "case id"):
        table.add_column(column, no_wrap=column == "message id")
    for row in rows:
        table.add_row(
            row.received_at.strftime("%Y-%m-%d %H:%M:%SZ"),
            row.message_id,
            row.sender,
            str(row.message_type),
            row.case_id or "",
        )
    console().print(table)


@inbox_group.command("export")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["stix"]),
    default="stix",
    show_default=True,
    help="STIX 2.1 with TLP 2.0 markings (docs/ADAPTER.md).",
)
@click.option(
    "--message-id",
    "message_ids",
    multiple=True,
    help="Export these messages only (repeatable); default: every one not shredded.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The bundle file to write.",
)
@officer_option()
def export_command(
    config_path: str,
    output_format: str,
    message_ids: tuple[str, ...],
    out: Path,
    officer_id: str | None,
) -> None:
    """Write received messages as one STIX 2.1 bundle for analysis tools (every one must be
    one the officer may see)."""
    config = _config(config_path)
    names = _partner_names(config)
    with open_inbox(config_path) as inbox:
        reading = reading_as(inbox, officer_id)
        rows = (
            [inbox.metadata(m) for m in message_ids]
            if message_ids
            else list(inbox.list(include_shredded=False, limit=100_000))
        )
        sources = []
        for row in rows:
            if row.shredded_at is not None:
                raise errors.UsageError(f"message {row.message_id} was shredded: nothing to export")
            message = parse_message(inbox.get(row.message_id))
            reading.may_see(message.handling_conditions, message_id=row.message_id)
            sources.append(
                StixSource(
                    message_id=row.message_id,
                    sender=row.sender,
                    sender_name=names.get(row.sender, row.sender),
                    received_at=row.received_at,
                    message=message,
                )
            )
        inbox.reads.note(
            [row.message_id for row in rows],
            reader=reading.name,
            action="export",
            now=SystemClock().now(),
        )
    out.write_text(stix.dumps(stix.stix_bundle(sources)), encoding="utf-8")
    click.echo(f"wrote {out}: {len(sources)} message(s) as a STIX 2.1 bundle ({output_format})")


@inbox_group.command("reads")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.argument("message_id")
def reads_command(config_path: str, as_json: bool, message_id: str) -> None:
    """Who read one received message, and when (inbox show, export, disclose), oldest first.
    MESSAGE_ID may be any unique prefix of the id; the reads of a shredded message stay."""
    with open_inbox(config_path) as inbox:
        message_id = inbox.resolve(message_id)
        reads = inbox.reads.of(message_id)
    for read in reads:
        if as_json:
            document = {"message_id": read.message_id, "read_at": format_instant(read.read_at),
                        "reader": read.reader, "action": read.action}  # fmt: skip
            click.echo(json.dumps(document, ensure_ascii=False))
        else:
            click.echo(f"{format_instant(read.read_at)}  {read.action:<8}  {read.reader}")
    if not reads and not as_json:
        click.echo(f"{message_id}: no logged reads")


def _partner_names(config: AdapterConfig) -> dict[str, str]:
    """Partners' display names from the registry file. An unreadable registry leaves the
    codes."""
    registry = registry_on_file(config)
    if registry is None:
        return {}
    return {str(code): registry.name_of(code) for code in registry.partners}


def registry_on_file(config: AdapterConfig) -> keys.Registry | None:
    """The registry file, its own signatures checked but not against the trusted roots: for
    what is shown (names, the grading scheme) and the operator's own checks (``officers
    add``'s units), never for a decision on what is sent or received; None if it cannot be
    read."""
    try:
        data = read_bounded(
            config.registry.path, limit=limits.REGISTRY_MAX_BYTES, what="the registry"
        )
        return keys.load_trusted_registry(data)
    except errors.BrokerError:
        return None


@inbox_group.command("erase")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--reason", required=True, help="Why, for the record (a request's reference).")
@click.argument("message_id")
def erase_command(config_path: str, reason: str, message_id: str) -> None:
    """Erase one received message now: its key, content and evidence are destroyed (the
    metadata stays, with the reason), and its file in the delivery directory is deleted.
    The running adapter drops anything it still holds of it within a minute."""
    config = _config(config_path)
    now = SystemClock().now()
    with open_inbox(config_path) as inbox:
        # the row keeps when and why, next to what is left of the message: the local record
        meta = inbox.erase(message_id, now=now, reason=reason)
        files = 0
        if config.store.delivery_dir is not None:
            files = DeliveryDir(config.store.delivery_dir).remove_many([meta.message_id])
    _log.warning(
        "message_erased",
        message_id=meta.message_id,
        sender=meta.sender,
        reason=meta.shred_reason,
        delivery_files_removed=files,
    )
    click.echo(
        f"erased {meta.message_id} from {meta.sender} at {format_instant(now)} "
        f"({meta.shred_reason}); {files} delivery file(s) removed"
    )


@adapter_group.group("rejected")
def rejected_group() -> None:
    """Deliveries this adapter refused (kept with their reason; read-only)."""


def _rejection_document(row: Rejection) -> dict[str, object]:
    document: dict[str, object] = {
        "id": row.id,
        "rejected_at": row.rejected_at.isoformat(),
        "reason_code": row.reason_code,
        "reason": row.reason,
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
        "message_id": row.message_id,
        "sender": row.sender,
        "case_id": row.case_id,
        "identified_by": row.identified_by,
        "frame_size": row.frame_size,
        "frame_sha256": row.frame_sha256.hex(),
    }
    if row.frame is not None:
        document["frame_truncated"] = row.frame_truncated
        document["frame_base64"] = base64.b64encode(row.frame).decode("ascii")
    return document


@rejected_group.command("list")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--limit", default=1000, show_default=True, help="At most this many rejections.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def rejected_list_command(config_path: str, limit: int, as_json: bool) -> None:
    """List refused deliveries, oldest first (reason, position, what was verified), and how
    many older ones were pruned (the table keeps the newest 10,000, none past 30 days)."""
    with open_inbox(config_path) as inbox:
        rows = inbox.rejected.list(limit=limit)
        pruned = inbox.rejected.pruned()
    if as_json:
        click.echo(json.dumps([_rejection_document(row) for row in rows], indent=2))
        return
    table = Table(title=f"rejected: {len(rows)} deliver{'y' if len(rows) == 1 else 'ies'}")
    for column in ("id", "rejected at", "reason code", "position", "message id", "sender"):
        table.add_column(column)
    table.add_column("identified by")
    for row in rows:
        position = "" if row.topic is None else f"{row.topic}/{row.partition}/{row.offset}"
        table.add_row(
            str(row.id),
            row.rejected_at.strftime("%Y-%m-%d %H:%M:%SZ"),
            row.reason_code,
            position,
            row.message_id or "",
            row.sender or "",
            row.identified_by or "nothing verified",
        )
    if pruned:
        counts = ", ".join(f"{code} {count}" for code, count in pruned.items())
        table.caption = f"older refusals pruned (counted, not kept): {counts}"
    console().print(table)


@rejected_group.command("show")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.argument("rejection_id", type=int)
def rejected_show_command(config_path: str, rejection_id: int) -> None:
    """Print one refused delivery as JSON, with the bytes kept of its frame (base64)."""
    with open_inbox(config_path) as inbox:
        row = inbox.rejected.get(rejection_id)
    click.echo(json.dumps(_rejection_document(row), indent=2))
