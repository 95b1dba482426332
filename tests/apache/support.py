"""Helpers shared by the Apache Kafka suites."""

from __future__ import annotations

import contextlib
import gc
import warnings
from collections.abc import Iterator

import pytest

from broker.errors import TransportError

__all__ = ["refused"]


@contextlib.contextmanager
def refused(reason: str) -> Iterator[None]:
    """The block must fail with a TransportError matching ``reason``. aiokafka leaves the
    socket of a refused connection for the garbage collector; it is collected here, so its
    ResourceWarning does not surface in whichever test runs next."""
    with pytest.raises(TransportError, match=reason):
        yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
