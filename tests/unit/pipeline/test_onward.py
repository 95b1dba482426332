"""Onward sharing: RS's report to GB, RS's grant to GB, GB's forward to MK, with real keys,
real adapters on temporary stores and the gateway's real decision."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from broker import errors, strictjson
from broker.adapter import Adapter
from broker.clock import FixedClock
from broker.ids import PartnerCode
from broker.keys import PartnerUnit
from broker.pipeline.disclosure import Evidence
from broker.pipeline.gateway import Deliver, Quarantine
from broker.pipeline.onward import (
    Kept,
    check_forward,
    check_grant,
    disclosure_of,
    forbidding,
    forward_body,
    forward_conditions,
)
from broker.pipeline.revealed import GRANT_HEADER
from broker.pipeline.send import Outgoing
from broker.reasons import ReasonCode
from broker.schema import Message, labels_of, parse_message
from broker.schema.handling import ConditionKind, RestrictToUnits
from broker.schema.labels import DataCategory
from broker.schema.protocol import OnwardForward, OnwardGrant
from broker.store.officers import Role

from ..adapter.world import (
    GB,
    MK,
    NOW,
    RS,
    WORLD,
    deliver,
    make_adapter,
    report,
    route_at_gateway,
)

REGISTRY = WORLD.registry
CONDITIONS = (
    {"kind": "destroy-by", "deadline": "2026-12-07T12:00:00Z"},
    {"kind": "no-dissemination-to", "partners": ["TR"]},
)
LATER = NOW + dt.timedelta(days=20)


@dataclasses.dataclass
class Shared:
    original_id: str
    uk: Adapter
    mk: Adapter
    kept_original: Kept
    kept_grant: Kept
    markings: dict[str, Any]
    #: a second grant, with CONDITIONS
    kept_conditional: Kept
    #: a third, valid for two years
    kept_long: Kept


def _markings(message: Message) -> dict[str, Any]:
    return message.model_dump(
        mode="json", include={"classification", "tlp", "handling", "purposes"}, exclude_none=True
    )


def _grant(
    original_id: str,
    *,
    conditions: tuple[dict[str, Any], ...] = (),
    until: str = "2026-12-08T12:00:00Z",
) -> Message:
    document = {
        **_markings(report()),
        "type": "onward.grant",
        "schema_version": 1,
        "body": {
            "request": "01900000-0000-7000-8000-0000000000bb",
            "original_message": original_id,
            "decision": "granted-with-conditions" if conditions else "granted",
            "third_party_country": "MK",
            "conditions": list(conditions),
            "fields_granted": ["body.summary"],
            "valid_until": until,
        },
    }
    return parse_message(json.dumps(document).encode())


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    root = tmp_path_factory.mktemp("onward")
    clock = FixedClock(NOW)
    rs, uk, mk = (make_adapter(p, root / p, clock=clock) for p in (RS, GB, MK))
    # RS's views name their officer in Cyrillic (header version 2): a disclosure carries the
    # header's exact UTF-8 text through the forward, the gateway and the third party
    rs.inbox.officers.add(
        "m.petrovic",
        agency="Министарство унутрашњих послова",
        unit="Управа криминалистичке полиције",
        roles=[Role.ADMIN, Role.SUBMIT],
        now=NOW,
        by="test",
    )
    (view,) = rs.submit(report(), to=[GB], officer="m.petrovic")
    assert isinstance(view, Outgoing)
    assert uk.receive(deliver(view.envelope, recipient=GB)) == "stored"
    grants = []
    for conditions, until in (
        ((), "2026-12-08T12:00:00Z"),
        (CONDITIONS, "2026-12-08T12:00:00Z"),
        ((), "2028-11-28T12:00:00Z"),
    ):
        grant_message = _grant(view.message_id, conditions=conditions, until=until)
        (grant,) = rs.submit(grant_message, to=[GB], officer="m.petrovic")
        assert isinstance(grant, Outgoing)
        assert uk.receive(deliver(grant.envelope, recipient=GB)) == "stored"
        grants.append(grant.message_id)

    def kept(message_id: str) -> Kept:
        return Kept(Evidence.from_bytes(uk.inbox.evidence(message_id)), uk.inbox.get(message_id))

    return Shared(
        view.message_id,
        uk,
        mk,
        kept(view.message_id),
        kept(grants[0]),
        _markings(report()),
        kept(grants[1]),
        kept(grants[2]),
    )


def _forward(
    shared: Shared,
    fields: tuple[str, ...] = ("body.summary",),
    *,
    grant: Kept | None = None,
    conditions: tuple[dict[str, Any], ...] = (),
) -> Message:
    body = forward_body(
        shared.kept_original, grant or shared.kept_grant, fields_granted=fields, registry=REGISTRY
    )
    document = {**shared.markings, "type": "onward.forward", "schema_version": 1, "body": body}
    if conditions:
        document.update(handling="H3", handling_conditions=list(conditions))
    return parse_message(json.dumps(document).encode())


def _check(
    shared: Shared, forward: Message, *, me: PartnerCode = MK, at: dt.datetime = NOW
) -> None:
    check_forward(forward, labels=labels_of(forward), registry=REGISTRY, holder=GB, me=me, now=at)


def test_a_granted_forward_is_sealed_with_its_grant_and_stored_by_the_third_party(
    shared: Shared,
) -> None:
    (sent,) = shared.uk.submit(_forward(shared), to=[MK])
    assert isinstance(sent, Outgoing)
    assert sent.gateway_header is not None
    assert sent.gateway_header[0] == GRANT_HEADER
    assert shared.mk.receive(deliver(sent.envelope, recipient=MK)) == "stored"
    stored = json.loads(shared.mk.inbox.get(sent.message_id))
    revealed = set(stored["body"]["original"]["fields"])
    assert {p for p in revealed if p.startswith("body.")} == {"body.summary"}
    # the originator's officer travels with the signed header the forward discloses
    origin = json.loads(stored["body"]["original"]["header"])["origin"]
    assert origin["agency"] == "Министарство унутрашњих послова"


def test_a_forward_declares_the_categories_of_the_fields_it_reveals(shared: Shared) -> None:
    """Read from the original type's model: the summary is operational, members identify."""
    assert labels_of(_forward(shared)).data_categories == {DataCategory.OPERATIONAL}
    members = labels_of(_forward(shared, ("body.summary", "body.members"))).data_categories
    assert DataCategory.IDENTITY in members


