"""``broker onward request|grant|refuse|forward``: onward sharing with the originator's consent.

The holder asks (``request``), the originator answers (``grant`` or ``refuse``), the holder
forwards (``forward``) exactly what was granted, as disclosures the third party verifies
(:mod:`broker.pipeline.onward`). Each step is a signed message through the gateway, queued
through the adapter's spool after the same check as ``broker send``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import click

from broker import errors
from broker.adapter import journal_path
from broker.adapter.journal import SendJournal
from broker.cli._reader import officer_option, reading_as
from broker.cli.adapter import open_inbox
from broker.cli.sending import print_queued, queue_view, refuse_if_refused
from broker.clock import SystemClock, format_instant
from broker.config import AdapterConfig, load_config, read_trust, validate_partner
from broker.ids import MessageId, PartnerCode, new_message_id
from broker.pipeline.disclosure import Evidence
from broker.pipeline.onward import (
    Kept,
    committed_paths,
    forbidding,
    forward_body,
    forward_conditions,
    require_committed,
)
from broker.schema import Message, parse_message
from broker.schema.handling import HandlingCondition
from broker.schema.labels import PROTOCOL_TYPES, HandlingCode, MessageType
from broker.schema.protocol import GrantDecision, OnwardGrant, OnwardRequest
from broker.store.officers import Role

__all__ = ["onward_group"]

_CONFIG_HELP = "The adapter's YAML configuration (or set BROKER_CONFIG)."
#: the markings a protocol message about a view repeats from it
_MARKINGS = (
    "classification",
    "tlp",
    "handling",
    "handling_conditions",
    "purposes",
    "case_id",
    "expires",
)


@click.group("onward")
def onward_group() -> None:
    """Onward sharing with the originator's consent: request, grant or refuse, forward."""


