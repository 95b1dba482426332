"""Signed acts on an accord: a suspension by either party, a resumption by every party, a final
termination; a chain that cannot be truncated, reordered or signed by the wrong key."""

from __future__ import annotations

import datetime as dt

import pytest

from broker import crypto
from broker.errors import PolicyError
from broker.ids import AccordId, KeyId, PartnerCode
from broker.keys.testing import build_registry
from broker.reasons import ReasonCode
from broker.trust.acts import ActsFile, add_act, parse_acts_file, stand

NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
GB, RS, TR = PartnerCode("GB"), PartnerCode("RS"), PartnerCode("TR")
PARTIES = frozenset({GB, RS})
WORLD = build_registry(now=NOW, partners=("GB", "RS", "TR"), roots=1, threshold=1)


def act(
    chain: ActsFile,
    kind: str,
    by: PartnerCode,
    key: crypto.SigningKey | None = None,
    *,
    at: dt.datetime = NOW,
) -> ActsFile:
    return add_act(
        chain,
        kind=kind,  # type: ignore[arg-type]
        key=key or WORLD.partners[by].policy,
        partner=by,
        parties=PARTIES,
        at=at,
        reason=f"{kind} by {by}",
    )


def standing_of(chain: ActsFile) -> ReasonCode | None:
    halt = stand(chain, parties=PARTIES, registry=WORLD.registry, now=NOW).memory.halt
    return None if halt is None else halt.code


EMPTY = ActsFile(accord="gb-rs")


def test_either_party_suspends_alone_and_resuming_takes_both() -> None:
    """RS suspends; GB's signature alone does not resume; RS's co-signature does."""
    suspended = act(EMPTY, "suspend", RS)
    assert standing_of(suspended) is ReasonCode.ACCORD_SUSPENDED
    half = act(suspended, "resume", GB)
    assert standing_of(half) is ReasonCode.ACCORD_SUSPENDED
    pending = stand(half, parties=PARTIES, registry=WORLD.registry, now=NOW).pending
    assert pending == {GB}
    resumed = act(half, "resume", RS)
    assert len(resumed.acts) == 2
    assert standing_of(resumed) is None


def test_a_termination_is_final() -> None:
    """After GB terminates, no suspension or resumption can follow."""
    terminated = act(EMPTY, "terminate", GB)
    assert standing_of(terminated) is ReasonCode.ACCORD_TERMINATED
    with pytest.raises(PolicyError, match="terminated"):
        act(terminated, "resume", RS)


def test_a_signature_by_another_key_does_not_count() -> None:
    """TR's policy key signing as RS is no suspension by RS: the chain is refused."""
    forged = act(EMPTY, "suspend", RS, key=WORLD.partners[TR].policy)
    with pytest.raises(PolicyError, match="lacks a valid signature by RS"):
        standing_of(forged)


def test_a_suspension_survives_a_truncated_or_deleted_file() -> None:
    """Once a suspension was applied, a file without it does not extend the chain."""
    suspended = act(EMPTY, "suspend", RS)
    memory = stand(suspended, parties=PARTIES, registry=WORLD.registry, now=NOW).memory
    for shorter in (EMPTY, ActsFile(accord="gb-rs", acts=suspended.acts[:0])):
        with pytest.raises(PolicyError, match="rollback refused"):
            stand(shorter, parties=PARTIES, registry=WORLD.registry, now=NOW, memory=memory)


def test_a_forked_chain_is_refused() -> None:
    """Another act in the first place than the one applied: not an extension."""
    by_rs = act(EMPTY, "suspend", RS)
    by_gb = act(EMPTY, "suspend", GB)
    memory = stand(by_rs, parties=PARTIES, registry=WORLD.registry, now=NOW).memory
    with pytest.raises(PolicyError, match="rollback refused"):
        stand(by_gb, parties=PARTIES, registry=WORLD.registry, now=NOW, memory=memory)