def test_a_forward_whose_original_cannot_be_read_declares_every_category(shared: Shared) -> None:
    """Fail closed: no flow admits what nobody can judge."""
    document = json.loads(_forward(shared).model_dump_json(exclude_none=True))
    header = json.loads(document["body"]["original"]["header"])
    header["labels"]["message_type"] = "no.such.type"
    document["body"]["original"]["header"] = json.dumps(header)
    forward = parse_message(json.dumps(document).encode())
    assert labels_of(forward).data_categories == frozenset(DataCategory)


def test_a_forward_revealing_more_than_was_granted_is_refused(shared: Shared) -> None:
    wider = _forward(shared, ("body.summary", "body.hubs"))
    with pytest.raises(errors.PolicyError, match=r"reveals body.hubs, which was not granted"):
        _check(shared, wider)


def test_a_forward_to_another_third_party_or_after_the_grant_ended_is_refused(
    shared: Shared,
) -> None:
    forward = _forward(shared)
    with pytest.raises(errors.PolicyError, match="the grant is for MK, not XK"):
        _check(shared, forward, me=PartnerCode("XK"))
    with pytest.raises(errors.PolicyError, match="the grant ended at 2026-12-08T12:00:00Z"):
        _check(shared, forward, at=LATER)


def test_a_changed_value_in_the_forward_does_not_verify(shared: Shared) -> None:
    forward = _forward(shared)
    document = json.loads(forward.model_dump_json(exclude_none=True))
    document["body"]["original"]["fields"]["body.summary"]["value"] = "Something else."
    with pytest.raises(errors.VerificationError):
        _check(shared, parse_message(json.dumps(document).encode()))


def test_the_grant_names_its_holder(shared: Shared) -> None:
    body = _forward(shared).body
    assert isinstance(body, OnwardForward)
    grant = disclosure_of(body.grant)
    with pytest.raises(errors.PolicyError, match="given to GB, not to MK"):
        check_grant(grant, registry=REGISTRY, holder=MK, third_party=MK, now=NOW)


def _routed(shared: Shared, headers: tuple[tuple[str, bytes], ...] | None) -> Deliver | Quarantine:
    (sent,) = shared.uk.submit(_forward(shared), to=[MK])
    assert isinstance(sent, Outgoing)
    assert sent.gateway_header is not None
    carried = (sent.gateway_header,) if headers is None else headers
    return route_at_gateway("xb.outbox.GB", sent.envelope, carried)


def test_the_gateway_routes_a_forward_with_its_grant_and_audits_the_grant(shared: Shared) -> None:
    outcome = _routed(shared, None)
    assert isinstance(outcome, Deliver), outcome
    assert any(r.startswith("onward grant ") for r in outcome.audit.reasons)


def test_the_gateway_quarantines_a_forward_without_its_grant_beside_it(shared: Shared) -> None:
    outcome = _routed(shared, ())
    assert isinstance(outcome, Quarantine)
    assert outcome.record.reason_code is ReasonCode.ONWARD_NOT_GRANTED


def test_the_gateway_checks_the_very_grant_the_forward_carries(shared: Shared) -> None:
    """The header reveals the forward's own committed body.grant: another grant the holder
    holds for the same third party, junk, or an oversized header do not pass."""
    (sent,) = shared.uk.submit(_forward(shared), to=[MK])
    assert isinstance(sent, Outgoing)
    assert sent.gateway_header is not None
    shown = json.loads(sent.gateway_header[1])
    other = _forward(shared, grant=shared.kept_conditional).body
    assert isinstance(other, OnwardForward)
    shown["value"] = json.loads(other.grant.model_dump_json())
    swapped = (GRANT_HEADER, strictjson.canonical(shown))
    for header in (swapped, (GRANT_HEADER, b"{}"), (GRANT_HEADER, b"x" * 40_000)):
        outcome = _routed(shared, (header,))
        assert isinstance(outcome, Quarantine), header[1][:40]
        assert outcome.record.reason_code is ReasonCode.MALFORMED


