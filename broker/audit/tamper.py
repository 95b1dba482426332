"""Name what happened to a log that no longer matches what was signed.

An auditor holds the leaf hashes the signed checkpoints committed to (``expected``) and the
leaf hashes of the records actually read back (``observed``). :func:`classify_tampering` finds
the first index where they part and names the kind of damage, deciding in this order:

==========  ======================================================================
kind        the observed log ...
==========  ======================================================================
truncated   is a proper prefix of the expected one: its newest entries are gone
deleted     from the first bad index on, is the expected log with entries left out
reordered   from the first bad index on, holds the same entries in another order
modified    has the same length, and every differing entry is one never committed
forked      diverges into a different history (entries inserted, replaced and moved)
==========  ======================================================================

Entries observed beyond the end of ``expected`` are not tampering: the log grew after the
last checkpoint, and those entries are simply not yet covered by a signature.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from broker import errors, merkle

__all__ = ["TamperKind", "TamperReport", "classify_tampering"]


class TamperKind(enum.StrEnum):
    """What kind of damage a log shows, ``NONE`` when it matches."""

    NONE = "none"
    TRUNCATED = "truncated"
    DELETED = "deleted"
    REORDERED = "reordered"
    MODIFIED = "modified"
    FORKED = "forked"


@dataclass(frozen=True, slots=True)
class TamperReport:
    """The outcome of a comparison: the kind, and the first index that does not match."""

    kind: TamperKind
    #: the first index whose entry differs from (or is missing against) the signed log
    first_bad_index: int | None

    @property
    def intact(self) -> bool:
        """Whether every committed entry was found in place."""
        return self.kind is TamperKind.NONE

    def __bool__(self) -> bool:
        # "if report:" would be read both ways; callers must ask .intact or .kind.
        raise TypeError("a TamperReport has no truth value; use .intact or .kind")

    def describe(self) -> str:
        """One line for an auditor's report."""
        if self.intact:
            return "the log matches every signed entry"
        return f"the log was {self.kind} at index {self.first_bad_index}"


def classify_tampering(expected: Sequence[bytes], observed: Sequence[bytes]) -> TamperReport:
    """Compare the signed leaf hashes with the observed ones; see the module for the kinds."""
    for what, hashes in (("expected", expected), ("observed", observed)):
        if not all(_is_hash(item) for item in hashes):
            raise errors.AuditError(f"every {what} leaf hash must be {merkle.HASH_SIZE} bytes")
    first = _first_difference(expected, observed)
    if first == len(expected):
        return TamperReport(TamperKind.NONE, None)
    if first == len(observed):
        return TamperReport(TamperKind.TRUNCATED, first)
    want, got = expected[first:], observed[first:]
    if len(got) < len(want) and _is_subsequence(got, want):
        kind = TamperKind.DELETED
    elif len(got) == len(want) and Counter(got) == Counter(want):
        kind = TamperKind.REORDERED
    elif len(got) == len(want) and _only_new_values(want, got, frozenset(expected)):
        kind = TamperKind.MODIFIED
    else:
        kind = TamperKind.FORKED
    return TamperReport(kind, first)


def _first_difference(expected: Sequence[bytes], observed: Sequence[bytes]) -> int:
    """The first index where the two differ, or the shorter length if one is a prefix."""
    for index, (want, got) in enumerate(zip(expected, observed, strict=False)):
        if want != got:
            return index
    return min(len(expected), len(observed))


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == merkle.HASH_SIZE


def _is_subsequence(short: Sequence[bytes], long: Sequence[bytes]) -> bool:
    remaining = iter(long)
    # "in" consumes the iterator up to the match, so order is enforced.
    return all(item in remaining for item in short)


def _only_new_values(
    want: Sequence[bytes], got: Sequence[bytes], committed: frozenset[bytes]
) -> bool:
    return all(w == g or g not in committed for w, g in zip(want, got, strict=True))
