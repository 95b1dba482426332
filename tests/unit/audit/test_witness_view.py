"""A witness's view of a log grows only by trees that extend it, and names every other case."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import errors, merkle
from broker.audit.checkpoint import Checkpoint
from broker.audit.witness import LogView, Observation

ORIGIN = "broker/xb.audit"
T0 = dt.datetime(2026, 11, 28, 16, 0, tzinfo=dt.UTC)
LEAVES = [merkle.leaf_hash(b"record %d" % i) for i in range(64)]


def at(size: int, leaves: list[bytes] = LEAVES, origin: str = ORIGIN) -> Checkpoint:
    return Checkpoint(origin=origin, size=size, root=merkle.root_hash(leaves[:size]), timestamp=T0)


def test_a_view_grows_from_the_empty_tree_without_trust_on_first_use() -> None:
    """The first checkpoint is proven from leaf 0; each later one from the view's edge."""
    view = LogView(ORIGIN)
    assert view.observe(at(5), first=0, leaves=LEAVES[:5]) is Observation.GREW
    assert view.observe(at(12), first=5, leaves=LEAVES[5:12]) is Observation.GREW
    assert (view.size, view.latest) == (12, at(12))


def test_listed_leaves_may_start_before_the_view() -> None:
    """Another gateway instance lists leaves the view has: only the new ones are appended."""
    view = LogView(ORIGIN)
    view.observe(at(8), first=0, leaves=LEAVES[:8])
    assert view.observe(at(20), first=4, leaves=LEAVES[4:20]) is Observation.GREW
    assert view.latest == at(20)


def test_the_same_and_older_trees_are_recognised() -> None:
    """The same tree again is SAME; an older one it computed is OLDER; one from before its
    window of roots is OLDER_UNCHECKED (nothing to compare it with, nothing co-signed)."""
    view = LogView(ORIGIN)
    view.observe(at(10), first=0, leaves=LEAVES[:10])
    assert view.observe(at(10), first=10, leaves=[]) is Observation.SAME
    assert view.observe(at(7), first=7, leaves=[]) is Observation.OLDER
    resumed = LogView.resume(at(10), right_edge=view.right_edge)
    assert resumed.observe(at(7), first=7, leaves=[]) is Observation.OLDER_UNCHECKED


FORKED = [merkle.leaf_hash(b"forged %d" % i) for i in range(64)]

REFUSALS: dict[str, tuple[Checkpoint, int, list[bytes], str]] = {
    "a second root for the same size": (at(10, FORKED), 10, [], "forked"),
    "an older size with another root": (at(6, FORKED), 6, [], "forked"),
    "history rewritten under a larger tree": (at(16, FORKED), 10, FORKED[10:16], "rewrote"),
    "listed leaves that do not give the root": (at(16), 10, FORKED[10:16], "rewrote"),
    "a gap in the listed leaves": (at(16), 12, LEAVES[12:16], "never listed"),
    "leaves that do not end at the size": (at(16), 10, LEAVES[10:15], "do not end"),
    "another log": (at(16, origin="broker/other"), 10, LEAVES[10:16], "not"),
}


@pytest.mark.parametrize(
    ("checkpoint", "first", "leaves", "reason"), REFUSALS.values(), ids=REFUSALS.keys()
)
def test_a_view_refuses_what_it_cannot_vouch_for(
    checkpoint: Checkpoint, first: int, leaves: list[bytes], reason: str
) -> None:
    """Forks, rewrites, gaps and other logs are AuditError, and the view stays as it was."""
    view = LogView(ORIGIN)
    view.observe(at(10), first=0, leaves=LEAVES[:10])
    edge = view.right_edge
    with pytest.raises(errors.AuditError, match=reason):
        view.observe(checkpoint, first=first, leaves=leaves)
    assert (view.latest, view.right_edge) == (at(10), edge)


def test_a_saved_view_must_reproduce_its_root() -> None:
    """Resuming from an edge that does not give the saved root is refused (edited state)."""
    view = LogView(ORIGIN)
    view.observe(at(9), first=0, leaves=LEAVES[:9])
    with pytest.raises(errors.AuditError):
        LogView.resume(at(9, FORKED), right_edge=view.right_edge)


@given(cuts=st.lists(st.integers(min_value=0, max_value=64), min_size=1, max_size=12))
def test_any_sequence_of_honest_checkpoints_is_accepted(cuts: list[int]) -> None:
    """Property: checkpoints of one honest log, in any order of sizes, each listing the leaves
    since the previous one of its writer, are never refused, and the view ends at the largest."""
    view = LogView(ORIGIN)
    previous = 0
    for size in cuts:
        first = min(previous, size, view.size)
        view.observe(at(size), first=first, leaves=LEAVES[first:size])
        previous = size
    assert view.size == max(cuts)
