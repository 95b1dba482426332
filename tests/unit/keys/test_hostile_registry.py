"""Regression found by the fuzz campaigns (docs/FUZZING.md): deep nesting in a registry
document is a RegistryError, not a RecursionError."""

from __future__ import annotations

import datetime as dt

import pytest

from broker import errors
from broker.keys import verify_registry

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("depth", [200, 600])
def test_nesting_near_the_recursion_limit_is_a_registry_error(depth: int) -> None:
    """json.loads accepts this nesting; the depth check must refuse it without recursing."""
    data = b'{"signed":' + b"[" * depth + b"]" * depth + b',"signatures":[]}'
    with pytest.raises(errors.RegistryError, match="nests deeper"):
        verify_registry(data, trusted=None, now=NOW)
