"""Regressions found by the fuzz campaigns (docs/FUZZING.md): hostile accord YAML is refused
with PolicyError on the event stream, before the quadratic scanner or the recursive composer
meets deep nesting, and integers too wide to serialise are refused."""

from __future__ import annotations

import pathlib

import pytest

from broker import errors
from broker.policy import lint_accord, parse_accord

GB_RS = (pathlib.Path(__file__).resolve().parents[3] / "policies" / "gb-rs.yaml").read_bytes()


@pytest.mark.parametrize(
    ("name", "tail", "why"),
    [
        ("unclosed flow nesting", b"x: " + b"[" * 200_000, "nested deeper than 32 levels"),
        ("closed flow nesting", b"x: " + b"[" * 40 + b"]" * 40, "nested deeper"),
        ("flow mappings", b"x: " + b"{a: " * 5000, "nested deeper"),
        ("hex integer of 5000 digits", b"x: 0x" + b"f" * 5000, "out of range"),
    ],
)
def test_hostile_yaml_is_a_policy_error(name: str, tail: bytes, why: str) -> None:
    """parse_accord() refuses it with PolicyError; lint_accord() reports it as one problem."""
    data = GB_RS + b"\n" + tail + b"\n"
    with pytest.raises(errors.PolicyError, match=why):
        parse_accord(data, source="hostile.yaml")
    (problem,) = lint_accord(data, source="hostile.yaml")
    assert why in str(problem)
