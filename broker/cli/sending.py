"""``broker send`` and ``broker status``: hand a message to the adapter, then follow each view.

``send`` decides the message for each recipient as the adapter will (the accords and the
registry on file, :func:`broker.pipeline.send.clear`), chooses the message id of every view
it queues and prints them, so ``status`` can be asked about any of them at once. The running
adapter still decides for itself when it seals: it may hold a newer registry or accord.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from broker import errors
from broker.adapter import Spool, journal_path, write_submission
from broker.adapter.fates import ViewFate
from broker.adapter.journal import SendJournal
from broker.adapter.spool import (
    MAX_SUBMISSION_BYTES,
    Submission,
    needs_release,
    parse_submission,
    release_submission,
)
from broker.bounded import read_bounded
from broker.cli._app import console
from broker.cli._reader import inbox_of, officer_option, releasing_as, submitting_as
from broker.clock import SystemClock
from broker.config import AdapterConfig, load_config, read_trust, validate_partner
from broker.ids import MessageId, PartnerCode, message_id_range, new_message_id
from broker.pipeline.send import Cleared, Refused, clear, withdrawal_for, withholds_reason
from broker.pipeline.units import unlisted_unit
from broker.reasons import ReasonCode
from broker.schema import Message, message_bytes, parse_message
from broker.schema.labels import Labels, MessageType
from broker.store.officers import Role

__all__ = [
    "correct_command",
    "print_queued",
    "queue_view",
    "refuse_if_refused",
    "release_command",
    "send_command",
    "sent_group",
    "status_command",
    "withdraw_command",
]

_CONFIG_HELP = "The adapter's YAML configuration (or set BROKER_CONFIG)."
#: the most spool files ``status`` reads looking for a submission the adapter has not taken
_SPOOL_SCAN_LIMIT = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class _View:
    recipient: PartnerCode
    message_id: MessageId | None
    refusal: Refused | None = None
    #: waiting in the spool's held/ for a second officer's release
    held: bool = False

    @property
    def state(self) -> str:
        if self.refusal is not None:
            return "refused"
        return "held" if self.held else "queued"

    def document(self) -> dict[str, object]:
        if self.refusal is None:
            return {"recipient": self.recipient, "message_id": self.message_id, "state": self.state}
        return {
            "recipient": self.recipient,
            "state": "refused",
            "reason_code": str(self.refusal.reason_code),
            "reason": "; ".join(self.refusal.reasons),
        }


def _time(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _precheck(
    config: AdapterConfig, message: Message, recipients: list[PartnerCode], *, officer: str | None
) -> dict[PartnerCode, Refused]:
    """The recipients the accords and registry on file refuse ``officer``'s ``message``,
    with why."""
    return _decide(config, message, recipients, officer=officer)[0]


def _decide(
    config: AdapterConfig,
    message: Message,
    recipients: list[PartnerCode],
    *,
    officer: str | None = None,
) -> tuple[dict[PartnerCode, Refused], set[PartnerCode]]:
    """The recipients the accords and registry on file refuse, with why; and those whose flow
    waits for a second officer's release (``spool.four_eyes_flows``). Every recipient is
    refused when ``officer``'s unit is not one the registry lists for this partner, as the
    adapter would refuse to seal it."""
    now = SystemClock().now()
    trust = read_trust(config, now=now)
    if officer is not None:
        with inbox_of(config) as inbox:
            entry = inbox.officers.holding(officer, Role.SUBMIT)
        entry.origin()  # an officer whose names no header may carry sends nothing
        unlisted = unlisted_unit(trust.registry, config.partner, entry.agency, entry.unit)
        if unlisted is not None:
            why = f"officer {officer}'s {unlisted}"
            return {r: Refused(r, ReasonCode.UNLISTED_UNIT, (why,)) for r in recipients}, set()
    outcomes = clear(
        message,
        sender=config.partner,
        recipients=recipients,
        accords=trust.accords.book(now).counterparts(config.partner),
        registry=trust.registry,
        now=now,
        counters={},  # the rate windows live in the daemon; it alone counts them
    )
    four_eyes = () if config.spool is None else config.spool.four_eyes_flows
    held = {
        o.recipient
        for o in outcomes
        if isinstance(o, Cleared)
        and o.decision is not None
        and needs_release(o.decision.flow, message.type, four_eyes)
    }
    return {o.recipient: o for o in outcomes if isinstance(o, Refused)}, held


@click.command("send")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--to", "to", required=True, help="Recipients, comma-separated: RS,MK.")
@click.option(
    "--no-precheck",
    is_flag=True,
    help="Queue for every recipient without deciding first (the adapter still decides).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@officer_option()
@click.argument("message_file", type=click.Path(dir_okay=False, path_type=Path))
def send_command(
    config_path: str,
    to: str,
    no_precheck: bool,
    as_json: bool,
    officer_id: str | None,
    message_file: Path,
) -> None:
    """Queue MESSAGE_FILE for sending and print the message id of each recipient's view.

    The accords and the registry on file decide first: a recipient they refuse is named with
    the reason and not queued; when they refuse every recipient nothing is queued and the
    command exits 10. `broker status ID` shows what became of a view. On an adapter with
    officers, an officer with the submit role sends, and each view's signed header names
    them with their agency and unit.
    """
    config = load_config(config_path, AdapterConfig)
    if config.spool is None:
        raise errors.UsageError(f"{config_path} has no spool section: the adapter reads no spool")
    officer = submitting_as(config, officer_id)
    recipients = [validate_partner(code.strip()) for code in to.split(",") if code.strip()]
    if not recipients:
        raise errors.UsageError("--to names no recipient")
    message = parse_message(_read(message_file))
    if message.type in (MessageType.RECEIPT, MessageType.WITHDRAWAL):
        raise errors.UsageError(
            f"{message_file} is a {message.type}: the adapter makes receipts itself, and "
            "`broker withdraw ID` takes back a view"
        )
    refused, held = (
        ({}, set()) if no_precheck else _decide(config, message, recipients, officer=officer)
    )
    if held and officer is None:
        raise errors.AccessError(
            f"{', '.join(sorted(held))}: a flow that needs a second officer's release "
            "(spool.four_eyes_flows), on an adapter with no officers: add officers first"
        )
    views = [
        _View(r, None, refused[r]) if r in refused else _View(r, new_message_id(), held=bool(held))
        for r in recipients
    ]
    ids = {v.recipient: v.message_id for v in views if v.message_id is not None}
    spool = Spool(config.spool.dir).root
    path = (
        write_submission(spool, message, list(ids), ids=ids, officer=officer, held=bool(held))
        if ids
        else None
    )
    if as_json:
        document = {"spool_file": None if path is None else str(path)}
        click.echo(json.dumps({**document, "views": [v.document() for v in views]}, indent=2))
    else:
        for view in views:
            if view.refusal is None:
                click.echo(f"{view.recipient}  {view.state:<8} {view.message_id}")
            else:
                why = "; ".join(view.refusal.reasons)
                click.echo(f"{view.recipient}  refused  {view.refusal.reason_code}: {why}")
        if path is not None and held:
            click.echo(
                f"held for a second officer's release ({', '.join(sorted(held))}: "
                f"spool.four_eyes_flows): broker release ID; {path}"
            )
        elif path is not None:
            click.echo(f"queued for {', '.join(ids)}: {path}")
    if path is None:
        reasons = "; ".join(
            f"{v.recipient}: {v.refusal.reason_code}" for v in views if v.refusal is not None
        )
        raise errors.PolicyError(f"every recipient was refused, nothing was queued ({reasons})")


@click.command("release")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@click.option(
    "--show",
    is_flag=True,
    help="Print what would be released (recipients, submitter, the message) and release nothing.",
)
@officer_option()
@click.argument("message_id")
def release_command(
    config_path: str, as_json: bool, show: bool, officer_id: str | None, message_id: str
) -> None:
    """Release the held submission with a view MESSAGE_ID (or a unique prefix of 8 or more
    characters) for sealing: four-eyes release (spool.four_eyes_flows). The releasing officer
    holds the approve role and is not the one who submitted it; --show first prints what
    they are about to release."""
    config = load_config(config_path, AdapterConfig)
    if config.spool is None:
        raise errors.UsageError(f"{config_path} has no spool section: the adapter reads no spool")
    approver = releasing_as(config, officer_id)
    found = _in_spool(config, message_id, ("held",))
    if found is None:
        raise errors.UsageError(f"{message_id}: no held submission has a view of that id")
    path, submission = found
    if submission.officer == approver:
        raise errors.AccessError(
            f"officer {approver} submitted it: another officer must release it"
        )
    if show:
        document = {
            "held": str(path),
            "submitted_by": submission.officer,
            "views": dict(submission.ids),
            "message": json.loads(message_bytes(submission.message)),
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    release_submission(path, approver=approver)
    views = [_View(r, mid) for r, mid in submission.ids.items()]
    by = f" (submitted by {submission.officer})" if submission.officer else ""
    print_queued(views, what=f"released by {approver}{by}", as_json=as_json)


@click.command("withdraw")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--reason", required=True, help="Why, in one line (at most 200 characters).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@officer_option()
@click.argument("message_id")
def withdraw_command(
    config_path: str, reason: str, as_json: bool, officer_id: str | None, message_id: str
) -> None:
    """Take back the view MESSAGE_ID sent from here: its recipient destroys the content
    (delivery file included) and keeps the reason. The withdrawal is a signed message to that
    recipient, under the view's own markings; only the view's sender can withdraw it."""
    config, fate = _sent_view(config_path, message_id)
    officer = submitting_as(config, officer_id)
    withdrawal = withdrawal_for(
        _markings(fate),
        case_id=fate.case_id,
        withdraws=fate.message_id,
        reason=reason,
        conditions=fate.conditions,
    )
    refuse_if_refused(config, withdrawal, fate.recipient, officer=officer)
    view = queue_view(config, withdrawal, fate.recipient, new_message_id(), officer=officer)
    _say_if_withheld(fate)
    print_queued([view], what="withdrawal", as_json=as_json)


@click.command("correct")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--reason", required=True, help="What was wrong, in one line (at most 200).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@officer_option()
@click.argument("message_id")
@click.argument("message_file", type=click.Path(dir_okay=False, path_type=Path))
def correct_command(
    config_path: str,
    reason: str,
    as_json: bool,
    officer_id: str | None,
    message_id: str,
    message_file: Path,
) -> None:
    """Replace the view MESSAGE_ID sent from here with MESSAGE_FILE: the corrected message
    goes to the same recipient as a new view, then a withdrawal of the old one naming it.
    The recipient destroys the old content and shows which view replaced it. Nothing is
    queued if the accords on file refuse either."""
    config, fate = _sent_view(config_path, message_id)
    officer = submitting_as(config, officer_id)
    corrected = parse_message(_read(message_file))
    replacement = new_message_id()
    withdrawal = withdrawal_for(
        _markings(fate),
        case_id=fate.case_id,
        withdraws=fate.message_id,
        reason=reason,
        replaced_by=replacement,
        conditions=fate.conditions,
    )
    for message in (corrected, withdrawal):  # both decided before either is queued
        refuse_if_refused(config, message, fate.recipient, officer=officer)
    view = queue_view(config, corrected, fate.recipient, replacement, officer=officer)
    # a withdrawal naming its replacement waits with it: it must not arrive alone
    views = [
        view,
        queue_view(
            config, withdrawal, fate.recipient, new_message_id(), officer=officer, hold=view.held
        ),
    ]
    _say_if_withheld(fate)
    print_queued(views, what="correction", as_json=as_json)


def _say_if_withheld(fate: ViewFate) -> None:
    """Tell the officer when the recipient is not sent their reason (withdrawal_for)."""
    if withholds_reason(_markings(fate), fate.conditions):
        was = (
            "was restricted to units"
            if fate.conditions is not None
            else "is H3 under conditions not kept here, which may have restricted it to units"
        )
        click.echo(
            f"note: {fate.message_id} {was} at {fate.recipient}: the withdrawal says it was "
            "withdrawn, not why (every unit there reads withdrawals); keep the reason in your "
            "own case file",
            err=True,
        )


def _sent_view(config_path: str, message_id: str) -> tuple[AdapterConfig, ViewFate]:
    """The adapter's configuration and the sealed view ``message_id`` (or a unique prefix)."""
    config = load_config(config_path, AdapterConfig)
    if config.spool is None:
        raise errors.UsageError(f"{config_path} has no spool section: the adapter reads no spool")
    with SendJournal.open(journal_path(config), create=False) as journal:
        found = journal.fates_of(message_id)
    fate = next(f for f in found if f.message_id.startswith(message_id.lower()))
    if fate.journalled_at is None:
        raise errors.UsageError(
            f"{fate.message_id} was refused here and never sent to {fate.recipient}: "
            "there is nothing to take back"
        )
    return config, fate


