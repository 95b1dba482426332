"""`effective` and `expires` as a date (midnight UTC) or an RFC 3339 timestamp with an offset.

A date keeps its meaning, its canonical text and therefore every existing digest and
signature; a timestamp names one instant (normalised to UTC, so two spellings of it sign
alike); a timestamp without an offset names no instant and is refused with a position.
"""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import cosign
from broker.errors import PolicyError
from broker.ids import PartnerCode
from broker.keys.testing import make_registry
from broker.policy import (
    Accord,
    ChangeKind,
    Outcome,
    Request,
    accord_time_text,
    diff_accords,
    evaluate,
    evaluate_content,
    instant_of,
    lint_accord,
    load_accord,
    out_of_force,
    parse_accord,
)
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)
from broker.trust import AccordFiles

from .conftest import POLICIES, SMALL_ACCORD

UTC = dt.UTC
INSTANT = dt.datetime(2026, 11, 7, 18, 0, tzinfo=UTC)


def _accord(expires: str = "2027-01-01", effective: str = "2026-01-01", version: int = 2) -> Accord:
    text = SMALL_ACCORD.replace("expires: 2027-01-01", f"expires: {expires}")
    text = text.replace("version: 2", f"version: {version}")
    text = text.replace("effective: 2026-01-01", f"effective: {effective}")
    return parse_accord(text.encode(), source="gb-zz.yaml")


def _refusal(expires: str) -> str:
    with pytest.raises(PolicyError) as caught:
        _accord(expires)
    return str(caught.value)


ACCEPTED: dict[str, tuple[str, dt.date, str]] = {
    "date": ("2027-11-07", dt.date(2027, 11, 7), "2027-11-07"),
    "utc-z": (
        "2027-11-07T18:00:00Z",
        dt.datetime(2027, 11, 7, 18, tzinfo=UTC),
        "2027-11-07T18:00:00Z",
    ),
    "quoted": (
        "'2027-11-07T18:00:00Z'",
        dt.datetime(2027, 11, 7, 18, tzinfo=UTC),
        "2027-11-07T18:00:00Z",
    ),
    "plus-offset": (
        "2027-11-07T19:00:00+01:00",
        dt.datetime(2027, 11, 7, 18, tzinfo=UTC),
        "2027-11-07T18:00:00Z",
    ),
    "minus-offset": (
        "2027-11-07T13:00:00-05:00",
        dt.datetime(2027, 11, 7, 18, tzinfo=UTC),
        "2027-11-07T18:00:00Z",
    ),
    "offset-crosses-midnight": (
        "2027-11-08T01:30:00+02:00",
        dt.datetime(2027, 11, 7, 23, 30, tzinfo=UTC),
        "2027-11-07T23:30:00Z",
    ),
    "fraction": (
        "2027-11-07T18:00:00.250Z",
        dt.datetime(2027, 11, 7, 18, 0, 0, 250_000, tzinfo=UTC),
        "2027-11-07T18:00:00.250000Z",
    ),
}


