"""Opening a store another process is creating at the same moment: a daemon starting and an
operator's command beside it (``broker officers list`` while the adapter first starts)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from broker.store import _sqlite

SCHEMA = ("CREATE TABLE things (x INTEGER)",)


class _StaleFirstRead(sqlite3.Connection):
    """A connection whose first read of the version is from before another process made the
    store: what a process that read it just before the other took the lock sees."""

    stale = True

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "PRAGMA user_version" and _StaleFirstRead.stale:
            _StaleFirstRead.stale = False
            return super().execute("SELECT 0")
        return super().execute(sql, *args)


def test_a_store_made_by_another_process_meanwhile_is_not_made_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.sqlite"
    _sqlite.open_database(path, schema=SCHEMA, version=1, kind="test store").close()
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return real_connect(*args, factory=_StaleFirstRead, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    conn = _sqlite.open_database(path, schema=SCHEMA, version=1, kind="test store")
    try:
        assert not _StaleFirstRead.stale  # the stale read did happen
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (1,)
    finally:
        conn.close()