def _markings(fate: ViewFate) -> Labels:
    if fate.labels is None:
        raise errors.UsageError(
            f"{fate.message_id} was sent before this adapter kept each view's markings, "
            "so a withdrawal cannot repeat them; ask the recipient to erase it "
            "(broker inbox erase)"
        )
    return fate.labels


def refuse_if_refused(
    config: AdapterConfig, message: Message, recipient: PartnerCode, *, officer: str | None
) -> None:
    """Raise :class:`errors.PolicyError` (exit 10) if the accords and registry on file
    refuse ``message``, submitted by ``officer``, to ``recipient``, as ``broker send``
    would."""
    refused = _precheck(config, message, [recipient], officer=officer).get(recipient)
    if refused is not None:
        raise errors.PolicyError(
            f"{recipient}: {refused.reason_code}: {'; '.join(refused.reasons)}; nothing was queued"
        )


def queue_view(
    config: AdapterConfig,
    message: Message,
    recipient: PartnerCode,
    message_id: MessageId,
    *,
    officer: str | None,
    hold: bool | None = None,
) -> _View:
    """Queue ``message`` for ``recipient`` alone, as view ``message_id``, submitted by
    ``officer`` (authenticated by :func:`broker.cli._reader.submitting_as`); into ``held/``
    when its flow needs a second officer's release, or when ``hold`` says so."""
    if config.spool is None:  # checked by _sent_view; kept for the type checker
        raise errors.UsageError("the adapter reads no spool")
    held = recipient in _decide(config, message, [recipient])[1] if hold is None else hold
    spool = Spool(config.spool.dir).root
    ids = {recipient: message_id}
    write_submission(spool, message, [recipient], ids=ids, officer=officer, held=held)
    return _View(recipient, message_id, held=held)


