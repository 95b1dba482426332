"""Shared fixtures for the partner-registry tests."""

from __future__ import annotations

import pytest

from broker.keys.testing import RegistryFixture, build_registry

from .keys_support import NOW


@pytest.fixture
def reg() -> RegistryFixture:
    """Six partners, three roots with threshold two, one gateway and one witness key."""
    return build_registry(now=NOW)
