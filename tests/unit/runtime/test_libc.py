"""broker.runtime.libc: the filesystem flush and the heap trim, and when the trim happens."""

from __future__ import annotations

import os
from pathlib import Path

from broker.runtime import HeapTrimmer, flush_filesystem, trim_heap


def test_flush_filesystem_flushes_or_says_it_cannot(tmp_path: Path) -> None:
    """On glibc one syncfs flushes the directory's filesystem; elsewhere it returns False
    and the caller flushes each file itself."""
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        assert flush_filesystem(fd) in (True, False)
    finally:
        os.close(fd)


def test_trim_heap_never_fails() -> None:
    """The trim is an optimisation: it reports whether it ran, and never raises."""
    assert trim_heap() in (True, False)


def test_the_heap_is_trimmed_once_a_backlog_has_drained() -> None:
    """Never while full batches keep coming, never for a trickle; once, at the first batch
    that was not full after enough records."""
    trimmer = HeapTrimmer(after_records=1000)
    assert not trimmer.batch_done(500, full=True)
    assert not trimmer.batch_done(500, full=True)  # 1000 so far, but more are waiting
    trimmed = trimmer.batch_done(20, full=False)
    assert trimmed == trim_heap()  # True wherever glibc is there to ask
    assert not trimmer.batch_done(0, full=False)  # counting starts again
    assert not trimmer.batch_done(999, full=False)
