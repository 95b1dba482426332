"""Known answers: our hashes, heads and proofs equal the RFC 6962 reference tree's, and every
corruption of a known-good proof (the probe families CT verifiers are tested with) is refused."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from broker import errors, merkle

from .audit_vectors import REFERENCE, ConsistencyCase, InclusionCase

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_hasher_matches_the_reference_answers() -> None:
    """Leaf and node hashes carry the 0x00 / 0x01 prefixes; the empty tree is SHA-256("")."""
    kat = REFERENCE.hasher
    assert merkle.EMPTY_ROOT.hex() == kat["empty_root"]
    assert merkle.leaf_hash(b"").hex() == kat["empty_leaf"]["hash"]
    assert merkle.leaf_hash(kat["leaf"]["data_ascii"].encode()).hex() == kat["leaf"]["hash"]
    node = kat["node"]
    got = merkle.node_hash(node["left_ascii"].encode(), node["right_ascii"].encode())
    assert got.hex() == node["hash"]


def test_leaf_hash_differs_from_the_empty_tree_and_from_a_node() -> None:
    """Domain separation: no leaf can pose as an interior node or as the empty tree."""
    left, right = merkle.leaf_hash(b"Hello"), merkle.leaf_hash(b"World")
    assert merkle.leaf_hash(b"") != merkle.EMPTY_ROOT
    assert merkle.node_hash(left, right) != merkle.leaf_hash(left + right)
    assert merkle.node_hash(left, right) != merkle.node_hash(right, left)


def test_level_zero_node_hashes_are_the_leaf_hashes() -> None:
    """The reference tree's bottom level is our leaf hashing of its inputs."""
    assert REFERENCE.leaf_hashes == REFERENCE.node_hashes[0]


@pytest.mark.parametrize("size", range(9))
def test_root_of_every_prefix_matches(size: int) -> None:
    """The head of the first n leaves, for n = 0..8, both in one pass and appended one by one."""
    hashes = REFERENCE.leaf_hashes[:size]
    assert merkle.root_hash(hashes) == REFERENCE.roots[size]
    log = merkle.MerkleLog()
    log.extend(hashes)
    assert log.size == size
    assert log.root() == REFERENCE.roots[size]


@pytest.mark.parametrize("size", range(9))
def test_right_edge_is_the_compact_range_of_the_reference(size: int) -> None:
    """The accumulator's state is exactly the perfect-subtree heads, largest first."""
    log = merkle.MerkleLog()
    log.extend(REFERENCE.leaf_hashes[:size])
    assert log.right_edge == REFERENCE.right_edges[size]


@pytest.mark.parametrize("size", range(9))
def test_a_resumed_log_continues_where_it_stopped(size: int) -> None:
    """A log rebuilt from its saved right edge reaches the same heads as one never stopped."""
    log = merkle.MerkleLog.resume(size=size, right_edge=REFERENCE.right_edges[size])
    assert log.root() == REFERENCE.roots[size]
    log.extend(REFERENCE.leaf_hashes[size:])
    assert log.root() == REFERENCE.roots[8]


def _inclusion_id(case: InclusionCase) -> str:
    return f"leaf{case.index}-of-{case.size}"


@pytest.mark.parametrize("case", REFERENCE.inclusion, ids=_inclusion_id)
def test_inclusion_proof_matches_and_verifies(case: InclusionCase) -> None:
    """Our audit path is the reference one, and it verifies against the reference root."""
    proof = merkle.inclusion_proof(REFERENCE.leaf_hashes, case.index, case.size)
    assert proof == case.proof
    merkle.verify_inclusion(
        REFERENCE.leaf_hashes[case.index], case.index, case.size, proof, REFERENCE.roots[case.size]
    )


def _consistency_id(case: ConsistencyCase) -> str:
    return f"{case.old_size}-to-{case.new_size}"


@pytest.mark.parametrize("case", REFERENCE.consistency, ids=_consistency_id)
def test_consistency_proof_matches_and_verifies(case: ConsistencyCase) -> None:
    """Our consistency proof is the reference one, and it verifies between reference roots."""
    proof = merkle.consistency_proof(REFERENCE.leaf_hashes, case.old_size, case.new_size)
    assert proof == case.proof
    merkle.verify_consistency(
        case.old_size,
        case.new_size,
        REFERENCE.roots[case.old_size],
        REFERENCE.roots[case.new_size],
        proof,
    )


def _flip(proof: Sequence[bytes], i: int, bit: int) -> list[bytes]:
    changed = list(proof)
    changed[i] = bytes([changed[i][0] ^ bit]) + changed[i][1:]
    return changed