def print_queued(views: list[_View], *, what: str, as_json: bool) -> None:
    """Say which views were queued (``--json``: ``{"views": [...]}``)."""
    if as_json:
        click.echo(json.dumps({"views": [v.document() for v in views]}, indent=2))
        return
    for view in views:
        click.echo(f"{view.recipient}  {view.state:<8} {view.message_id}")
    if any(view.held for view in views):
        click.echo(f"{what} held for a second officer's release: broker release ID")
    else:
        click.echo(f"{what} queued for {views[0].recipient}; `broker status ID` follows each view")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise errors.UsageError(f"cannot read {path}: {exc.strerror}") from exc


@click.command("status")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@click.argument("message_id")
def status_command(config_path: str, message_id: str, as_json: bool) -> None:
    """What became of the view MESSAGE_ID (a full id, or a unique prefix of 8 or more
    characters) and of the other recipients' views of the same message: refused, journalled,
    acknowledged by Kafka, receipted by the recipient."""
    config = load_config(config_path, AdapterConfig)
    path = journal_path(config)
    fates: tuple[ViewFate, ...] = ()
    missing: errors.UsageError | None = None
    try:
        with SendJournal.open(path, create=False) as journal:
            fates = journal.fates_of(message_id)
    except errors.UsageError as exc:
        missing = exc
    if missing is not None:
        waiting = _in_spool(config, message_id)
        if waiting is None:
            raise missing
        _print_waiting(*waiting, as_json=as_json)
        return
    if as_json:
        click.echo(json.dumps({"views": [_fate_document(f) for f in fates]}, indent=2))
        return
    for fate in fates:
        click.echo(f"{fate.recipient}  {fate.message_id}  {_summary(fate)}")
        for line in _history(fate):
            click.echo(f"    {line}")


