"""Tamper classification: the first bad index and the kind of damage, one named case each."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import errors, merkle
from broker.audit.tamper import TamperKind, TamperReport, classify_tampering


def h(name: str) -> bytes:
    """A leaf hash with a readable name, so tables read as sequences of letters."""
    return merkle.leaf_hash(name.encode())


def log(names: str) -> list[bytes]:
    return [h(name) for name in names]


SIGNED = "abcdefgh"

CASES = {
    # name: (observed, kind, first bad index)
    "identical": ("abcdefgh", TamperKind.NONE, None),
    "grown past the last checkpoint": ("abcdefghij", TamperKind.NONE, None),
    "newest entries cut off": ("abcde", TamperKind.TRUNCATED, 5),
    "everything gone": ("", TamperKind.TRUNCATED, 0),
    "one entry deleted": ("abcefgh", TamperKind.DELETED, 3),
    "two scattered entries deleted": ("abdfgh", TamperKind.DELETED, 2),
    "first entry deleted": ("bcdefgh", TamperKind.DELETED, 0),
    "two entries swapped": ("abdcefgh", TamperKind.REORDERED, 2),
    "last entries reversed": ("abcdehgf", TamperKind.REORDERED, 5),
    "one entry rewritten": ("abcXefgh", TamperKind.MODIFIED, 3),
    "last entry rewritten": ("abcdefgX", TamperKind.MODIFIED, 7),
    "two entries rewritten": ("aXcdeYgh", TamperKind.MODIFIED, 1),
    "a different history from index 4": ("abcdXYZ", TamperKind.FORKED, 4),
    "an entry inserted": ("abcXdefgh", TamperKind.FORKED, 3),
    "rewritten and reordered": ("abXcdefg", TamperKind.FORKED, 2),
    "one deleted, one forged appended": ("abcefghX", TamperKind.FORKED, 3),
}


@pytest.mark.parametrize(("observed", "kind", "index"), CASES.values(), ids=list(CASES.keys()))
def test_each_kind_of_damage_is_named_at_its_first_index(
    observed: str, kind: TamperKind, index: int | None
) -> None:
    """The report names the damage and the first index that no longer matches the signed log."""
    report = classify_tampering(log(SIGNED), log(observed))
    assert (report.kind, report.first_bad_index) == (kind, index)
    assert report.intact is (kind is TamperKind.NONE)


def test_every_kind_is_covered_by_the_table() -> None:
    """Each kind the classifier can return has at least one named case above."""
    assert {kind for _, kind, _ in CASES.values()} == set(TamperKind)


def test_a_report_has_no_truth_value() -> None:
    """ "if report:" would mean opposite things to different readers, so it is refused."""
    report = classify_tampering(log("ab"), log("ab"))
    with pytest.raises(TypeError):
        bool(report)


def test_description_names_kind_and_index() -> None:
    """The auditor's line says what happened and where."""
    report = TamperReport(TamperKind.DELETED, 41)
    assert report.describe() == "the log was deleted at index 41"
    assert "matches" in TamperReport(TamperKind.NONE, None).describe()


def test_inputs_that_are_not_leaf_hashes_are_refused() -> None:
    """Anything but 32-byte hashes is an AuditError, not a wrong answer."""
    with pytest.raises(errors.AuditError):
        classify_tampering([b"short"], log("a"))


@given(
    st.lists(st.integers(min_value=0, max_value=5), max_size=12),
    st.lists(st.integers(min_value=0, max_value=5), max_size=12),
)
def test_first_bad_index_is_where_the_logs_first_part(
    expected: list[int], observed: list[int]
) -> None:
    """For any two logs, the report is intact exactly when the signed log is a prefix of the
    observed one, and otherwise points at the first position that differs or is missing."""
    want = [h(str(i)) for i in expected]
    got = [h(str(i)) for i in observed]
    report = classify_tampering(want, got)
    if got[: len(want)] == want:
        assert report.intact
    else:
        index = report.first_bad_index
        assert index is not None
        assert got[:index] == want[:index]
        assert index == len(got) or got[index] != want[index]