@onward_group.command("request")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--to", "third_party", required=True, help="The third party, a partner code (MK).")
@click.option("--authority", required=True, help="The authority there that needs it, in words.")
@click.option("--fields", required=True, help="Body fields asked for: body.summary,body.hubs.")
@click.option(
    "--purpose", "purposes", multiple=True, help="Purpose (repeatable; default: the view's)."
)
@click.option("--justification", required=True, help="Why the third party needs it.")
@click.option("--urgent", is_flag=True, help="Mark the request urgent.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@officer_option()
@click.argument("message_id")
def request_command(
    config_path: str,
    third_party: str,
    authority: str,
    fields: str,
    purposes: tuple[str, ...],
    justification: str,
    urgent: bool,
    as_json: bool,
    officer_id: str | None,
    message_id: str,
) -> None:
    """Ask the originator of the received view MESSAGE_ID for consent to pass FIELDS of it to
    a third party. The request goes to the view's sender under the view's markings; on an
    adapter with officers, an officer with the submit role asks."""
    config = _adapter(config_path)
    target = validate_partner(third_party)
    with open_inbox(config_path) as inbox:
        asking = reading_as(inbox, officer_id, role=Role.SUBMIT)
        view_id = inbox.resolve(message_id)
        originator = inbox.metadata(view_id).sender
        original = parse_message(inbox.get(view_id))
        evidence = Evidence.from_bytes(inbox.evidence(view_id))
    # asking about a view is using it: only an officer who may read it asks
    asking.may_see(original.handling_conditions, message_id=view_id)
    officer = None if asking.officer is None else asking.officer.officer_id
    registry = read_trust(config, now=SystemClock().now()).registry
    committed = committed_paths(evidence, registry=registry)
    _not_protocol(original, view_id)
    paths = _paths(fields)
    require_committed(paths, committed)
    if target in (originator, config.partner):
        raise errors.UsageError(f"{target} is not a third party to this view")
    why = forbidding(original.handling_conditions, target)
    if why is not None:
        raise errors.PolicyError(
            f"the originator forbids dissemination of {view_id} to {target} ({why}): no "
            "request can change that"
        )
    request = _message(
        MessageType.ONWARD_REQUEST,
        original,
        {
            "original_message": view_id,
            "third_party_country": target,
            "third_party_authority": authority,
            "purposes": list(purposes) or sorted(str(p) for p in original.purposes),
            "fields_requested": paths,
            "justification": justification,
            "urgent": urgent,
        },
    )
    refuse_if_refused(config, request, originator, officer=officer)
    view = queue_view(config, request, originator, new_message_id(), officer=officer)
    print_queued([view], what=f"onward request to {originator}", as_json=as_json)


@onward_group.command("grant")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--fields", default=None, help="Fields granted (default: every field asked for).")
@click.option(
    "--valid-days",
    type=click.IntRange(1, 365),
    default=30,
    show_default=True,
    help="How long the consent holds: the holder must forward before it ends.",
)
@click.option(
    "--no-dissemination-to",
    "no_dissemination_to",
    default=None,
    help="Partners the third party must never pass it to, comma-separated: TR,AL.",
)
@click.option(
    "--destroy-by",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The day by which the third party destroys every copy (YYYY-MM-DD, midnight UTC).",
)
@click.option("--reason", default=None, help="A note to the holder, in one line.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@officer_option()
@click.argument("request_id")
def grant_command(
    config_path: str,
    fields: str | None,
    valid_days: int,
    no_dissemination_to: str | None,
    destroy_by: dt.datetime | None,
    reason: str | None,
    as_json: bool,
    officer_id: str | None,
    request_id: str,
) -> None:
    """Consent to the onward request REQUEST_ID in this adapter's inbox: a signed grant to the
    holder naming the third party, the fields and until when. Only a view sent from here can
    be granted; on an adapter with officers, by an officer with the submit role."""
    config, request, holder, full_id, officer = _request(config_path, request_id, officer_id)
    if not isinstance(request.body, OnwardRequest):  # _request checked; for the type checker
        raise errors.UsageError(f"{full_id} is not an onward request")
    asked = list(request.body.fields_requested)
    granted = asked if fields is None else _paths(fields)
    beyond = sorted(set(granted) - set(asked))
    if beyond:
        raise errors.UsageError(f"{', '.join(beyond)} was not asked for")
    if not granted:
        raise errors.UsageError("a grant names at least one field")
    until = SystemClock().now() + dt.timedelta(days=valid_days)
    conditions = _grant_conditions(no_dissemination_to, destroy_by)
    decision = GrantDecision.GRANTED_WITH_CONDITIONS if conditions else GrantDecision.GRANTED
    answer = _Answer(decision, granted, until, reason, conditions)
    _answer(config, request, holder, full_id, answer, as_json, officer)


@onward_group.command("refuse")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--reason", required=True, help="Why, in one line.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@officer_option()
@click.argument("request_id")
def refuse_command(
    config_path: str, reason: str, as_json: bool, officer_id: str | None, request_id: str
) -> None:
    """Refuse the onward request REQUEST_ID: a signed refusal goes back to the holder."""
    config, request, holder, full_id, officer = _request(config_path, request_id, officer_id)
    answer = _Answer(GrantDecision.REFUSED, [], None, reason, [])
    _answer(config, request, holder, full_id, answer, as_json, officer)


@onward_group.command("forward")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@officer_option()
@click.argument("grant_id")
def forward_command(config_path: str, as_json: bool, officer_id: str | None, grant_id: str) -> None:
    """Pass to the third party what the grant GRANT_ID (in this adapter's inbox) allows: the
    view's markings and the granted fields, as the originator signed them, with the grant.
    The gateway and the third party check both; nothing else of the view leaves. The
    disclosure is logged in the read log, under the officer's name once there are officers
    (who needs the read and submit roles)."""
    config = _adapter(config_path)
    now = SystemClock().now()
    with open_inbox(config_path) as inbox:
        reading = reading_as(inbox, officer_id)
        # passing content on is a read and a submission: the officer needs both roles
        if reading.officer is not None and Role.SUBMIT not in reading.officer.roles:
            raise errors.AccessError(
                f"officer {reading.officer.officer_id} does not hold the submit role"
            )
        grant_view = inbox.resolve(grant_id)
        originator = inbox.metadata(grant_view).sender
        grant_message = parse_message(inbox.get(grant_view))
        grant = grant_message.body
        if not isinstance(grant, OnwardGrant):
            raise errors.UsageError(f"{grant_view} is a {grant_message.type}, not a grant")
        if grant.decision is GrantDecision.REFUSED:
            raise errors.PolicyError(f"{originator} refused: {grant.reason or 'no reason given'}")
        if grant.valid_until is None or grant.valid_until <= now:
            raise errors.PolicyError(f"the grant ended at {grant.valid_until}")
        view_id = MessageId(grant.original_message)
        if inbox.metadata(view_id).sender != originator:
            raise errors.UsageError(f"{view_id} was not sent by {originator}, who granted")
        original_json = inbox.get(view_id)
        original = parse_message(original_json)
        # passing a view on is reading it: only an officer who may read it forwards it
        reading.may_see(original.handling_conditions, message_id=view_id)
        body = forward_body(
            Kept(Evidence.from_bytes(inbox.evidence(view_id)), original_json),
            Kept(Evidence.from_bytes(inbox.evidence(grant_view)), inbox.get(grant_view)),
            fields_granted=grant.fields_granted,
            registry=read_trust(config, now=now).registry,
        )
    third_party = PartnerCode(grant.third_party_country)
    conditions = forward_conditions(original.handling_conditions, grant.conditions)
    why = forbidding(conditions, third_party)
    if why is not None:
        raise errors.PolicyError(f"the originator forbids dissemination to {third_party} ({why})")
    forward = _message(MessageType.ONWARD_FORWARD, original, body, conditions=conditions)
    submitter = None if reading.officer is None else reading.officer.officer_id
    refuse_if_refused(config, forward, third_party, officer=submitter)
    with open_inbox(config_path) as inbox:
        # logged before it leaves (s.62): a disclosure that cannot be logged is not made
        inbox.reads.note([view_id], reader=reading.name, action="disclose", now=now)
    view = queue_view(config, forward, third_party, new_message_id(), officer=submitter)
    print_queued([view], what=f"onward forward of {view_id} to {third_party}", as_json=as_json)


# --- helpers ---------------------------------------------------------------------------------


def _adapter(config_path: str) -> AdapterConfig:
    config = load_config(config_path, AdapterConfig)
    if config.spool is None:
        raise errors.UsageError(f"{config_path} has no spool section: the adapter reads no spool")
    return config


def _request(
    config_path: str, request_id: str, officer_id: str | None
) -> tuple[AdapterConfig, Message, PartnerCode, MessageId, str | None]:
    """The adapter, the onward request REQUEST_ID from its inbox, its holder, and the officer
    answering (authenticated first), once this adapter's journal shows it sent the view asked
    about to that holder."""
    config = _adapter(config_path)
    with open_inbox(config_path) as inbox:
        answering = reading_as(inbox, officer_id, role=Role.SUBMIT)
        view = inbox.resolve(request_id)
        holder = inbox.metadata(view).sender
        request = parse_message(inbox.get(view))
    answering.may_see(request.handling_conditions, message_id=view)
    officer = None if answering.officer is None else answering.officer.officer_id
    if not isinstance(request.body, OnwardRequest):
        raise errors.UsageError(f"{view} is a {request.type}, not an onward request")
    original = request.body.original_message
    with SendJournal.open(journal_path(config), create=False) as journal:
        try:
            sent = journal.fates_of(original)
        except errors.UsageError:
            sent = ()
    fate = next((f for f in sent if f.message_id == original and f.recipient == holder), None)
    if fate is None or fate.journalled_at is None:
        raise errors.UsageError(
            f"{original} is not a view this adapter sent to {holder}: only its originator "
            "can consent to passing it on"
        )
    if fate.labels is None or fate.labels.message_type in PROTOCOL_TYPES:
        kind = "a view whose type was not kept" if fate.labels is None else fate.labels.message_type
        raise errors.UsageError(f"{original} is {kind}: only intelligence is passed on")
    return config, request, holder, view, officer


@dataclasses.dataclass(frozen=True, slots=True)
class _Answer:
    """The originator's answer to one request."""

    decision: GrantDecision
    granted: Sequence[str]
    until: dt.datetime | None
    reason: str | None
    conditions: Sequence[dict[str, Any]]


def _grant_conditions(
    no_dissemination_to: str | None, destroy_by: dt.datetime | None
) -> list[dict[str, Any]]:
    conditions: list[dict[str, Any]] = []
    if no_dissemination_to:
        partners = sorted({validate_partner(p.strip()) for p in no_dissemination_to.split(",")})
        conditions.append({"kind": "no-dissemination-to", "partners": partners})
    if destroy_by is not None:
        deadline = format_instant(destroy_by.replace(tzinfo=dt.UTC))
        conditions.append({"kind": "destroy-by", "deadline": deadline})
    return conditions


def _answer(
    config: AdapterConfig,
    request: Message,
    holder: PartnerCode,
    request_id: MessageId,
    answer: _Answer,
    as_json: bool,
    officer: str | None,
) -> None:
    body = request.body
    if not isinstance(body, OnwardRequest):  # _request checked; kept for the type checker
        raise errors.UsageError("not an onward request")
    document: dict[str, Any] = {
        "request": request_id,
        "original_message": body.original_message,
        "decision": str(answer.decision),
        "third_party_country": body.third_party_country,
        "fields_granted": list(answer.granted),
        "conditions": list(answer.conditions),
        "valid_until": None if answer.until is None else format_instant(answer.until),
        "reason": answer.reason,
    }
    message = _message(MessageType.ONWARD_GRANT, request, document)
    refuse_if_refused(config, message, holder, officer=officer)
    view = queue_view(config, message, holder, new_message_id(), officer=officer)
    print_queued([view], what=f"onward {answer.decision} to {holder}", as_json=as_json)


def _message(
    kind: MessageType,
    markings_of: Message,
    body: dict[str, Any],
    *,
    conditions: Sequence[HandlingCondition] | None = None,
) -> Message:
    """A protocol message about a view, under that view's markings and case id; with
    ``conditions``, those H3 conditions instead of the view's (and handling H3)."""
    kept = markings_of.model_dump(mode="json", include=set(_MARKINGS), exclude_none=True)
    if conditions:
        kept["handling"] = str(HandlingCode.H3)
        kept["handling_conditions"] = [c.model_dump(mode="json") for c in conditions]
    document = {
        **kept,
        "type": str(kind),
        "schema_version": 1,
        "body": {k: v for k, v in body.items() if v is not None},
    }
    return parse_message(json.dumps(document, separators=(",", ":")).encode())


def _not_protocol(message: Message, view_id: str) -> None:
    if message.type in PROTOCOL_TYPES:
        raise errors.UsageError(f"{view_id} is a {message.type}: only intelligence is passed on")


def _paths(text: str) -> list[str]:
    paths = sorted({p.strip() for p in text.split(",") if p.strip()})
    if not paths:
        raise errors.UsageError("--fields names no field")
    return paths
