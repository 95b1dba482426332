"""How long a receiver keeps a view: the strictest of the accord flow's retention, its own
maximum, the message's expiry and the originator's destroy-by deadline, with the rule that
decided it; and the deliveries whose retention nobody here can know are refused."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from broker.ids import PartnerCode
from broker.pipeline.receive import Accepted, Rejected, accept
from broker.pipeline.retention import Retention, RetentionRule, retention_for
from broker.policy import Accord
from broker.reasons import ReasonCode
from broker.schema import HandlingCode, Message
from broker.schema.handling import ConditionKind, DestroyBy, NoDisseminationTo
from broker.trust import AccordInForce
from broker.trust.acts import Halt

from ..adapter.world import GB, GB_MK, GB_RS, NOW, RS, WORLD, deliver, report, seal_for_rs

LATER = NOW + dt.timedelta(seconds=30)

DAY = dt.timedelta(days=1)
#: GB-RS-OPS, the GB -> RS flow of policies/gb-rs.yaml, keeps at most 730 days
FLOW_DAYS = 730


def h3(*conditions: object) -> Message:
    """The report under H3 with ``conditions`` (no shipped flow takes H3: sealed by hand)."""
    return report().model_copy(
        update={"handling": HandlingCode.H3, "handling_conditions": tuple(conditions)}
    )


def received(
    message: Message,
    *,
    max_retention: dt.timedelta = dt.timedelta(days=3650),
    accords: dict[PartnerCode, AccordInForce] | None = None,
) -> Accepted | Rejected:
    keys = WORLD.partners[RS]
    return accept(
        deliver(seal_for_rs(message), recipient=RS),
        me=RS,
        registry=WORLD.registry,
        decryption_keys={keys.encryption_key_id: keys.decryption},
        accords={GB: GB_RS} if accords is None else accords,
        now=LATER,
        max_retention=max_retention,
    )


def kept(outcome: Accepted | Rejected) -> Retention:
    assert isinstance(outcome, Accepted), outcome
    return outcome.retention


def test_the_accord_flows_retention_bounds_a_laxer_local_maximum() -> None:
    """A receiver allowed ten years keeps a GB view two years: what the accord says."""
    retention = kept(received(report()))
    assert retention == Retention(
        LATER + FLOW_DAYS * DAY,
        RetentionRule.ACCORD,
        "flow GB-RS-OPS of accord gb-rs v1 keeps at most 730 days",
    )
    assert retention.explain() == (
        "kept until 2028-11-27T12:00:30Z: flow GB-RS-OPS of accord gb-rs v1 keeps at most 730 days"
    )


def test_a_stricter_local_maximum_wins_over_the_accord() -> None:
    retention = kept(received(report(), max_retention=30 * DAY))
    assert retention.until == LATER + 30 * DAY
    assert retention.rule is RetentionRule.LOCAL
    assert retention.reason == "this adapter keeps at most 30 days (store.retention_days)"


def test_destroy_by_shortens_retention_to_the_originators_deadline() -> None:
    deadline = NOW + 10 * DAY
    retention = kept(received(h3(DestroyBy(kind=ConditionKind.DESTROY_BY, deadline=deadline))))
    assert (retention.until, retention.rule) == (deadline, RetentionRule.DESTROY_BY)
    assert retention.reason == "the originator's handling condition destroy-by 2026-12-08T12:00:00Z"


def test_the_earliest_of_several_deadlines_decides() -> None:
    early, late = NOW + 5 * DAY, NOW + 9 * DAY
    message = h3(
        DestroyBy(kind=ConditionKind.DESTROY_BY, deadline=late),
        NoDisseminationTo(kind=ConditionKind.NO_DISSEMINATION_TO, partners=("XK",)),
        DestroyBy(kind=ConditionKind.DESTROY_BY, deadline=early),
    ).model_copy(update={"expires": NOW + 7 * DAY})
    assert kept(received(message)).until == early
    assert kept(received(message.model_copy(update={"expires": NOW + 2 * DAY}))).rule is (
        RetentionRule.EXPIRES
    )


def test_a_tie_is_explained_by_the_originators_rule_first() -> None:
    """destroy-by, then expiry, then the accord, then the local maximum."""
    flow = GB_RS.accord.routes[("GB", "RS", report().type)]
    same = LATER + FLOW_DAYS * DAY
    message = h3(DestroyBy(kind=ConditionKind.DESTROY_BY, deadline=same)).model_copy(
        update={"expires": same}
    )
    ruled = retention_for(
        message, accord=GB_RS.accord, flow=flow, received_at=LATER, max_retention=FLOW_DAYS * DAY
    )
    assert ruled.rule is RetentionRule.DESTROY_BY
    plain = retention_for(
        report(), accord=GB_RS.accord, flow=flow, received_at=LATER, max_retention=FLOW_DAYS * DAY
    )
    assert plain.rule is RetentionRule.ACCORD


def test_a_view_past_its_destroy_by_deadline_is_refused_and_the_sender_told() -> None:
    """Storing what must already be destroyed would break the originator's condition."""
    outcome = received(
        h3(DestroyBy(kind=ConditionKind.DESTROY_BY, deadline=NOW + dt.timedelta(seconds=10)))
    )
    assert isinstance(outcome, Rejected)
    assert outcome.reason_code is ReasonCode.EXPIRED
    assert "destroy-by deadline 2026-11-28T12:00:10+00:00 has passed" in outcome.reason
    assert outcome.receipt is not None


@pytest.mark.parametrize(
    ("accords", "code", "words"),
    [
        ({}, ReasonCode.NO_ACCORD, "no accord with GB is held here"),
        ({GB: GB_MK}, ReasonCode.ACCORD_MISMATCH, "sealed under accord gb-rs; the accord held"),
        (
            {GB: AccordInForce(GB_RS.accord, GB_RS.digest, Halt(ReasonCode.ACCORD_SUSPENDED, "x"))},
            ReasonCode.ACCORD_SUSPENDED,
            "x",
        ),
        (
            {
                GB: AccordInForce(
                    Accord.model_validate_json(
                        json.dumps(
                            {
                                **GB_RS.accord.model_dump(mode="json", by_alias=True),
                                "flows": [
                                    f.model_dump(mode="json", by_alias=True)
                                    for f in GB_RS.accord.flows
                                    if f.sender != "GB"
                                ],
                            }
                        )
                    ),
                    GB_RS.digest,
                )
            },
            ReasonCode.POLICY_DENIED,
            "no flow of accord gb-rs v1 carries network.report from GB to RS",
        ),
    ],
    ids=["no accord held", "another accord held", "accord suspended", "no flow for the type"],
)
def test_a_view_whose_retention_is_unknown_here_is_refused(
    accords: dict[PartnerCode, AccordInForce], code: ReasonCode, words: str
) -> None:
    """Fail closed: without the accord that bounds it, a view could be kept too long."""
    outcome = received(report(), accords=accords)
    assert isinstance(outcome, Rejected)
    assert (outcome.reason_code, outcome.message_id, outcome.sender) == (
        code,
        outcome.message_id,
        GB,
    )
    assert words in outcome.reason
    assert outcome.receipt is None