@pytest.mark.parametrize(("written", "value", "canonical"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_forms(written: str, value: dt.date, canonical: str) -> None:
    """Dates stay dates; timestamps become aware UTC datetimes, written canonically with Z."""
    accord = _accord(written)
    assert accord.expires == value
    assert type(accord.expires) is type(value)
    assert accord.expires_text == canonical
    assert cosign.accord_bytes(accord).count(f'"expires":"{canonical}"'.encode()) == 1


REFUSED: dict[str, tuple[str, str]] = {
    "no-offset": ("2027-11-07T18:00:00", "without a UTC offset"),
    "no-offset-fraction": ("2027-11-07T18:00:00.5", "without a UTC offset"),
    "space-separator": ("2027-11-07 18:00:00Z", "not a valid date or timestamp"),
    "no-seconds": ("2027-11-07T18:00Z", "not a valid date or timestamp"),
    "lowercase": ("2027-11-07t18:00:00z", "not a valid date or timestamp"),
    "hour-25": ("2027-11-07T25:00:00Z", "not a valid date or timestamp"),
    "february-30": ("2027-02-30", "not a valid date or timestamp"),
    "basic-format": ("20271107T180000Z", "not a valid date or timestamp"),
    "bare-number": ("2027", "not a valid date or timestamp"),
    "year-one-shifted-out-of-range": ("0001-01-01T00:30:00+01:00", "not a valid date"),
    "not-text": ("[2027, 11, 7]", "not a valid date or timestamp"),
}


@pytest.mark.parametrize(("written", "words"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_forms_name_position_field_and_fix(written: str, words: str) -> None:
    """Every refused form is one positioned line: file:line:column: expires: what; how."""
    message = _refusal(written)
    assert message.startswith("gb-zz.yaml:6:10: expires: "), message
    assert words in message
    # the fix, as an example in the form that is accepted
    assert "e.g. " in message
    assert message.endswith("Z")


def test_a_timestamp_without_offset_is_shown_with_the_fix() -> None:
    """The hint for a missing offset is the operator's own timestamp with Z added."""
    message = _refusal("2027-11-07T18:00:00")
    assert "'2027-11-07T18:00:00' is a timestamp without a UTC offset" in message
    assert message.endswith("e.g. 2027-11-07T18:00:00Z")


def test_lint_reports_each_bad_time_at_its_own_position() -> None:
    """lint lists a bad `effective` and a bad `expires` separately, each with its line."""
    text = SMALL_ACCORD.replace("effective: 2026-01-01", "effective: 2026-01-01T09:00:00")
    text = text.replace("expires: 2027-01-01", "expires: 2027-01-01 00:00")
    problems = [str(p) for p in lint_accord(text.encode(), source="gb-zz.yaml")]
    assert [p.split(": ")[0:2] for p in problems] == [
        ["gb-zz.yaml:5:12", "effective"],
        ["gb-zz.yaml:6:10", "expires"],
    ]


ORDER: dict[str, tuple[str, str, bool]] = {
    "date-after-date": ("2026-01-01", "2026-01-02", True),
    "same-date": ("2026-01-01", "2026-01-01", False),
    "timestamp-one-second-after-midnight": ("2026-01-01", "2026-01-01T00:00:01Z", True),
    "timestamp-at-midnight-of-the-date": ("2026-01-01", "2026-01-01T00:00:00Z", False),
    "offset-makes-it-earlier": ("2026-01-01", "2026-01-01T00:30:00+01:00", False),
    "timestamp-before-date": ("2026-01-01T12:00:00Z", "2026-01-01", False),
}


@pytest.mark.parametrize(("effective", "expires", "ok"), ORDER.values(), ids=ORDER.keys())
def test_expires_must_be_after_effective_as_instants(
    effective: str, expires: str, ok: bool
) -> None:
    """Dates and timestamps are compared as the instants they name (a date is midnight UTC)."""
    if ok:
        assert (
            _accord(expires, effective).expires_at() > _accord(expires, effective).effective_from()
        )
        return
    with pytest.raises(PolicyError, match=r"gb-zz.yaml:6:10: expires: .* is not after effective"):
        _accord(expires, effective)


#: the digests of the shipped accords, all written with dates: only a change of their text
#: (withdrawals and onward sharing added to their flows,
#: 2026-12) may change them, never the way they are read
SHIPPED_DIGESTS = {
    "gb-al": "0e241632ff1dc764a199bb596e629b7d1354573c720b8eb8463a1092e8cdfb05",
    "gb-mk": "6fca63d9cb11598893e4da7a395d5bf35e70f9ec3dcbe0e7b32ea9fc0fbb938e",
    "gb-rs": "89ecca5ff6b8950227fb435601a1cde90702e164aa5dab211e2b45644d0099c2",
    "gb-tr": "cbfbf68f157553da073f2886901516eb7a0875fd9d8caccc0fa319dfd59c5fa7",
    "gb-xk": "d4262f5388047661ecb6bcb50ef8292a79a0ef76fc9c258897be9f796b6db39b",
}


@pytest.mark.parametrize(("name", "digest"), SHIPPED_DIGESTS.items(), ids=SHIPPED_DIGESTS.keys())
def test_date_accords_keep_their_digests(name: str, digest: str) -> None:
    """Accords written with dates canonicalise exactly as before timestamps were allowed."""
    accord = load_accord(POLICIES / f"{name}.yaml")
    assert isinstance(accord.expires, dt.date)
    assert not isinstance(accord.expires, dt.datetime)
    assert cosign.accord_digest(accord) == digest
    assert b'"expires":"' + accord.expires.isoformat().encode() + b'"' in cosign.accord_bytes(
        accord
    )


def test_two_spellings_of_one_instant_sign_alike() -> None:
    """The signature covers the instant in UTC, not the offset the author happened to use."""
    assert cosign.accord_digest(_accord("2027-11-07T18:00:00Z")) == cosign.accord_digest(
        _accord("2027-11-07T20:00:00+02:00")
    )
    # a date and the same instant as a timestamp are different texts, so different digests
    assert cosign.accord_digest(_accord("2027-11-07")) != cosign.accord_digest(
        _accord("2027-11-07T00:00:00Z")
    )


@given(
    st.datetimes(
        min_value=dt.datetime(1000, 1, 2),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=dt.datetime(9998, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, dt.timezone(dt.timedelta(hours=5, minutes=30))]),
    )
)
def test_canonical_text_round_trips(moment: dt.datetime) -> None:
    """Any aware instant written canonically reads back as the same instant, in UTC."""
    accord = _accord(accord_time_text(moment), effective="0999-01-01")
    assert accord.expires == moment
    assert instant_of(accord.expires) == moment
    assert accord.expires_text.endswith("Z")


# -- the engine at the instant -----------------------------------------------------------

_GB, _ZZ = PartnerCode("GB"), PartnerCode("ZZ")
_REQUEST = Request(
    labels=Labels(
        message_type=MessageType.NETWORK_REPORT,
        schema_version=1,
        classification=Classification.OFFICIAL,
        tlp=TLP.AMBER,
        handling=HandlingCode.H0,
        purposes=frozenset({Purpose.PEOPLE_SMUGGLING}),
        data_categories=frozenset({DataCategory.IDENTITY}),
    ),
    sender=_GB,
    recipient=_ZZ,
)
_TICK = dt.timedelta(microseconds=1)

MOMENTS: dict[str, tuple[dt.datetime, Outcome, str | None]] = {
    "just-before-expiry": (INSTANT - _TICK, Outcome.ALLOW, None),
    "exactly-at-expiry": (INSTANT, Outcome.DENY, "expired at 2026-11-07T18:00:00Z"),
    "after-expiry": (INSTANT + dt.timedelta(seconds=1), Outcome.DENY, "expired at"),
    "exactly-at-effective": (dt.datetime(2026, 11, 7, 9, tzinfo=UTC), Outcome.ALLOW, None),
    "just-before-effective": (
        dt.datetime(2026, 11, 7, 9, tzinfo=UTC) - _TICK,
        Outcome.DENY,
        "not in force until 2026-11-07T09:00:00Z",
    ),
}


@pytest.mark.parametrize(("now", "outcome", "words"), MOMENTS.values(), ids=MOMENTS.keys())
def test_the_engine_decides_at_the_exact_instant(
    now: dt.datetime, outcome: Outcome, words: str | None
) -> None:
    """In force from `effective` inclusive until `expires` exclusive, to the microsecond, for
    the gateway's decision and the sender's alike; the reason names the timestamp."""
    accord = _accord("2026-11-07T19:00:00+01:00", effective="2026-11-07T09:00:00Z")
    for decide in (evaluate, evaluate_content):
        decision = decide(accord, _REQUEST, now=now, counters={})
        assert decision.outcome is outcome
        if words is not None:
            assert decision.rule_ids == ("gb-zz.in-force",)
            assert words in decision.reasons[0]


def test_a_date_still_means_midnight_utc() -> None:
    """`expires: 2027-01-01` stops at 2027-01-01T00:00:00Z, and says "expired on" the day."""
    accord = _accord("2027-01-01")
    midnight = dt.datetime(2027, 1, 1, tzinfo=UTC)
    assert accord.expires_at() == midnight
    assert evaluate(accord, _REQUEST, now=midnight - _TICK, counters={}).permits
    late = evaluate(accord, _REQUEST, now=midnight, counters={})
    assert "expired on 2027-01-01" in late.reasons[0]


# -- diff ----------------------------------------------------------------------------------

DIFFS: dict[str, tuple[str, str, ChangeKind, str]] = {
    "timestamp-earlier-narrows": (
        "2027-01-01",
        "2026-12-31T18:00:00Z",
        ChangeKind.NARROWS,
        "expires 2026-12-31T18:00:00Z (was 2027-01-01)",
    ),
    "timestamp-later-widens": (
        "2027-01-01",
        "2027-01-01T00:00:01Z",
        ChangeKind.WIDENS,
        "expires 2027-01-01T00:00:01Z (was 2027-01-01)",
    ),
    "back-to-a-date-widens": (
        "2026-12-31T18:00:00Z",
        "2027-01-01",
        ChangeKind.WIDENS,
        "expires 2027-01-01 (was 2026-12-31T18:00:00Z)",
    ),
    "same-instant-other-form-changes": (
        "2027-01-01",
        "2027-01-01T00:00:00Z",
        ChangeKind.CHANGES,
        "expires 2027-01-01T00:00:00Z (was 2027-01-01)",
    ),
}


@pytest.mark.parametrize(("old", "new", "kind", "text"), DIFFS.values(), ids=DIFFS.keys())
def test_diff_compares_expiry_as_instants(old: str, new: str, kind: ChangeKind, text: str) -> None:
    """An earlier end narrows, a later one widens, whichever form each version uses."""
    changes = diff_accords(_accord(old), _accord(new, version=3))
    assert [(c.kind, c.text) for c in changes] == [(kind, text)]


def test_diff_same_instant_other_offset_is_no_change() -> None:
    """Two spellings of one instant are one canonical accord: nothing to review."""
    assert (
        diff_accords(
            _accord("2027-01-01T00:00:00Z"), _accord("2027-01-01T01:00:00+01:00", version=3)
        )
        == []
    )


def test_diff_effective_earlier_widens() -> None:
    """Taking effect earlier lets more through: it is listed as widening."""
    changes = diff_accords(_accord(), _accord(effective="2025-12-31T12:00:00Z", version=3))
    assert [str(c) for c in changes] == [
        "[widens] takes effect 2025-12-31T12:00:00Z (was 2026-01-01)"
    ]


# -- co-signing ---------------------------------------------------------------------------


def test_a_co_signed_timestamp_accord_decides_until_its_instant_then_refuses(
    tmp_path: pathlib.Path,
) -> None:
    """A co-signed accord with a timestamp is held as the daemons hold it: in force until its
    instant, then held still, as expired, so its flows are refused naming the instant."""
    registry, _, private = make_registry(now=INSTANT - dt.timedelta(days=1), partners=["GB", "ZZ"])
    text = SMALL_ACCORD.replace("expires: 2027-01-01", "expires: 2026-11-07T18:00:00Z")
    path = tmp_path / "gb-zz.yaml"
    path.write_text(text, encoding="utf-8")
    accord = load_accord(path)
    signatures = None
    for party in sorted(accord.party_codes):
        signatures = cosign.sign_accord(
            accord, signatures, key=private[party].policy, partner=party
        )
    assert signatures is not None
    cosign.write_signature_file(cosign.signature_path(path), signatures)
    files = AccordFiles()
    assert files.read([path], registry=registry, now=INSTANT - _TICK).refusals == ()
    (before,) = files.statuses(INSTANT - _TICK)
    (after,) = files.statuses(INSTANT)
    assert (before.state, after.state) == ("in_force", "expired")
    assert after.deciding.expires_at() == INSTANT
    held = files.book(INSTANT).for_pair(PartnerCode("GB"), PartnerCode("ZZ"))
    assert held is not None
    denial = out_of_force(held, now=INSTANT)
    assert denial is not None
    assert denial.reasons == (f"accord gb-zz v{held.version} expired at 2026-11-07T18:00:00Z",)
