"""Properties over random trees: heads agree with the RFC's recursive definition, every proof we
build verifies, any flipped byte is refused, and bad input is an error of ours, never a crash."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import errors, merkle

MAX_LEAVES = 80


def reference_mth(hashes: Sequence[bytes]) -> bytes:
    """MTH written exactly as RFC 6962 section 2.1 states it, recursion and all."""
    if not hashes:
        return merkle.EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return merkle.node_hash(reference_mth(hashes[:k]), reference_mth(hashes[k:]))


def leaf_hashes(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    size = draw(st.integers(min_value=1, max_value=MAX_LEAVES))
    index = draw(st.integers(min_value=0, max_value=size - 1))
    return leaf_hashes(size), index, size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    new = draw(st.integers(min_value=0, max_value=MAX_LEAVES))
    old = draw(st.integers(min_value=0, max_value=new))
    return leaf_hashes(new), old, new


@given(st.lists(st.binary(max_size=40), max_size=MAX_LEAVES))
def test_all_three_ways_to_a_head_agree(leaves: list[bytes]) -> None:
    """The one-pass head, the accumulator's head and the RFC recursion are the same hash."""
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    log = merkle.MerkleLog()
    for leaf in leaves:
        log.append_data(leaf)
    assert merkle.root_hash(hashes) == log.root() == reference_mth(hashes)
    assert len(log.right_edge) == len(leaves).bit_count()


@given(tree_and_index())
def test_every_inclusion_proof_verifies(case: tuple[list[bytes], int, int]) -> None:
    """For any size and index, the proof we build checks out against the head."""
    hashes, index, size = case
    proof = merkle.inclusion_proof(hashes, index, size)
    merkle.verify_inclusion(hashes[index], index, size, proof, merkle.root_hash(hashes))


@given(two_sizes())
def test_every_consistency_proof_verifies(case: tuple[list[bytes], int, int]) -> None:
    """For any old size up to the new one, the proof we build links the two heads."""
    hashes, old, new = case
    proof = merkle.consistency_proof(hashes, old, new)
    merkle.verify_consistency(
        old, new, merkle.root_hash(hashes[:old]), merkle.root_hash(hashes), proof
    )


@given(tree_and_index(), st.data())
def test_a_flipped_byte_in_an_inclusion_proof_or_root_fails(
    case: tuple[list[bytes], int, int], data: st.DataObject
) -> None:
    """Damaging any one byte of any proof element, or of the root, is detected."""
    hashes, index, size = case
    proof = list(merkle.inclusion_proof(hashes, index, size))
    root = merkle.root_hash(hashes)
    targets = len(proof) + 1
    target = data.draw(st.integers(min_value=0, max_value=targets - 1), label="element")
    position = data.draw(st.integers(min_value=0, max_value=merkle.HASH_SIZE - 1), label="byte")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="mask")
    if target == len(proof):
        root = _flip(root, position, mask)
    else:
        proof[target] = _flip(proof[target], position, mask)
    with pytest.raises(errors.AuditError):
        merkle.verify_inclusion(hashes[index], index, size, proof, root)


@given(two_sizes(), st.data())
def test_a_flipped_byte_in_a_consistency_proof_or_root_fails(
    case: tuple[list[bytes], int, int], data: st.DataObject
) -> None:
    """Damaging any byte of any proof element, or of either root, is detected. (The one
    exception is by design: every tree extends the empty tree, so from size 0 the new root is
    not constrained, only the old one must be the empty-tree hash.)"""
    hashes, old, new = case
    proof = list(merkle.consistency_proof(hashes, old, new))
    roots = [merkle.root_hash(hashes[:old]), merkle.root_hash(hashes)]
    last = len(proof) + (0 if old == 0 else 1)
    target = data.draw(st.integers(min_value=0, max_value=last), label="element")
    position = data.draw(st.integers(min_value=0, max_value=merkle.HASH_SIZE - 1), label="byte")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="mask")
    if target < len(proof):
        proof[target] = _flip(proof[target], position, mask)
    else:
        which = target - len(proof)
        roots[which] = _flip(roots[which], position, mask)
    with pytest.raises(errors.AuditError):
        merkle.verify_consistency(old, new, roots[0], roots[1], proof)


@settings(max_examples=50)
@given(
    st.integers(min_value=-3, max_value=2**65),
    st.integers(min_value=-3, max_value=2**65),
    st.lists(st.binary(min_size=0, max_size=40), max_size=70),
    st.binary(max_size=40),
    st.binary(max_size=40),
)
def test_verifiers_never_crash_on_arbitrary_input(
    a: int, b: int, proof: list[bytes], first: bytes, second: bytes
) -> None:
    """Whatever the numbers and bytes, verification returns or raises AuditError: no other
    exception ever escapes to the caller."""
    with contextlib.suppress(errors.AuditError):
        merkle.verify_inclusion(first, a, b, proof, second)
    with contextlib.suppress(errors.AuditError):
        merkle.verify_consistency(a, b, first, second, proof)


BAD_REQUESTS = {
    "index past the size": (lambda: merkle.inclusion_proof(leaf_hashes(4), 4, 4)),
    "negative index": (lambda: merkle.inclusion_proof(leaf_hashes(4), -1, 4)),
    "size past the store": (lambda: merkle.inclusion_proof(leaf_hashes(4), 0, 5)),
    "consistency past the store": (lambda: merkle.consistency_proof(leaf_hashes(4), 2, 5)),
    "consistency backwards": (lambda: merkle.consistency_proof(leaf_hashes(4), 3, 2)),
}


@pytest.mark.parametrize("request_", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_impossible_proof_requests_are_usage_errors(request_: object) -> None:
    """Asking for a proof the store cannot give is the caller's mistake: UsageError."""
    assert callable(request_)
    with pytest.raises(errors.UsageError):
        request_()


BAD_STATE = {
    "non-integer size": (lambda: merkle.verify_inclusion(bytes(32), 0, 1.0, [], bytes(32))),  # type: ignore[arg-type]
    "size past uint64": (lambda: merkle.verify_inclusion(bytes(32), 0, 2**64, [], bytes(32))),
    "short leaf hash": (lambda: merkle.verify_inclusion(bytes(31), 0, 1, [], bytes(32))),
    "text root": (lambda: merkle.verify_inclusion(bytes(32), 0, 1, [], "00" * 32)),  # type: ignore[arg-type]
    "proof of 65 hashes": (
        lambda: merkle.verify_inclusion(bytes(32), 0, 2**63, [bytes(32)] * 65, bytes(32))
    ),
    "appending a short hash": (lambda: merkle.MerkleLog().append(b"short")),
    "resuming with a wrong edge": (lambda: merkle.MerkleLog.resume(size=3, right_edge=[bytes(32)])),
    "a store holding a short hash": (lambda: merkle.inclusion_proof([bytes(32), b"x"], 0, 2)),
}


@pytest.mark.parametrize("call", BAD_STATE.values(), ids=BAD_STATE.keys())
def test_malformed_hashes_and_sizes_are_audit_errors(call: object) -> None:
    """Wrong types, lengths and ranges are refused with AuditError before any hashing."""
    assert callable(call)
    with pytest.raises(errors.AuditError):
        call()


def _flip(value: bytes, position: int, mask: int) -> bytes:
    return value[:position] + bytes([value[position] ^ mask]) + value[position + 1 :]
