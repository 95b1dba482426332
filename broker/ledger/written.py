"""The audit records this gateway process wrote itself, for its own checkpointer.

The checkpointer judges every record on the audit topic, which for an audit record means a
strict parse and an Ed25519 verification. For the records its own gateway just signed and
produced that check proves nothing new: the process made those exact bytes with its own
registered key. So the routing loop notes the leaf hash of each audit record before it
produces it, and the checkpointer admits a record whose leaf hash it finds here without
judging it again (issue 15: "the gateway computes the leaves it writes in its own process").
Everything else (other instances' records, anything anyone else wrote, and records read back
after a restart) is judged in full.

Bounded: past ``capacity`` unclaimed entries the oldest are forgotten, and those records are
then simply judged in full when they are read. Safe to share between the routing loop and the
checkpointer task of one event loop.
"""

from __future__ import annotations

import collections

__all__ = ["WrittenLeaves"]


class WrittenLeaves:
    """Leaf hashes of audit records this process signed and is producing, until read back."""

    __slots__ = ("_capacity", "_leaves")

    def __init__(self, capacity: int = 65_536) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._leaves: collections.OrderedDict[bytes, int] = collections.OrderedDict()

    def add(self, leaf: bytes) -> None:
        """Note one record about to be produced (a repeat of the same bytes counts twice)."""
        self._leaves[leaf] = self._leaves.get(leaf, 0) + 1
        self._leaves.move_to_end(leaf)
        while len(self._leaves) > self._capacity:
            self._leaves.popitem(last=False)

    def take(self, leaf: bytes) -> bool:
        """Whether this process wrote a record with this leaf hash; it is claimed once."""
        count = self._leaves.get(leaf)
        if count is None:
            return False
        if count == 1:
            del self._leaves[leaf]
        else:
            self._leaves[leaf] = count - 1
        return True

    def __len__(self) -> int:
        return len(self._leaves)
