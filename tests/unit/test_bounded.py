"""read_bounded: a regular file up to its limit, and a clear error for anything else, at once."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from broker import errors
from broker.bounded import read_bounded


def test_a_regular_file_is_read_up_to_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "accord.yaml"
    path.write_bytes(b"x" * 10)
    assert read_bounded(path, limit=10, what="the accord") == b"x" * 10
    with pytest.raises(errors.UsageError, match="larger than 9 bytes"):
        read_bounded(path, limit=9, what="the accord")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO nobody writes to would block an open() or read() for ever, freezing a daemon's
    reload loop: it is refused as not a regular file."""
    fifo = tmp_path / "gb-rs.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_bounded(fifo, limit=1024, what="the accord")
        except errors.BrokerError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)  # not a timing check: only a bound on a hang
    if reader.is_alive():
        # unblock the reader so the test run can end, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("read_bounded blocked on a FIFO")
    assert len(outcome) == 1
    assert "not a regular file" in str(outcome[0])


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.PolicyError, match="not a regular file"):
        read_bounded(tmp_path, limit=1024, what="the accord", unreadable=errors.PolicyError)
