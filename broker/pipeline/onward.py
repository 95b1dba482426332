"""Onward sharing with the originator's consent (DPA 2018 s.78), checked without trusting the
holder: the originator's grant and the forwarded content are both selective disclosures
(docs/PROTOCOL.md section 9) that anyone holding the registry can verify.

Three partners take part. The **originator** O sent a view to the **holder** H. H asks O
(``onward.request``); O answers with a signed ``onward.grant`` naming the third party T, the
fields it may have and until when. H then sends T an ``onward.forward`` carrying

- the grant, disclosed with its scope (:data:`GRANT_SCOPE`): O's signature covers it;
- the original view, disclosed with its markings and exactly the granted fields: O's
  signature covers them too, so H can neither add a field nor change a value.

The gateway sees the grant (revealed in a Kafka header, :mod:`broker.pipeline.revealed`) and checks
it before it routes the forward (:func:`check_grant`); T checks both disclosures and that they
agree (:func:`check_forward`). Nothing here decrypts anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pydantic

from broker import errors, strictjson
from broker.clock import parse_instant
from broker.envelope import (
    Disclosure,
    EnvelopeHeader,
    KeyRegistry,
    disclose_kept,
    parse,
    parse_header,
    verify_disclosure,
)
from broker.ids import KeyId, MessageId, PartnerCode
from broker.keys import Registry
from broker.pipeline.delivery import verify_attested
from broker.pipeline.disclosure import Evidence
from broker.pipeline.records import GatewayKeys
from broker.pipeline.units import unlisted_origin
from broker.schema import Message
from broker.schema.handling import HandlingCondition, NoDisseminationTo, RestrictToUnits
from broker.schema.labels import PROTOCOL_TYPES, Labels, MessageType
from broker.schema.protocol import Disclosed, GrantDecision, OnwardForward

__all__ = [
    "GRANT_SCOPE",
    "MAX_GRANT_LIFETIME",
    "ORIGINAL_MARKINGS",
    "Grant",
    "Kept",
    "check_forward",
    "check_grant",
    "committed_paths",
    "disclosure_of",
    "forbidding",
    "forward_body",
    "forward_conditions",
    "require_committed",
]

#: what a forward reveals of its grant: everything that bounds the consent
GRANT_SCOPE: Final = (
    "body.conditions",
    "body.decision",
    "body.fields_granted",
    "body.original_message",
    "body.request",
    "body.third_party_country",
    "body.valid_until",
)
#: what a forward always reveals of the original besides the granted fields: how it is marked
ORIGINAL_MARKINGS: Final = (
    "classification",
    "expires",
    "handling",
    "handling_conditions",
    "purposes",
    "schema_version",
    "tlp",
    "type",
)
_GRANTED = (GrantDecision.GRANTED, GrantDecision.GRANTED_WITH_CONDITIONS)
#: the longest a grant may hold from its signing (``broker onward grant --valid-days``)
MAX_GRANT_LIFETIME: Final = dt.timedelta(days=365)


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    """A verified grant: who consented to what, for whom, until when."""

    grant_id: MessageId
    originator: PartnerCode
    holder: PartnerCode
    third_party: PartnerCode
    original_message: MessageId
    fields_granted: tuple[str, ...]
    valid_until: dt.datetime
    #: the originator's conditions on the third party (H3), which the forward must carry
    conditions: tuple[HandlingCondition, ...] = ()

    def describe(self) -> str:
        """One line for an audit record or a log."""
        return (
            f"onward grant {self.grant_id} by {self.originator} for {self.original_message} "
            f"to {self.third_party}, valid until {self.valid_until.isoformat()}"
        )


def disclosure_of(disclosed: Disclosed) -> Disclosure:
    """The envelope-level :class:`Disclosure` a message body carries, read as any
    disclosure is (:meth:`Disclosure.from_json`)."""
    document = disclosed.model_dump(mode="json")
    if document["batch"] is None:  # signed alone: the disclosure has no such member
        del document["batch"]
    return Disclosure.from_json(strictjson.encode(document))


def check_grant(
    disclosure: Disclosure,
    *,
    registry: KeyRegistry,
    holder: PartnerCode,
    third_party: PartnerCode,
    now: dt.datetime,
) -> Grant:
    """Verify a grant's disclosure and that it lets ``holder`` pass to ``third_party`` now.

    Raises :class:`errors.PolicyError` naming what is wrong, or an integrity error when the
    disclosure does not verify against the registry.
    """
    values = verify_disclosure(disclosure, registry=registry, now=now)
    header = parse_header(disclosure.header_bytes)
    # Consent is relied on now: a key revoked since (stolen, say) grants nothing more, even
    # with a grant dated before its revocation.
    registry.signing_key(PartnerCode(header.sender), KeyId(header.sender_key_id), at=now)
    if header.labels.message_type is not MessageType.ONWARD_GRANT:
        raise errors.PolicyError(f"the grant is a {header.labels.message_type}, not a grant")
    missing = [path for path in GRANT_SCOPE if path not in values]
    if missing:
        raise errors.PolicyError(f"the grant does not reveal {', '.join(missing)}")
    if header.recipient != holder:
        raise errors.PolicyError(
            f"the grant was given to {header.recipient}, not to {holder}, who forwards"
        )
    if header.sender == holder:
        raise errors.PolicyError(f"{holder} cannot grant itself consent")
    if values["body.decision"] not in _GRANTED:
        raise errors.PolicyError(f"the originator's decision is {values['body.decision']!r}")
    if values["body.third_party_country"] != third_party:
        raise errors.PolicyError(
            f"the grant is for {values['body.third_party_country']}, not {third_party}"
        )
    until = values["body.valid_until"]
    if not isinstance(until, str):
        raise errors.PolicyError("the grant has no end: a grant must say until when it holds")
    try:
        valid_until = parse_instant(until)
    except ValueError as exc:
        raise errors.PolicyError(f"the grant's valid_until: {exc}") from None
    if valid_until <= now:
        raise errors.PolicyError(f"the grant ended at {until}")
    if valid_until - parse_instant(header.created) > MAX_GRANT_LIFETIME:
        raise errors.PolicyError(
            f"the grant holds longer than {MAX_GRANT_LIFETIME.days} days from its signing"
        )
    granted = values["body.fields_granted"]
    if not isinstance(granted, list) or not all(isinstance(p, str) for p in granted):
        raise errors.PolicyError("the grant's fields_granted is not a list of paths")
    conditions = _conditions(values["body.conditions"], what="the grant's conditions")
    why = forbidding(conditions, third_party)
    if why is not None:
        raise errors.PolicyError(
            f"the grant's own conditions forbid dissemination to {third_party} ({why})"
        )
    return Grant(
        grant_id=MessageId(header.message_id),
        originator=PartnerCode(header.sender),
        holder=holder,
        third_party=third_party,
        original_message=MessageId(str(values["body.original_message"])),
        fields_granted=tuple(granted),
        valid_until=valid_until,
        conditions=conditions,
    )


def check_forward(
    forward: Message,
    *,
    labels: Labels,
    registry: Registry,
    holder: PartnerCode,
    me: PartnerCode,
    now: dt.datetime,
) -> Grant:
    """What the third party checks before it stores a forward from ``holder``: the grant (as
    :func:`check_grant`), the original's disclosure (signed by the grant's originator, to the
    holder, the very message granted), that it reveals only the markings and granted fields,
    that no condition of the originator forbids dissemination to the third party and the
    forward carries every condition of the original and the grant, that the original's
    ``origin`` names a unit its originator lists in the registry (a view that never passed a
    gateway could name any), and that the forward's signed ``labels`` mark it no more loosely
    than the original.

    Raises :class:`errors.PolicyError` naming the first problem, or an integrity error.
    """
    body = forward.body
    if not isinstance(body, OnwardForward):
        raise errors.PolicyError(f"a {forward.type} is not an onward forward")
    grant = check_grant(
        disclosure_of(body.grant), registry=registry, holder=holder, third_party=me, now=now
    )
    original = disclosure_of(body.original)
    values = verify_disclosure(original, registry=registry, now=now)
    header = parse_header(original.header_bytes)
    _check_original(header, grant)
    unlisted = unlisted_origin(registry, grant.originator, header.origin)
    if unlisted is not None:
        raise errors.PolicyError(f"the original: {unlisted}")
    extra = sorted(set(values) - set(ORIGINAL_MARKINGS) - set(grant.fields_granted))
    if extra:
        raise errors.PolicyError(f"the forward reveals {', '.join(extra)}, which was not granted")
    if "handling_conditions" not in values:
        raise errors.PolicyError("the forward does not reveal the original's handling conditions")
    required = forward_conditions(
        _conditions(values["handling_conditions"], what="the original's conditions"), grant
    )
    why = forbidding(required, me)
    if why is not None:
        raise errors.PolicyError(f"the originator forbids dissemination to {me} ({why})")
    carried = {_condition_key(c) for c in forward.handling_conditions}
    if any(_condition_key(c) not in carried for c in required):
        raise errors.PolicyError("the forward drops a handling condition the originator set")
    _check_lifetime_and_purposes(forward, values)
    _check_markings(labels, header.labels)
    return grant


def forward_conditions(
    original: Sequence[HandlingCondition], grant: Grant | Sequence[HandlingCondition]
) -> tuple[HandlingCondition, ...]:
    """The conditions a forward carries: the original's, then the grant's, each once."""
    given = grant.conditions if isinstance(grant, Grant) else tuple(grant)
    seen: dict[str, HandlingCondition] = {}
    for condition in (*original, *given):
        seen.setdefault(_condition_key(condition), condition)
    return tuple(seen.values())


def forbidding(conditions: Iterable[HandlingCondition], partner: str) -> str | None:
    """Why ``conditions`` forbid passing the information on to ``partner``, or None: a
    ``no-dissemination-to`` naming it, or a ``restrict-to-units`` (only the named units of the
    recipient may see it, so no other partner's can). Absolute, whatever any grant says."""
    for condition in conditions:
        if isinstance(condition, NoDisseminationTo) and partner in condition.partners:
            return f"no-dissemination-to {', '.join(condition.partners)}"
        if isinstance(condition, RestrictToUnits):
            return f"restrict-to-units {', '.join(condition.units)}: no other partner's units"
    return None


def _conditions(value: Any, *, what: str) -> tuple[HandlingCondition, ...]:
    try:
        return _CONDITIONS.validate_json(json.dumps(value))
    except (pydantic.ValidationError, TypeError, ValueError):
        raise errors.PolicyError(f"{what} are not handling conditions") from None


def _condition_key(condition: HandlingCondition) -> str:
    return condition.model_dump_json()


_CONDITIONS: Final = pydantic.TypeAdapter(tuple[HandlingCondition, ...])


def _check_original(header: EnvelopeHeader, grant: Grant) -> None:
    if header.labels.message_type in PROTOCOL_TYPES:
        # a forward of a forward would pass on a third partner's data on this grant alone
        raise errors.PolicyError(
            f"the original is a {header.labels.message_type}: only intelligence is passed on"
        )
    if header.message_id != grant.original_message:
        raise errors.PolicyError(
            f"the forward carries {header.message_id}; the grant is for {grant.original_message}"
        )
    if header.sender != grant.originator:
        raise errors.PolicyError(
            f"the original was sent by {header.sender}; the grant is {grant.originator}'s"
        )
    if header.recipient != grant.holder:
        raise errors.PolicyError(
            f"the original was sent to {header.recipient}, not to {grant.holder}, who forwards"
        )


def _check_lifetime_and_purposes(forward: Message, values: Mapping[str, Any]) -> None:
    """The forward ends no later than the original and serves none but its purposes."""
    if "expires" in values:
        try:
            ends = parse_instant(str(values["expires"]))
        except ValueError:
            raise errors.PolicyError("the original's expires is not a time") from None
        if forward.expires is None or forward.expires > ends:
            raise errors.PolicyError(f"the forward outlives the original, which expires {ends}")
    purposes = values.get("purposes")
    if not isinstance(purposes, list) or not {str(p) for p in forward.purposes} <= set(purposes):
        raise errors.PolicyError("the forward states purposes the original does not")


def _check_markings(labels: Labels, original: Labels) -> None:
    milder = [
        name
        for name, ours, theirs in _ranks(labels, original)
        if ours < theirs  # a forward is handled at least as strictly as what it carries
    ]
    if milder:
        raise errors.PolicyError(f"the forward's {', '.join(milder)} is milder than the original's")
    # Its data categories are those of the fields it reveals, read from the original's model
    # (OnwardForward.carried_categories); the receiver checks them as it does any message's.


def _ranks(labels: Labels, original: Labels) -> Sequence[tuple[str, int, int]]:
    return (
        ("classification", labels.classification.rank, original.classification.rank),
        ("TLP", labels.tlp.rank, original.tlp.rank),
        ("handling code", _handling_rank(labels), _handling_rank(original)),
    )


def _handling_rank(labels: Labels) -> int:
    return int(str(labels.handling)[1:])


def forward_body(
    original: Kept,
    grant: Kept,
    *,
    fields_granted: Sequence[str],
    registry: GatewayKeys,
) -> dict[str, Any]:
    """The body of an ``onward.forward``: the original view's markings and ``fields_granted``
    disclosed from what the holder kept of it, and the grant disclosed with its scope.

    Raises :class:`errors.UsageError` for a granted path the view does not commit on its own
    (a path inside a field cannot be revealed without the whole field), and integrity errors
    when the kept evidence does not verify.
    """
    return {
        "original": _disclose(
            original, [*ORIGINAL_MARKINGS, *fields_granted], registry
        ).to_document(),
        "grant": _disclose(grant, GRANT_SCOPE, registry).to_document(),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Kept:
    """What a recipient kept of one view: its evidence and its content (canonical JSON)."""

    evidence: Evidence
    message_json: bytes = dataclasses.field(repr=False)


def committed_paths(evidence: Evidence, *, registry: GatewayKeys) -> frozenset[str]:
    """The paths a kept view commits to (what a disclosure of it can reveal)."""
    envelope_bytes = verify_attested(evidence.frame, registry=registry).envelope_bytes
    return frozenset(parse(envelope_bytes).header.commitment.fields)


def require_committed(paths: Iterable[str], committed: frozenset[str]) -> None:
    """A usage error naming each of ``paths`` the view does not commit on its own (a path
    inside a field cannot be revealed without the whole field), and what it does commit."""
    unknown = sorted(set(paths) - committed)
    if unknown:
        body = ", ".join(sorted(p for p in committed if p.startswith("body.")))
        raise errors.UsageError(
            f"{', '.join(unknown)}: not a field the view holds that can be passed on alone; "
            f"it holds {body}"
        )


def _disclose(kept: Kept, paths: Sequence[str], registry: GatewayKeys) -> Disclosure:
    """Reveal ``paths`` of a kept view: a marking it lacks is skipped, any other path it does
    not commit is a usage error."""
    envelope_bytes = verify_attested(kept.evidence.frame, registry=registry).envelope_bytes
    committed = frozenset(parse(envelope_bytes).header.commitment.fields)
    wanted = [p for p in paths if p in committed or p not in ORIGINAL_MARKINGS]
    require_committed(wanted, committed)
    return disclose_kept(
        envelope_bytes, message_json=kept.message_json, salts=kept.evidence.salts, fields=wanted
    )
