"""AccordSet: which version of each accord decides at an instant, and that none ever goes back.

The rules (broker/trust/accords.py): the highest version in force decides; else the highest
expired one (the accord has lapsed); else the one that takes effect first. A version lower than
one that has been in force never decides again, whatever file it comes from.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.ids import AccordId, PartnerCode
from broker.keys.testing import build_registry
from broker.policy import Accord, parse_accord
from broker.trust import AccordInForce, AccordSet
from broker.trust.acts import ActsFile, add_act

GB, RS, MK = PartnerCode("GB"), PartnerCode("RS"), PartnerCode("MK")
DAY = dt.timedelta(days=1)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def accord(
    version: int,
    effective: str,
    expires: str,
    *,
    accord_id: str = "gb-rs",
    parties: tuple[str, str] = ("GB", "RS"),
    tlp: str = "AMBER",
) -> AccordInForce:
    first, second = parties
    text = f"""accord: {accord_id}
title: Test accord
version: {version}
parties: [{first}, {second}]
effective: {effective}
expires: {expires}
suite: classic
flows:
  - id: {first}-{second}-{version}
    from: {first}
    to: {second}
    tier: operational
    types: [network.report]
    purposes: [people-smuggling]
    max_classification: OFFICIAL
    max_tlp: {tlp}
    handling_codes: [H0]
    categories:
      allow: [operational]
    handling:
      onward_sharing: never
      retention_days: 30
"""
    parsed = parse_accord(text.encode(), source=f"{accord_id}.yaml")
    return AccordInForce(parsed, f"{accord_id}:{version}:{tlp}".encode().hex().ljust(64, "0"))


def deciding(accords: AccordSet, now: dt.datetime) -> Accord | None:
    return accords.book(now).for_pair(GB, RS)


def version_at(accords: AccordSet, now: dt.datetime) -> int | None:
    held = deciding(accords, now)
    return None if held is None else held.version


V1 = accord(1, "2025-01-01", "2027-01-01")
V2 = accord(2, "2027-01-01", "2028-01-01")


MID_2026 = at("2026-06-01")


def holding(*versions: AccordInForce, now: dt.datetime = MID_2026) -> AccordSet:
    accords = AccordSet()
    assert accords.replace(versions, now=now) == []
    return accords


def test_the_version_in_force_decides_and_a_renewal_takes_over_on_its_date() -> None:
    """Before version 2's date version 1 decides; from it, version 2."""
    accords = holding(V1, V2)
    assert [version_at(accords, at(t)) for t in ("2026-12-31", "2027-01-01")] == [1, 2]


def test_a_lapsed_accord_is_still_held_so_its_flows_are_refused_by_name() -> None:
    """Past every version's end the latest expired version decides (by refusing)."""
    accords = holding(V1, V2)
    held = deciding(accords, at("2028-06-01"))
    assert held is not None
    assert held.version == 2
    (status,) = accords.statuses(at("2028-06-01"))
    assert (status.state, status.lapses_at) == ("expired", at("2028-01-01"))


def test_an_accord_not_yet_in_force_is_held_and_said_so() -> None:
    """Before its first version's date the accord decides by refusing, not by vanishing."""
    accords = holding(V2, now=at("2026-06-01"))
    held = deciding(accords, at("2026-06-01"))
    assert held is not None
    (status,) = accords.statuses(at("2026-06-01"))
    assert status.state == "not_yet_effective"


def test_the_lapse_counts_through_a_renewal_on_file() -> None:
    """Version 1 expires in 2027, but version 2 follows on: the accord lapses in 2028."""
    (status,) = holding(V1, V2).statuses(at("2026-12-20"))
    assert status.successor is not None
    assert (status.version, status.successor.version) == (1, 2)
    assert status.lapses_at == at("2028-01-01")


def test_a_version_below_one_that_was_in_force_never_decides_again() -> None:
    """Version 2 was in force; version 1, valid again by its dates after version 2 ends,
    stays out: the floor is the highest version ever in force."""
    long_v1 = accord(1, "2025-01-01", "2030-01-01")
    short_v2 = accord(2, "2026-01-01", "2026-07-01")
    accords = holding(long_v1, short_v2, now=at("2026-03-01"))
    assert version_at(accords, at("2026-03-01")) == 2
    assert version_at(accords, at("2026-08-01")) == 2  # lapsed, refusing; never version 1
    assert accords.floors == {AccordId("gb-rs"): 2}


def test_a_replacement_below_the_floor_is_refused_with_the_reason() -> None:
    """Offered only version 1 after version 2 has been in force: refused as a rollback."""
    accords = holding(V1, V2, now=at("2027-02-01"))
    (refusal,) = accords.replace([V1], now=at("2027-02-01"))
    assert "rollback refused" in refusal.reason
    assert deciding(accords, at("2027-02-01")) is None