@click.group("sent")
def sent_group() -> None:
    """What this adapter sent: each view's fate per recipient."""


@sent_group.command("list")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--to", "recipient", default=None, help="Only views to this partner (e.g. RS).")
@click.option("--limit", default=100, show_default=True, help="At most this many views.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def sent_list_command(config_path: str, recipient: str | None, limit: int, as_json: bool) -> None:
    """The views sent last, newest first: refused here, journalled, acknowledged by Kafka,
    or receipted by the recipient (stored, refused, or shredded, with the receipt's time).
    `broker sent show ID` (the same as `broker status ID`) gives one view's history."""
    config = load_config(config_path, AdapterConfig)
    partner = None if recipient is None else validate_partner(recipient)
    with SendJournal.open(journal_path(config), create=False) as journal:
        views = journal.latest_fates(limit=limit, recipient=partner)
    if as_json:
        for fate in views:
            click.echo(json.dumps(_fate_document(fate)))
        return
    table = Table(title=f"sent: {len(views)} view(s), newest first")
    for column in ("recorded at", "message id", "to", "state"):
        table.add_column(column, no_wrap=column == "message id")
    for fate in views:
        table.add_row(
            # reasons quote what partners and attackers wrote: text, never Rich markup
            _time(fate.recorded_at) or "",
            fate.message_id,
            fate.recipient,
            escape(_summary(fate)),
        )
    console().print(table)


sent_group.add_command(status_command, "show")


def _summary(fate: ViewFate) -> str:
    if fate.state == "receipted":
        what = f"receipt {fate.receipt_status} by {fate.recipient}"
        if fate.receipt_reason:
            what += f": {fate.receipt_reason}"
        return what
    if fate.state == "quarantined":
        return f"quarantined by the gateway: {fate.quarantine_code}: {fate.quarantine_reason}"
    if fate.state == "refused":
        return f"refused by this adapter: {fate.refused_code}: {fate.refused_reason}"
    if fate.state == "sent":
        return "acknowledged by Kafka; no receipt yet"
    return "sealed and journalled; not yet acknowledged by Kafka"


def _history(fate: ViewFate) -> list[str]:
    lines = []
    if fate.journalled_at is not None:
        by = "" if fate.origin is None else f", submitted by {fate.origin.label}"
        by += "" if fate.approver is None else f", released by {fate.approver}"
        lines.append(f"{_time(fate.journalled_at)}  sealed and journalled{by}")
    if fate.acknowledged_at is not None:
        where = "" if fate.position is None else " at {}/{}/{}".format(*fate.position)
        lines.append(f"{_time(fate.acknowledged_at)}  acknowledged by Kafka{where}")
    if fate.quarantined_at is not None:
        lines.append(
            f"{_time(fate.quarantined_at)}  quarantined by the gateway: {fate.quarantine_code}"
        )
    if fate.received_at is not None:
        lines.append(f"{_time(fate.received_at)}  received by {fate.recipient} (its receipt says)")
    if fate.receipt_at is not None:
        lines.append(f"{_time(fate.receipt_at)}  receipt {fate.receipt_id} stored here")
    return lines


def _fate_document(fate: ViewFate) -> dict[str, object]:
    return {
        "message_id": fate.message_id,
        "recipient": fate.recipient,
        "state": fate.state,
        "source": fate.source,
        "recorded_at": _time(fate.recorded_at),
        "journalled_at": _time(fate.journalled_at),
        "origin": None if fate.origin is None else fate.origin.model_dump(),
        "released_by": fate.approver,
        "refused": None
        if fate.refused_code is None
        else {"reason_code": fate.refused_code, "reason": fate.refused_reason},
        "acknowledged_at": _time(fate.acknowledged_at),
        "quarantined": None
        if fate.quarantine_code is None
        else {
            "reason_code": fate.quarantine_code,
            "reason": fate.quarantine_reason,
            "decided_at": _time(fate.quarantined_at),
        },
        "position": None
        if fate.position is None
        else dict(zip(("topic", "partition", "offset"), fate.position, strict=True)),
        "receipt": None
        if fate.receipt_status is None
        else {
            "status": fate.receipt_status,
            "reason": fate.receipt_reason,
            "received_at": _time(fate.received_at),
            "stored_at": _time(fate.receipt_at),
            "receipt_id": fate.receipt_id,
        },
    }


def _in_spool(
    config: AdapterConfig, message_id: str, folders: tuple[str, ...] = ("held", "incoming")
) -> tuple[Path, Submission] | None:
    """The spool file, held or waiting for the adapter, that chose ``message_id`` (or a
    unique prefix of it, :data:`~broker.ids.MIN_ID_PREFIX` characters at least) for a view;
    UsageError for a prefix too short or that more than one view starts with."""
    if config.spool is None:
        return None
    try:
        wanted, _ = message_id_range(message_id)
    except ValueError as exc:
        raise errors.UsageError(str(exc)) from None
    found: dict[Path, tuple[Submission, list[MessageId]]] = {}
    for folder in folders:
        try:
            files = sorted(
                p for p in (config.spool.dir / folder).iterdir() if not p.name.startswith(".")
            )
        except OSError:
            continue
        for path in files[:_SPOOL_SCAN_LIMIT]:
            try:
                data = read_bounded(path, limit=MAX_SUBMISSION_BYTES, what="the submission")
            except errors.BrokerError:
                continue
            if wanted.encode("ascii") not in data:
                continue
            try:
                submission = parse_submission(data)
            except errors.SchemaError:
                continue
            ids = [mid for mid in submission.ids.values() if mid.startswith(wanted)]
            if ids:
                found[path] = (submission, ids)
    if len(found) > 1:
        named = sorted(mid for _, ids in found.values() for mid in ids)
        raise errors.UsageError(
            f"{message_id}: views of more than one submission start so: {', '.join(named)}"
        )
    return next(((path, found[path][0]) for path in found), None)


def _print_waiting(path: Path, submission: Submission, *, as_json: bool) -> None:
    held = path.parent.name == "held"
    state = "held" if held else "waiting"
    if as_json:
        views = [
            {"message_id": mid, "recipient": r, "state": state, "spool_file": str(path)}
            for r, mid in submission.ids.items()
        ]
        click.echo(json.dumps({"views": views}, indent=2))
        return
    for recipient, mid in submission.ids.items():
        if held:
            by = f" (submitted by {submission.officer})" if submission.officer else ""
            click.echo(f"{recipient}  {mid}  held for a second officer's release{by}")
        else:
            click.echo(
                f"{recipient}  {mid}  waiting in the spool: the adapter has not taken it yet"
            )
        click.echo(f"    {path}")
