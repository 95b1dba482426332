"""A witness's view of one log: the newest checkpoint it has proven consistent, and why it
refuses the ones it cannot vouch for.

A witness co-signs a checkpoint only once it knows that the tree the checkpoint signs extends
every tree it has seen of that log (c2sp.org/tlog-cosignature: "the consistent tree head with
the largest size the cosigner has observed"). Here the proof is constructive: each of our
checkpoint records lists the leaf hashes it adds, so the witness keeps the right edge of the
newest tree it verified (O(log n) hashes, see :class:`~broker.merkle.MerkleLog`),
appends the listed leaves it has not seen, and requires the signed root to come out. The
listed leaves are never trusted on their own: only a root they reproduce counts.

A view starts at the empty tree, which every tree extends, so a witness that reads the log
from its first checkpoint needs no trust on first use. Pure: no I/O, no clock.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Sequence

from broker import errors, merkle
from broker.audit.checkpoint import Checkpoint

__all__ = ["LogView", "Observation"]

#: how many recent tree sizes keep their root, to tell an older checkpoint from a fork
_ROOT_WINDOW = 8192


class Observation(enum.StrEnum):
    """What a consistent checkpoint told the view."""

    #: a larger tree that extends the view: co-sign it
    GREW = "grew"
    #: the same tree again (another signature of it): co-signing it is true too
    SAME = "same"
    #: an older tree whose root matches what the view computed at that size
    OLDER = "older"
    #: an older tree too far back to compare: nothing is said about it
    OLDER_UNCHECKED = "older_unchecked"


class LogView:
    """The newest checkpoint of one log that a witness has proven consistent."""

    __slots__ = ("_latest", "_log", "_origin", "_roots")

    def __init__(self, origin: str) -> None:
        self._origin = origin
        self._log = merkle.MerkleLog()
        self._latest: Checkpoint | None = None
        self._roots: collections.OrderedDict[int, bytes] = collections.OrderedDict()

    @classmethod
    def resume(cls, latest: Checkpoint, *, right_edge: Sequence[bytes]) -> LogView:
        """Continue from a saved view; the edge must reproduce the checkpoint's root."""
        view = cls(latest.origin)
        log = merkle.MerkleLog.resume(size=latest.size, right_edge=right_edge)
        if log.root() != latest.root:
            raise errors.AuditError("the saved right edge does not give the saved root")
        view._log, view._latest = log, latest
        view._remember(latest.size, latest.root)
        return view

    @property
    def origin(self) -> str:
        """The log this view follows."""
        return self._origin

    @property
    def latest(self) -> Checkpoint | None:
        """The newest checkpoint proven consistent, or None before the first."""
        return self._latest

    @property
    def size(self) -> int:
        """The size of the newest tree proven consistent (0 before the first checkpoint)."""
        return self._log.size

    @property
    def right_edge(self) -> tuple[bytes, ...]:
        """The saved state: with :attr:`latest`, all :meth:`resume` needs."""
        return self._log.right_edge

    def observe(
        self, checkpoint: Checkpoint, *, first: int, leaves: Sequence[bytes]
    ) -> Observation:
        """Take in a checkpoint (its log signature already verified) and the leaf hashes
        its record lists for ``first .. size-1``.

        Raises AuditError, leaving the view as it was, for another log, a second root for a
        size (a fork), a tree that does not extend the view, or a gap in the listed leaves.
        """
        if checkpoint.origin != self._origin:
            raise errors.AuditError(
                f"checkpoint is for log {checkpoint.origin!r}, not {self._origin!r}"
            )
        if first < 0 or first + len(leaves) != checkpoint.size:
            raise errors.AuditError("the listed leaves do not end at the checkpoint's size")
        size = self._log.size
        if checkpoint.size < size:
            return self._older(checkpoint)
        if checkpoint.size == size:
            if checkpoint.root != self._log.root():
                raise errors.AuditError(f"a second root for size {size}: the log forked")
            self._latest = checkpoint
            return Observation.SAME
        if first > size:
            raise errors.AuditError(
                f"cannot prove size {checkpoint.size}: leaves {size} to {first - 1} were never "
                "listed to this witness"
            )
        grown = merkle.MerkleLog.resume(size=size, right_edge=self._log.right_edge)
        roots: list[tuple[int, bytes]] = []
        for leaf in leaves[size - first :]:
            grown.append(leaf)
            roots.append((grown.size, grown.root()))
        if roots[-1][1] != checkpoint.root:
            raise errors.AuditError(
                f"checkpoint of size {checkpoint.size} does not extend the tree of size {size}: "
                "the log rewrote its history"
            )
        self._log, self._latest = grown, checkpoint
        for item in roots:
            self._remember(*item)
        return Observation.GREW

    def _older(self, checkpoint: Checkpoint) -> Observation:
        known = self._roots.get(checkpoint.size)
        if known is None:
            return Observation.OLDER_UNCHECKED
        if known != checkpoint.root:
            raise errors.AuditError(f"a second root for size {checkpoint.size}: the log forked")
        return Observation.OLDER

    def _remember(self, size: int, root: bytes) -> None:
        self._roots[size] = root
        while len(self._roots) > _ROOT_WINDOW:
            self._roots.popitem(last=False)
