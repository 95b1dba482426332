"""Helpers shared by the Apache Kafka suites."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from broker.errors import TransportError

__all__ = ["refused"]


@contextlib.contextmanager
def refused(reason: str) -> Iterator[None]:
    """The block must fail with a TransportError matching ``reason`` (the socket aiokafka
    leaves behind a refused connection is no error on Apache Kafka: tests/conftest.py)."""
    with pytest.raises(TransportError, match=reason):
        yield
