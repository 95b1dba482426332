"""Fixtures: the UK's and Serbia's adapters on temporary stores, a clock that stands still,
and a provisioned federation's files for the commands that read them."""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Iterator

import pytest
import structlog

from broker.adapter import Adapter
from broker.clock import FixedClock
from broker.demo.federation import Federation, current_accords, provision

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


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    """A provisioned federation's real files (keys, signed registry, co-signed accords
    re-dated around now), one per test module; no broker is ever contacted."""
    root = tmp_path_factory.mktemp("federation")
    accords = current_accords(root / "accords-source", now=dt.datetime.now(dt.UTC))
    return provision(root / "federation", bootstrap="127.0.0.1:9", accords=accords)


@pytest.fixture
def logging_put_back() -> Iterator[None]:
    """The CLI configures logging onto the captured stderr; later tests must not write to it."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
