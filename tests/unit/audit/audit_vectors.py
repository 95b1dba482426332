"""The RFC 6962 reference vectors (tests/vectors/audit/rfc6962.json), decoded once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker import merkle

VECTORS = Path(__file__).parents[2] / "vectors" / "audit" / "rfc6962.json"


@dataclass(frozen=True)
class InclusionCase:
    index: int
    size: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class ConsistencyCase:
    old_size: int
    new_size: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class ReferenceTree:
    """The 8-leaf reference tree of the vectors file, decoded from hex."""

    hasher: dict[str, Any]
    leaves: tuple[bytes, ...]
    leaf_hashes: tuple[bytes, ...]
    roots: tuple[bytes, ...]  # indexed by tree size, 0..8
    node_hashes: tuple[tuple[bytes, ...], ...]  # [level][index]
    right_edges: tuple[tuple[bytes, ...], ...]  # indexed by tree size
    inclusion: tuple[InclusionCase, ...]
    consistency: tuple[ConsistencyCase, ...]


def _hexes(values: list[str]) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(h) for h in values)


def _load() -> ReferenceTree:
    raw: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    leaves = _hexes(raw["leaves"])
    return ReferenceTree(
        hasher=raw["hasher"],
        leaves=leaves,
        leaf_hashes=tuple(merkle.leaf_hash(leaf) for leaf in leaves),
        roots=_hexes(raw["roots_by_size"]),
        node_hashes=tuple(_hexes(level) for level in raw["node_hashes_by_level"]),
        right_edges=tuple(_hexes(edge) for edge in raw["right_edge_by_size"]),
        inclusion=tuple(
            InclusionCase(c["index"], c["size"], _hexes(c["proof"]))
            for c in raw["inclusion_proofs"]
        ),
        consistency=tuple(
            ConsistencyCase(c["old_size"], c["new_size"], _hexes(c["proof"]))
            for c in raw["consistency_proofs"]
        ),
    )


REFERENCE = _load()
