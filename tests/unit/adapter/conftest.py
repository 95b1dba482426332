"""Fixtures: the UK's and Serbia's adapters on temporary stores, and a clock that stands still."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from broker.adapter import Adapter
from broker.clock import FixedClock

from .world import GB, NOW, RS, make_adapter


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def uk(tmp_path: pathlib.Path, clock: FixedClock) -> Iterator[Adapter]:
    adapter = make_adapter(GB, tmp_path / "gb", clock=clock, spool=True)
    yield adapter
    adapter.journal.close()
    adapter.inbox.close()


@pytest.fixture
def serbia(tmp_path: pathlib.Path, clock: FixedClock) -> Iterator[Adapter]:
    adapter = make_adapter(RS, tmp_path / "rs", clock=clock)
    yield adapter
    adapter.journal.close()
    adapter.inbox.close()
