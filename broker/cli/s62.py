"""``broker audit s62-export``: this adapter's logs of disclosure and consultation, for a
regulator (UK DPA 2018 s.62).

s.62 asks a controller to log each disclosure (including transfers) and each consultation,
with its date and time, its justification, "so far as possible" the person, and the
recipients. An adapter holds both: the send journal keeps each view it sealed with the
officer its signed header names (docs/OFFICERS.md), and the inbox's read log each person's
show, export and disclosure of a received view. This command writes them as one table, CSV
or JSON lines, oldest first. Both name content by id and markings only, never by value.

The send journal keeps each view's row for 30 days (docs/ADAPTER.md); the read log keeps
every row. Export at least monthly, or read the gateway's audit log, which keeps each
disclosure (without the officer) forever.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Iterable, Iterator

import click

from broker import errors
from broker.adapter import SendJournal, journal_path
from broker.adapter.fates import ViewFate
from broker.cli._reader import inbox_of, officer_option, reading_as
from broker.clock import SystemClock, format_instant
from broker.config import AdapterConfig, load_config
from broker.replay.report import inert_cell
from broker.schema.labels import Labels
from broker.store import InboxStore
from broker.store.officers import Officer, Role
from broker.store.reads import Read

__all__ = ["s62_export_command"]

_DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]
_COLUMNS = (
    "at",
    "kind",
    "action",
    "person",
    "officer",
    "agency",
    "unit",
    "released_by",
    "message_id",
    "counterpart",
    "case_id",
    "message_type",
    "classification",
    "purposes",
    "data_categories",
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Row:
    """One logged disclosure or consultation."""

    at: dt.datetime
    kind: str
    action: str
    person: str
    #: the officer's id, agency and unit (None each when no officer did it)
    who: tuple[str | None, str | None, str | None]
    #: the second officer who released a disclosure (four-eyes release), if any
    released_by: str | None
    message_id: str
    #: the partner the view went to (a disclosure) or came from (a consultation)
    counterpart: str | None
    case_id: str | None
    labels: Labels | None

    def document(self) -> dict[str, object]:
        labels = self.labels
        return {
            "at": format_instant(self.at.replace(microsecond=0)),
            "kind": self.kind,
            "action": self.action,
            "person": self.person,
            **dict(zip(("officer", "agency", "unit"), self.who, strict=True)),
            "released_by": self.released_by,
            "message_id": self.message_id,
            "counterpart": self.counterpart,
            "case_id": self.case_id,
            "message_type": None if labels is None else str(labels.message_type),
            "classification": None if labels is None else str(labels.classification),
            "purposes": [] if labels is None else [str(p) for p in labels.purposes],
            "data_categories": [] if labels is None else [str(c) for c in labels.data_categories],
        }


@click.command("s62-export")
@click.option(
    "--config",
    "config_path",
    required=True,
    envvar="BROKER_CONFIG",
    help="The adapter's YAML configuration (or set BROKER_CONFIG).",
)
@click.option(
    "--since",
    type=click.DateTime(_DATE_FORMATS),
    default=None,
    help="From this time (UTC), inclusive (default: 30 days ago).",
)
@click.option(
    "--until",
    type=click.DateTime(_DATE_FORMATS),
    default=None,
    help="To this time (UTC), exclusive (default: now).",
)
@click.option(
    "--format",
    "form",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="CSV with a header row, or one JSON object per line.",
)
@officer_option()
def s62_export_command(
    config_path: str,
    since: dt.datetime | None,
    until: dt.datetime | None,
    form: str,
    officer_id: str | None,
) -> None:
    """Write this adapter's s.62 records to stdout, oldest first: each view it sealed
    (a disclosure: when, by which officer of which agency and unit, to whom, under which
    purposes and markings) and each read of a received view (a consultation, or a disclosure
    onward). On an adapter with officers, an officer with the admin role exports (the
    records name people)."""
    config = load_config(config_path, AdapterConfig)
    end = SystemClock().now() if until is None else until.replace(tzinfo=dt.UTC)
    start = end - dt.timedelta(days=30) if since is None else since.replace(tzinfo=dt.UTC)
    if start >= end:
        raise errors.UsageError("--since must be before --until")
    with inbox_of(config) as inbox:
        reading_as(inbox, officer_id, role=Role.ADMIN)
        rows = sorted(
            [*_sent(config, start, end), *_reads(inbox, start, end)],
            key=lambda row: (row.at, row.message_id),
        )
    if form == "json":
        for row in rows:
            click.echo(json.dumps(row.document(), ensure_ascii=False))
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for row in rows:
        document = row.document()
        writer.writerow(_cell(document[column]) for column in _COLUMNS)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return inert_cell(";".join(str(v) for v in value))
    return inert_cell(str(value))


def _sent(config: AdapterConfig, start: dt.datetime, end: dt.datetime) -> Iterator[_Row]:
    path = journal_path(config)
    if not path.exists():
        return
    with SendJournal.open(path, create=False) as journal:
        views = journal.sealed_between(start, end)
    for view in views:
        # the adapter's own receipts acknowledge ids only: nobody disclosed anything (a
        # receipt someone queued through the spool is listed like any other view)
        if not (view.source or "").startswith("receipt:"):
            yield _disclosure(view)


def _disclosure(view: ViewFate) -> _Row:
    # the officer as the signed header named them when the view was sealed
    origin = view.origin
    return _Row(
        at=view.journalled_at or view.recorded_at,
        kind="disclosure",
        action="send",
        person="" if origin is None else origin.label,
        who=(None, None, None) if origin is None else (origin.officer, origin.agency, origin.unit),
        released_by=view.approver,
        message_id=view.message_id,
        counterpart=view.recipient,
        case_id=view.case_id,
        labels=view.labels,
    )


def _reads(inbox: InboxStore, start: dt.datetime, end: dt.datetime) -> Iterable[_Row]:
    by_label = {o.label: o for o in inbox.officers.all()}
    for read in inbox.reads.between(start, end):
        yield _consultation(inbox, read, by_label.get(read.reader))


def _consultation(inbox: InboxStore, read: Read, officer: Officer | None) -> _Row:
    try:
        meta = inbox.metadata(read.message_id)
    except errors.UsageError:  # a read of a message whose row is gone: the read still counts
        meta = None
    return _Row(
        at=read.read_at,
        kind="disclosure" if read.action == "disclose" else "consultation",
        action=read.action,
        person=read.reader,
        who=(None, None, None)
        if officer is None
        else (officer.officer_id, officer.agency, officer.unit),
        released_by=None,
        message_id=read.message_id,
        counterpart=None if meta is None else meta.sender,
        case_id=None if meta is None else meta.case_id,
        labels=None if meta is None else meta.labels,
    )