def test_two_texts_under_one_version_are_both_refused() -> None:
    """One id and version must mean one text: two different ones are both refused."""
    laxer = accord(1, "2025-01-01", "2027-01-01", tlp="RED")
    accords = AccordSet()
    (refusal,) = accords.replace([V1, laxer], now=at("2026-06-01"))
    assert refusal.source == "gb-rs v1"
    assert deciding(accords, at("2026-06-01")) is None


def test_two_accords_for_one_pair_are_both_refused_and_others_go_on() -> None:
    """gb-rs and gb-rs-bis both cover GB-RS: neither decides; gb-mk is unaffected."""
    bis = accord(1, "2025-01-01", "2027-01-01", accord_id="gb-rs-bis")
    mk = accord(1, "2025-01-01", "2027-01-01", accord_id="gb-mk", parties=("GB", "MK"))
    accords = AccordSet()
    refusals = accords.replace([V1, bis, mk], now=at("2026-06-01"))
    assert sorted(r.source for r in refusals) == ["gb-rs", "gb-rs-bis"]
    book = accords.book(at("2026-06-01"))
    assert book.for_pair(GB, RS) is None
    assert book.for_pair(GB, MK) is not None


def test_the_book_is_the_same_object_between_edges() -> None:
    """No version starts or ends between two instants: the book is not rebuilt."""
    accords = holding(V1, V2)
    assert accords.book(at("2026-06-01")) is accords.book(at("2026-06-02"))
    assert accords.book(at("2026-12-31")) is not accords.book(at("2027-01-01"))


VERSIONS = [
    accord(v, f"{2024 + s}-01-01", f"{2024 + s + d}-01-01")
    for v in range(1, 5)
    for s, d in ((0, 2), (1, 1), (2, 3), (3, 1))
    if (v + s) % 2 == 0 or v == 1
]
EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("files"), st.sets(st.sampled_from(range(len(VERSIONS))))),
        st.tuples(st.just("time"), st.integers(min_value=1, max_value=400)),
        st.tuples(st.just("restart"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_no_sequence_of_updates_renames_deletions_and_restarts_lowers_the_version(
    events: list[tuple[str, object]],
) -> None:
    """Whatever files come and go, however time moves and however often the daemon restarts
    (keeping its persisted floors), the deciding version never goes below one that has been
    in force."""
    now = at("2024-01-01")
    accords = AccordSet()
    highest_in_force = 0
    files: list[AccordInForce] = []
    for kind, value in events:
        if kind == "files":
            assert isinstance(value, set)
            files = [VERSIONS[i] for i in sorted(value)]
            accords.replace(files, now=now)
        elif kind == "time":
            assert isinstance(value, int)
            now += value * DAY
        else:
            accords = AccordSet(floors=accords.floors)
            accords.replace(files, now=now)
        held = deciding(accords, now)
        if held is not None:
            assert held.version >= highest_in_force
            effective_from, expires_at = held.in_force
            if effective_from <= now < expires_at:
                highest_in_force = max(highest_in_force, held.version)


def test_a_fresh_daemon_that_cannot_verify_an_accords_acts_halts_the_accord() -> None:
    """No act applied yet, and the chain does not verify (here: signed by a key the registry
    does not list): the chain may hold a suspension, so the accord is halted, not ignored;
    a daemon that has applied the chain before keeps the standing it remembers instead."""
    registry = build_registry(now=MID_2026, partners=("GB", "RS"), roots=1, threshold=1)
    stranger = build_registry(now=MID_2026, partners=("GB", "RS"), roots=1, threshold=1)
    chain = add_act(
        ActsFile(accord="gb-rs"),
        kind="suspend",
        key=stranger.partners[RS].policy,
        partner=RS,
        parties=frozenset({GB, RS}),
        at=MID_2026,
        reason="not RS's key",
    )
    accords = holding(V1)
    refusals, applied = accords.apply_acts(
        {AccordId("gb-rs"): chain}, registry=registry.registry, now=MID_2026
    )
    assert applied == []
    assert [r.source for r in refusals] == ["gb-rs acts"]
    book = accords.book(MID_2026)
    accord_held = book.for_pair(GB, RS)
    assert accord_held is not None
    halt = book.halt(accord_held)
    assert halt is not None
    assert "do not verify" in halt.reason
    assert accords.acts == {}  # a halt for want of proof is never remembered
    # the file is removed: nothing is left to verify, and the accord is in force again
    accords.apply_acts({}, registry=registry.registry, now=MID_2026)
    book = accords.book(MID_2026)
    assert book.halt(accord_held) is None
