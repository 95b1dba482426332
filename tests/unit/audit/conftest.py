"""Fixtures for the audit tests: real signing keys for the log and its witnesses."""

from __future__ import annotations

import pytest

from broker.crypto import SigningKey, Suite


@pytest.fixture(scope="session")
def gateway_key() -> SigningKey:
    """The log's signing key."""
    return SigningKey.generate(Suite.CLASSIC)


@pytest.fixture(scope="session")
def witness_keys() -> tuple[SigningKey, SigningKey, SigningKey]:
    """Three partners acting as witnesses."""
    return (
        SigningKey.generate(Suite.CLASSIC),
        SigningKey.generate(Suite.CLASSIC),
        SigningKey.generate(Suite.CLASSIC),
    )