def test_a_forward_carries_the_originators_conditions_or_is_refused(shared: Shared) -> None:
    """The grant's destroy-by and no-dissemination-to travel on the forward, where the third
    party's retention and onward requests apply them; a holder that drops one is refused."""
    _check(shared, _forward(shared, grant=shared.kept_conditional, conditions=CONDITIONS))
    with pytest.raises(errors.PolicyError, match="drops a handling condition"):
        _check(shared, _forward(shared, grant=shared.kept_conditional, conditions=CONDITIONS[1:]))


def test_no_grant_opens_what_a_no_dissemination_condition_closes() -> None:
    grant = _grant("01900000-0000-7000-8000-0000000000dd", conditions=CONDITIONS).body
    assert isinstance(grant, OnwardGrant)
    conditions = forward_conditions((), grant.conditions)
    assert forbidding(conditions, "TR") == "no-dissemination-to TR"
    assert forbidding(conditions, "MK") is None


def test_a_view_restricted_to_units_goes_to_no_other_partner() -> None:
    """restrict-to-units names units of the recipient: no third party's units can be among
    them, so it forbids every onward forward, with or without a grant."""
    restricted = RestrictToUnits(kind=ConditionKind.RESTRICT_TO_UNITS, units=("NCA OIC",))
    why = forbidding((restricted,), "MK")
    assert why is not None
    assert why.startswith("restrict-to-units NCA OIC")


def test_only_intelligence_is_passed_on_never_a_protocol_message(shared: Shared) -> None:
    """A forward of a forward (or of a grant) would pass on a third partner's data on this
    grant alone; it is refused, and it declares every category meanwhile (fail closed)."""
    body = forward_body(
        shared.kept_grant, shared.kept_grant, fields_granted=("body.decision",), registry=REGISTRY
    )
    document = {**shared.markings, "type": "onward.forward", "schema_version": 1, "body": body}
    forward = parse_message(json.dumps(document).encode())
    assert labels_of(forward).data_categories == frozenset(DataCategory)
    with pytest.raises(errors.PolicyError, match="only intelligence is passed on"):
        _check(shared, forward)


def test_a_grant_holds_at_most_a_year_from_its_signing(shared: Shared) -> None:
    with pytest.raises(errors.PolicyError, match="longer than 365 days"):
        _check(shared, _forward(shared, grant=shared.kept_long))


def test_a_forward_states_no_purpose_the_original_does_not(shared: Shared) -> None:
    document = json.loads(_forward(shared).model_dump_json(exclude_none=True))
    document["purposes"] = ["human-trafficking"]
    with pytest.raises(errors.PolicyError, match="purposes the original does not"):
        _check(shared, parse_message(json.dumps(document).encode()))


def test_a_disclosure_of_a_batch_signed_view_travels_in_a_forward_body() -> None:
    """A forward carries its original and grant as disclosures; one of a view signed in a
    batch keeps its place in the batch through the forward's schema, and still verifies."""
    from broker import crypto, envelope
    from broker.pipeline.onward import disclosure_of
    from broker.schema.protocol import Disclosed

    from ..adapter.world import WORLD, report, unsigned_for_rs

    unsigned = [unsigned_for_rs(report()) for _ in range(3)]
    parsed = envelope.parse(envelope.sign_all(unsigned)[2])
    assert parsed.proof is not None
    document = envelope.Disclosure(
        header_bytes=parsed.header_bytes,
        ciphertext_digest=crypto.sha256(parsed.ciphertext),
        signature=parsed.signature,
        revealed={},
        proof=parsed.proof,
    ).to_document()
    carried = disclosure_of(Disclosed.model_validate_json(json.dumps(document)))
    assert carried.proof == parsed.proof
    assert envelope.verify_disclosure(carried, registry=WORLD.registry) == {}
    moved = {**document, "batch": {**document["batch"], "index": 0}}
    forged = disclosure_of(Disclosed.model_validate_json(json.dumps(moved)))
    with pytest.raises(errors.VerificationError):
        envelope.verify_disclosure(forged, registry=WORLD.registry)


def test_a_forward_of_an_original_naming_a_unit_its_originator_does_not_list_is_refused(
    shared: Shared,
) -> None:
    """The original reaches the third party inside the forward, never through a gateway on
    its way there: its origin is checked against the originator's units where the forward is
    checked. RS lists only another unit, so RS's officer's view cannot be passed on."""
    draft = WORLD.edit()
    draft.set_units(RS, [PartnerUnit("МУП", "УКП")])
    listed, _ = WORLD.resign(draft, now=NOW)
    forward = _forward(shared)
    with pytest.raises(errors.PolicyError, match="the original: the origin names unit"):
        check_forward(
            forward, labels=labels_of(forward), registry=listed, holder=GB, me=MK, now=NOW
        )
    _check(shared, forward)  # with no list for RS, the same forward passes