def test_only_the_acts_not_applied_before_are_new() -> None:
    """The daemon audits each act once: a re-read returns no new act."""
    suspended = act(EMPTY, "suspend", RS)
    first = stand(suspended, parties=PARTIES, registry=WORLD.registry, now=NOW)
    assert [a.kind for a in first.new_acts] == ["suspend"]
    again = stand(suspended, parties=PARTIES, registry=WORLD.registry, now=NOW, memory=first.memory)
    assert again.new_acts == ()


def test_a_reordered_or_edited_act_breaks_the_chain() -> None:
    """Changing an act's reason after signing breaks its signature; swapping acts breaks the
    links."""
    resumed = act(act(act(EMPTY, "suspend", RS), "resume", GB), "resume", RS)
    edited_act = resumed.acts[0].act.model_copy(update={"reason": "something else"})
    edited = resumed.model_copy(
        update={"acts": (resumed.acts[0].model_copy(update={"act": edited_act}), *resumed.acts[1:])}
    )
    with pytest.raises(PolicyError):
        standing_of(edited)
    swapped = resumed.model_copy(update={"acts": (resumed.acts[1], resumed.acts[0])})
    with pytest.raises(PolicyError, match="chain is broken"):
        standing_of(swapped)


def test_the_file_round_trips_strictly() -> None:
    """What `policy suspend` writes parses back; duplicate keys are refused."""
    suspended = act(EMPTY, "suspend", RS)
    assert parse_acts_file(suspended.to_bytes(), source="f") == suspended
    with pytest.raises(PolicyError, match="strict JSON"):
        parse_acts_file(b'{"accord": "gb-rs", "accord": "gb-mk", "acts": []}', source="f")


def test_a_non_party_cannot_act() -> None:
    """TR is no party to gb-rs."""
    with pytest.raises(PolicyError, match="not a party"):
        act(EMPTY, "suspend", TR)
    assert AccordId("gb-rs") == EMPTY.accord


def test_a_suspension_outlives_the_key_that_signed_it() -> None:
    """A year on, RS's policy key has expired: the suspension it signed still stands, for a
    daemon that applied it and for one reading the chain afresh (the key was valid then)."""
    suspended = act(EMPTY, "suspend", RS)
    memory = stand(suspended, parties=PARTIES, registry=WORLD.registry, now=NOW).memory
    later = NOW + dt.timedelta(days=400)
    again = stand(suspended, parties=PARTIES, registry=WORLD.registry, now=later, memory=memory)
    assert again.memory == memory
    fresh = stand(suspended, parties=PARTIES, registry=WORLD.registry, now=later)
    assert fresh.memory.halt is not None


def test_a_revoked_key_signs_no_new_act_even_dated_before_its_revocation() -> None:
    """RS's policy key is revoked an hour from now. A resumption it signed, dated before the
    revocation but not applied by then, does not count (whoever holds the key could date it
    so); what was applied before stays applied."""
    suspended = act(EMPTY, "suspend", GB)
    memory = stand(suspended, parties=PARTIES, registry=WORLD.registry, now=NOW).memory
    resumed = act(act(suspended, "resume", GB), "resume", RS)
    draft = WORLD.edit()
    rs_key = KeyId(WORLD.partners[RS].policy.public_key().key_id)
    draft.revoke(partner=RS, key_id=rs_key, at=NOW + dt.timedelta(hours=1), reason="stolen")
    revoked, _ = WORLD.resign(draft, now=NOW)
    later = NOW + dt.timedelta(hours=2)
    standing = stand(resumed, parties=PARTIES, registry=revoked, now=later, memory=memory)
    assert standing.memory == memory  # still suspended: the resumption awaits RS
    assert standing.pending == {GB}


def test_an_act_dated_ahead_of_the_clock_is_refused() -> None:
    ahead = act(EMPTY, "suspend", RS, at=NOW + dt.timedelta(hours=1))
    with pytest.raises(PolicyError, match="ahead of this daemon's clock"):
        standing_of(ahead)
