"""The inbox store's tests use the project's real AEAD sealer."""

from __future__ import annotations

import pytest

from broker.crypto import AeadSealer


@pytest.fixture
def sealer() -> AeadSealer:
    return AeadSealer()
