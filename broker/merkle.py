"""The RFC 6962 Merkle tree: hashes, tree heads, inclusion and consistency proofs.

Pure: no I/O, no clock. Hashes and proofs match RFC 6962 section 2.1 and RFC 9162 section 2.1
byte for byte, so any Certificate Transparency style verifier can check our proofs and we can
check theirs.

- a leaf hash is ``SHA-256(0x00 || data)``, an interior node ``SHA-256(0x01 || left || right)``,
  the empty tree's head ``SHA-256("")``;
- the head of ``n > 1`` leaves splits at ``k``, the largest power of two smaller than ``n``;
- :class:`MerkleLog` appends in O(log n) memory (its right edge), never holding the leaves;
- proofs are built from any ``Sequence[bytes]`` of leaf hashes (a list, or a store that
  implements ``__len__`` and ``__getitem__``) and verified with nothing but hashes.

Errors: a proof or root that does not verify is an :class:`~broker.errors.AuditError`; a proof
requested for an index or size the store cannot have is a :class:`~broker.errors.UsageError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from broker import errors

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleLog",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proofs",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: The head of the empty tree: SHA-256 of the empty string (RFC 6962 section 2.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()
# Tree sizes are uint64 on the wire of every CT-style log; larger numbers are malformed input.
_MAX_SIZE = (1 << 64) - 1
# A proof in a uint64-sized tree has at most 64 elements (plus one prepended root); anything
# longer is garbage, refused before any hashing.
_MAX_PROOF = 64

# A hasher already fed the one-byte prefix: copying it skips re-hashing the prefix and avoids
# concatenating a copy of every record.
_LEAF_PREFIX = hashlib.sha256(b"\x00")
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf (a log entry)."""
    hasher = _LEAF_PREFIX.copy()
    hasher.update(data)
    return hasher.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree head (MTH) of ``leaf_hashes``, all of them.

    Computed level by level, an unpaired last node promoted unchanged: this equals the
    recursive split of RFC 6962 and costs one list pass per level.
    """
    level = list(leaf_hashes)
    for item in level:
        # Inline rather than a helper call per leaf: this loop runs once per log entry.
        if type(item) is not bytes or len(item) != HASH_SIZE:
            raise errors.AuditError(f"leaf hash must be {HASH_SIZE} bytes")
    if not level:
        return EMPTY_ROOT
    sha256 = _sha256
    while len(level) > 1:
        paired = [
            sha256(b"\x01" + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class MerkleLog:
    """An append-only accumulator: the tree head at any size from O(log n) state.

    It keeps only the right edge of the tree (the heads of the perfect subtrees the leaves so
    far decompose into, largest first), so a log of millions of entries costs a few dozen
    hashes of memory. Proofs need the leaf hashes themselves: see :func:`inclusion_proof`.
    """

    __slots__ = ("_edge", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._edge: list[bytes] = []

    @classmethod
    def resume(cls, *, size: int, right_edge: Sequence[bytes]) -> MerkleLog:
        """Continue a log from the :attr:`right_edge` it had at ``size`` (saved earlier)."""
        _check_size(size, "size")
        if len(right_edge) != size.bit_count():
            raise errors.AuditError(
                f"a log of size {size} has {size.bit_count()} right-edge hashes, "
                f"got {len(right_edge)}"
            )
        for item in right_edge:
            _check_hash(item, "right-edge hash")
        log = cls()
        log._size = size
        log._edge = list(right_edge)
        return log

    @property
    def size(self) -> int:
        """How many leaves have been appended."""
        return self._size

    @property
    def right_edge(self) -> tuple[bytes, ...]:
        """The perfect-subtree heads covering all leaves, largest first: the resumable state."""
        return tuple(self._edge)

    def append(self, leaf: bytes) -> int:
        """Add one leaf by its leaf hash (see :func:`leaf_hash`); returns its index."""
        _check_hash(leaf, "leaf hash")
        index = self._size
        merged = leaf
        # Each trailing one bit of the old size is a perfect subtree of the same height as the
        # one being carried: merge them, exactly like binary addition.
        carry = index
        while carry & 1:
            merged = node_hash(self._edge.pop(), merged)
            carry >>= 1
        self._edge.append(merged)
        self._size = index + 1
        return index

    def append_data(self, data: bytes) -> int:
        """Add one leaf by its data (hashed with :func:`leaf_hash`); returns its index."""
        return self.append(leaf_hash(data))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append every leaf hash in order."""
        for item in leaf_hashes:
            self.append(item)

    def root(self) -> bytes:
        """The tree head of all leaves appended so far."""
        if not self._edge:
            return EMPTY_ROOT
        head = self._edge[-1]
        for subtree in reversed(self._edge[:-1]):
            head = node_hash(subtree, head)
        return head


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> tuple[bytes, ...]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaf hashes.

    RFC 6962 section 2.1.1: the sibling hashes from the leaf up to the root.
    """
    _check_size(size, "size")
    if size > len(leaf_hashes):
        raise errors.UsageError(f"the store holds {len(leaf_hashes)} leaves, not {size}")
    if not 0 <= index < size:
        raise errors.UsageError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    # Walk down from the root; each split contributes the head of the half we do not enter.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_subtree_hash(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree_hash(leaf_hashes, lo, lo + k))
            lo += k
    path.reverse()
    return tuple(path)


def inclusion_proofs(leaf_hashes: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """The head of the tree of ``leaf_hashes`` and the audit path of every leaf, in order:
    what :func:`inclusion_proof` gives for each index, with each subtree hashed once
    (O(n log n) in all, for a batch signed under one head)."""
    size = len(leaf_hashes)
    if size == 0:
        raise errors.UsageError("a tree of no leaves has no inclusion proofs")
    memo: dict[tuple[int, int], bytes] = {}

    def subtree(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaf_hashes[lo]
        found = memo.get((lo, hi))
        if found is None:
            k = _split(hi - lo)
            found = memo[(lo, hi)] = node_hash(subtree(lo, lo + k), subtree(lo + k, hi))
        return found

    proofs = []
    for index in range(size):
        path: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                path.append(subtree(lo + k, hi))
                hi = lo + k
            else:
                path.append(subtree(lo, lo + k))
                lo += k
        path.reverse()
        proofs.append(tuple(path))
    return subtree(0, size), proofs


def consistency_proof(
    leaf_hashes: Sequence[bytes], old_size: int, new_size: int
) -> tuple[bytes, ...]:
    """The proof that the tree of ``new_size`` leaves extends the tree of ``old_size`` leaves.

    RFC 6962 section 2.1.2 (``PROOF(m, D[n])``); empty when ``old_size`` is 0 or equals
    ``new_size``, since nothing needs proving then.
    """
    _check_size(old_size, "old size")
    _check_size(new_size, "new size")
    if new_size > len(leaf_hashes):
        raise errors.UsageError(f"the store holds {len(leaf_hashes)} leaves, not {new_size}")
    if old_size > new_size:
        raise errors.UsageError(f"old size {old_size} is larger than new size {new_size}")
    if old_size in (0, new_size):
        return ()
    path: list[bytes] = []
    lo, hi, m = 0, new_size, old_size
    # "whole" is SUBPROOF's b: true while the old tree's head is also a head of this subtree,
    # in which case the verifier knows it already and it is left out.
    whole = True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            path.append(_subtree_hash(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree_hash(leaf_hashes, lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(_subtree_hash(leaf_hashes, lo, hi))
    path.reverse()
    return tuple(path)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Return if ``proof`` shows leaf ``index`` of a ``size``-leaf tree with head ``root`` has
    hash ``leaf_hash``; otherwise raise AuditError. RFC 9162 section 2.1.3.2."""
    _check_hash(root, "root")
    if root_from_inclusion(leaf_hash, index, size, proof) != root:
        raise errors.AuditError(f"inclusion proof for leaf {index} does not match the root")


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The head of the ``size``-leaf tree in which ``proof`` puts ``leaf_hash`` at ``index``
    (RFC 9162 section 2.1.3.2 without the final comparison: the caller checks the head, for
    example against a signature over it). AuditError for a proof of the wrong length."""
    _check_size(size, "tree size")
    _check_hash(leaf_hash, "leaf hash")
    _check_proof(proof)
    if not 0 <= index < size:
        raise errors.AuditError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn = index, size - 1
    result = leaf_hash
    for sibling in proof:
        if sn == 0:
            raise errors.AuditError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            # Skip the levels where this node is the unpaired right edge: nothing to hash there.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise errors.AuditError("inclusion proof is shorter than the tree is deep")
    return result


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Return if ``proof`` shows the ``new_size`` tree with head ``new_root`` extends the
    ``old_size`` tree with head ``old_root``; otherwise raise AuditError. RFC 9162 section
    2.1.4.2, with the trivial cases made strict: equal sizes need equal roots and an empty
    proof, and the empty tree's head must be :data:`EMPTY_ROOT`."""
    _check_size(old_size, "old size")
    _check_size(new_size, "new size")
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    _check_proof(proof)
    if old_size > new_size:
        raise errors.AuditError(f"the log shrank from {old_size} to {new_size} leaves")
    if old_size == 0 or old_size == new_size:
        if proof:
            raise errors.AuditError("a consistency proof for these sizes must be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise errors.AuditError("the root of an empty log is not the empty-tree hash")
        if old_size == new_size and old_root != new_root:
            raise errors.AuditError(f"two different roots for the same size {old_size}: a fork")
        return
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one: its head is the proof's first node.
        path.insert(0, old_root)
    if not path:
        raise errors.AuditError("consistency proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_result = new_result = path[0]
    for node in path[1:]:
        if sn == 0:
            raise errors.AuditError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            old_result = node_hash(node, old_result)
            new_result = node_hash(node, new_result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            new_result = node_hash(new_result, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise errors.AuditError("consistency proof is shorter than the tree is deep")
    if old_result != old_root:
        raise errors.AuditError(f"consistency proof does not match the old root (size {old_size})")
    if new_result != new_root:
        raise errors.AuditError(f"consistency proof does not match the new root (size {new_size})")


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_hash(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH of ``leaf_hashes[lo:hi]``, read one index at a time so stores need no slicing."""
    return root_hash([leaf_hashes[i] for i in range(lo, hi)])


def _check_size(size: object, what: str) -> None:
    if type(size) is not int or not 0 <= size <= _MAX_SIZE:
        raise errors.AuditError(f"{what} must be an integer from 0 to 2**64-1, got {size!r}")


def _check_hash(value: object, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise errors.AuditError(f"{what} must be {HASH_SIZE} bytes")


def _check_proof(proof: Sequence[bytes]) -> None:
    if len(proof) > _MAX_PROOF:
        raise errors.AuditError(f"a proof has at most {_MAX_PROOF} hashes, got {len(proof)}")
    for node in proof:
        _check_hash(node, "proof hash")