def _inclusion_probes(case: InclusionCase) -> dict[str, Callable[[], None]]:
    """Each probe is one corruption of a known-good inclusion check."""
    i, n, proof = case.index, case.size, list(case.proof)
    leaf, root = REFERENCE.leaf_hashes[i], REFERENCE.roots[n]

    def check(
        index: int = i,
        size: int = n,
        path: Sequence[bytes] = proof,
        leaf_: bytes = leaf,
        root_: bytes = root,
    ) -> Callable[[], None]:
        return lambda: merkle.verify_inclusion(leaf_, index, size, path, root_)

    probes = {
        "index - 1": check(index=i - 1),
        "index + 1": check(index=i + 1),
        "index ^ 2": check(index=i ^ 2),
        "size * 2": check(size=n * 2),
        "size / 2": check(size=n // 2),
        "wrong leaf": check(leaf_=SOME_HASH),
        "empty root": check(root_=merkle.EMPTY_ROOT),
        "random root": check(root_=SOME_HASH),
        "trailing garbage": check(path=[*proof, b""]),
        "trailing root": check(path=[*proof, root]),
        "preceding garbage": check(path=[b"", *proof]),
        "preceding root": check(path=[root, *proof]),
    }
    for k in range(len(proof)):
        probes[f"proof[{k}] bit flipped"] = check(path=_flip(proof, k, 8))
    if proof:
        probes["component removed"] = check(path=proof[:-1])
    if len(proof) > 1:
        probes["component inserted"] = check(path=[proof[0], SOME_HASH, *proof[1:]])
    return probes


INCLUSION_PROBES = [
    pytest.param(probe, id=f"{_inclusion_id(case)}: {name}")
    for case in REFERENCE.inclusion
    for name, probe in _inclusion_probes(case).items()
]


@pytest.mark.parametrize("probe", INCLUSION_PROBES)
def test_corrupted_inclusion_check_is_refused(probe: Callable[[], None]) -> None:
    """Wrong position, size, leaf or root, padded or damaged proofs: all fail with AuditError."""
    with pytest.raises(errors.AuditError):
        probe()


def _consistency_probes(case: ConsistencyCase) -> dict[str, Callable[[], None]]:
    """Each probe is one corruption of a known-good consistency check."""
    m, n, proof = case.old_size, case.new_size, list(case.proof)
    r1, r2 = REFERENCE.roots[m], REFERENCE.roots[n]

    def check(
        old: int = m,
        new: int = n,
        root1: bytes = r1,
        root2: bytes = r2,
        path: Sequence[bytes] = proof,
    ) -> Callable[[], None]:
        return lambda: merkle.verify_consistency(old, new, root1, root2, path)

    probes = {
        "old size - 1": check(old=m - 1),
        "old size + 1": check(old=m + 1),
        "old size ^ 2": check(old=m ^ 2),
        "new size * 2": check(new=n * 2),
        "new size / 2": check(new=n // 2),
        "wrong old root": check(root1=SOME_HASH),
        "wrong new root": check(root2=SOME_HASH),
        "swapped roots": check(root1=r2, root2=r1),
        "empty proof": check(path=[]),
        "trailing garbage": check(path=[*proof, b""]),
        "trailing old root": check(path=[*proof, r1]),
        "trailing new root": check(path=[*proof, r2]),
        "preceding garbage": check(path=[b"", *proof]),
        "preceding old root": check(path=[r1, *proof]),
        "preceding new root": check(path=[r2, *proof]),
        "preceding proof[0]": check(path=[proof[0], *proof]),
        "truncated": check(path=proof[:-1]),
        "time travel": check(old=n, new=m, root1=r2, root2=r1),
    }
    for k in range(len(proof)):
        probes[f"proof[{k}] bit flipped"] = check(path=_flip(proof, k, 16))
    return probes


CONSISTENCY_PROBES = [
    pytest.param(probe, id=f"{_consistency_id(case)}: {name}")
    for case in REFERENCE.consistency
    if case.proof  # the trivial 1-to-1 case has nothing to corrupt
    for name, probe in _consistency_probes(case).items()
]


@pytest.mark.parametrize("probe", CONSISTENCY_PROBES)
def test_corrupted_consistency_check_is_refused(probe: Callable[[], None]) -> None:
    """Wrong sizes or roots, padded, truncated or damaged proofs: all fail with AuditError."""
    with pytest.raises(errors.AuditError):
        probe()


TRIVIAL_CONSISTENCY = {
    "0 to 0, empty roots": (0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [], None),
    "0 to 1": (0, 1, merkle.EMPTY_ROOT, REFERENCE.roots[1], [], None),
    "1 to 1, same root": (1, 1, REFERENCE.roots[1], REFERENCE.roots[1], [], None),
    "same size, other root: fork": (1, 1, REFERENCE.roots[1], SOME_HASH, [], errors.AuditError),
    "0 to 1, old root not empty": (0, 1, SOME_HASH, REFERENCE.roots[1], [], errors.AuditError),
    "equal sizes, proof given": (
        1,
        1,
        REFERENCE.roots[1],
        REFERENCE.roots[1],
        [merkle.EMPTY_ROOT],
        errors.AuditError,
    ),
    "1 to 0: shrank": (1, 0, REFERENCE.roots[1], merkle.EMPTY_ROOT, [], errors.AuditError),
    "1 to 2, empty proof": (1, 2, REFERENCE.roots[1], REFERENCE.roots[2], [], errors.AuditError),
}


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof", "error"),
    TRIVIAL_CONSISTENCY.values(),
    ids=TRIVIAL_CONSISTENCY.keys(),
)
def test_trivial_consistency_cases(
    old: int,
    new: int,
    old_root: bytes,
    new_root: bytes,
    proof: list[bytes],
    error: type[Exception] | None,
) -> None:
    """Sizes needing no proof pass only with an empty proof and the right roots."""
    if error is None:
        merkle.verify_consistency(old, new, old_root, new_root, proof)
    else:
        with pytest.raises(error):
            merkle.verify_consistency(old, new, old_root, new_root, proof)
