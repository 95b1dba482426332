"""Topic and group names come only from a validated prefix and validated partner codes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import errors
from broker.config import (
    adapter_group,
    audit_topic,
    gateway_group,
    inbox_topic,
    outbox_topic,
    quarantine_topic,
    replication_for,
    topic_plan,
)

PARTNERS = ["GB", "RS", "MK", "XK", "TR", "AL"]
KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def test_names_follow_design_section_3() -> None:
    assert outbox_topic("xb.", "GB") == "xb.outbox.GB"
    assert inbox_topic("xb.", "RS") == "xb.inbox.RS"
    assert quarantine_topic("xb.") == "xb.quarantine"
    assert audit_topic("prod.xb.") == "prod.xb.audit"
    assert gateway_group("xb.") == "xb.gateway"
    assert adapter_group("xb.", "MK") == "xb.adapter.MK"


@pytest.mark.parametrize(
    "partner", ["gb", "G", "GBR", "G*", "*", "GB.x", "../GB", "", "G B", "ĞB", "GB\n"]
)
def test_partner_codes_are_two_capitals(partner: str) -> None:
    """Anything but two ASCII capitals is refused, so no name can reach another topic."""
    with pytest.raises(errors.UsageError, match="two capital letters"):
        outbox_topic("xb.", partner)


@pytest.mark.parametrize("prefix", ["", "xb", "XB.", "xb_.", "x*.", ".xb.", "xb..", "a.b.c.d.e."])
def test_prefixes_are_lowercase_dotted_words(prefix: str) -> None:
    with pytest.raises(errors.UsageError, match="topic prefix"):
        inbox_topic(prefix, "GB")


@given(st.text(max_size=6), st.text(max_size=12))
def test_every_name_built_is_a_legal_literal_kafka_topic(partner: str, prefix: str) -> None:
    """Property: a name is either refused or a legal topic made of prefix, kind and code."""
    try:
        name = outbox_topic(prefix, partner)
    except errors.UsageError:
        return
    assert KAFKA_TOPIC.fullmatch(name)
    assert name == f"{prefix}outbox.{partner}"
    assert re.fullmatch(r"[A-Z]{2}", partner)


def test_plan_covers_every_topic_once() -> None:
    plan = topic_plan(
        [*PARTNERS, "GB"], prefix="xb.", partitions=6, replication_factor=3, min_insync_replicas=2
    )
    names = [spec.name for spec in plan]
    expected = {f"xb.{kind}.{p}" for kind in ("outbox", "inbox") for p in PARTNERS}
    assert sorted(names) == names
    assert set(names) == expected | {"xb.quarantine", "xb.audit", "xb.witness"}
    assert len(names) == len(set(names))
    for spec in plan:
        assert spec.replication_factor == 3
        assert spec.configs["min.insync.replicas"] == "2"
        assert spec.configs["unclean.leader.election.enable"] == "false"


def test_audit_topic_is_one_ordered_partition_kept_forever() -> None:
    """One partition keeps the hash-chained audit log in one total order."""
    plan = {
        s.name: s
        for s in topic_plan(
            ["GB"], prefix="xb.", partitions=12, replication_factor=3, min_insync_replicas=2
        )
    }
    assert plan["xb.audit"].partitions == 1
    assert plan["xb.audit"].configs["retention.ms"] == "-1"
    # the witnesses' cosignatures vouch for the log: kept as long, in one order too
    assert plan["xb.witness"].partitions == 1
    assert plan["xb.witness"].configs["retention.ms"] == "-1"
    assert plan["xb.outbox.GB"].partitions == 12
    assert plan["xb.inbox.GB"].configs["retention.ms"] == str(7 * 86_400_000)


@pytest.mark.parametrize(
    ("partners", "partitions", "rf", "isr", "needle"),
    [
        ([], 1, 1, 1, "at least one partner"),
        (["GB"], 0, 1, 1, "at least 1"),
        (["GB"], 1, 0, 1, "at least 1"),
        (["GB"], 1, 3, 4, "between 1 and the replication factor"),
        (["GB"], 1, 3, 0, "between 1 and the replication factor"),
        (["gb"], 1, 1, 1, "two capital letters"),
    ],
)
def test_impossible_plans_are_refused(
    partners: list[str], partitions: int, rf: int, isr: int, needle: str
) -> None:
    with pytest.raises(errors.UsageError, match=needle):
        topic_plan(
            partners,
            prefix="xb.",
            partitions=partitions,
            replication_factor=rf,
            min_insync_replicas=isr,
        )


@pytest.mark.parametrize(
    ("brokers", "expected"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))]
)
def test_replication_for_a_cluster_keeps_two_in_sync_of_three_when_it_can(
    brokers: int, expected: tuple[int, int]
) -> None:
    """Three replicas with two in sync from three brokers on; fewer only when there are."""
    assert replication_for(brokers) == expected


def test_replication_for_no_broker_is_a_usage_error() -> None:
    with pytest.raises(errors.UsageError):
        replication_for(0)
