"""The de-duplication record: atomic classification, durable counters, bounded by its window."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import errors
from broker.ids import new_message_id
from broker.store import DedupCounters, DedupStore

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=48)
ID_A = new_message_id(unix_ms=1_700_000_000_000, random_bytes=bytes(10))
ID_B = new_message_id(unix_ms=1_700_000_000_001, random_bytes=bytes(10))
DIGEST_1 = hashlib.sha256(b"envelope one").digest()
DIGEST_2 = hashlib.sha256(b"envelope two").digest()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DedupStore]:
    with DedupStore.open(tmp_path / "dedup.sqlite3", retention=WINDOW) as opened:
        yield opened


# (name, earlier arrivals as (id, recipient, digest, offset), the new arrival, verdict)
CASES = [
    ("first sight", [], (ID_A, "GB", DIGEST_1, 0), "new"),
    ("redelivery", [(ID_A, "GB", DIGEST_1, 0)], (ID_A, "GB", DIGEST_1, 1), "duplicate"),
    (
        "id reused for other bytes",
        [(ID_A, "GB", DIGEST_1, 0)],
        (ID_A, "GB", DIGEST_2, 1),
        "conflict",
    ),
    ("same id, other recipient", [(ID_A, "GB", DIGEST_1, 0)], (ID_A, "RS", DIGEST_2, 1), "new"),
    ("other id, same bytes", [(ID_A, "GB", DIGEST_1, 0)], (ID_B, "GB", DIGEST_1, 1), "new"),
    ("after the window", [(ID_A, "GB", DIGEST_1, 0)], (ID_A, "GB", DIGEST_2, 48 * 3600), "new"),
    (
        "just inside the window",
        [(ID_A, "GB", DIGEST_1, 0)],
        (ID_A, "GB", DIGEST_2, 48 * 3600 - 1),
        "conflict",
    ),
]


@pytest.mark.parametrize(
    ("name", "earlier", "arrival", "verdict"), CASES, ids=[c[0] for c in CASES]
)
def test_classification_table(
    store: DedupStore,
    name: str,
    earlier: list[tuple[str, str, bytes, int]],
    arrival: tuple[str, str, bytes, int],
    verdict: str,
) -> None:
    for mid, rcpt, digest, offset in earlier:
        assert (
            store.check_and_record(mid, rcpt, digest, now=T0 + dt.timedelta(seconds=offset))
            == "new"
        )
    mid, rcpt, digest, offset = arrival
    assert (
        store.check_and_record(mid, rcpt, digest, now=T0 + dt.timedelta(seconds=offset)) == verdict
    )


def test_counters_survive_reopen(tmp_path: Path) -> None:
    """Duplicates and conflicts are counted durably: an alert is not lost by a restart."""
    path = tmp_path / "dedup.sqlite3"
    with DedupStore.open(path, retention=WINDOW) as store:
        store.check_and_record(ID_A, "GB", DIGEST_1, now=T0)
        store.check_and_record(ID_A, "GB", DIGEST_1, now=T0)
        store.check_and_record(ID_A, "GB", DIGEST_1, now=T0)
        store.check_and_record(ID_A, "GB", DIGEST_2, now=T0)
    with DedupStore.open(path, retention=WINDOW) as store:
        assert store.counters == DedupCounters(duplicates=2, conflicts=1)
        assert store.check_and_record(ID_A, "GB", DIGEST_1, now=T0) == "duplicate"
        assert len(store) == 1


def test_a_conflict_keeps_the_first_digest(store: DedupStore) -> None:
    """The attacker's bytes never replace the original: the original still reads as duplicate."""
    store.check_and_record(ID_A, "GB", DIGEST_1, now=T0)
    assert store.check_and_record(ID_A, "GB", DIGEST_2, now=T0) == "conflict"
    assert store.check_and_record(ID_A, "GB", DIGEST_1, now=T0) == "duplicate"


def test_prune_bounds_the_size_to_the_window(store: DedupStore) -> None:
    """One id every ten minutes for five days: after pruning only the last 48 hours remain."""
    arrivals = 5 * 24 * 6
    for i in range(arrivals):
        mid = new_message_id(unix_ms=1_700_000_000_000 + i, random_bytes=i.to_bytes(10, "big"))
        store.check_and_record(mid, "GB", DIGEST_1, now=T0 + dt.timedelta(minutes=10 * i))
    end = T0 + dt.timedelta(minutes=10 * (arrivals - 1))
    removed = store.prune(end)
    assert len(store) == 48 * 6
    assert removed == arrivals - 48 * 6
    assert store.prune(end) == 0


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([ID_A, ID_B]), st.booleans(), st.integers(0, 200)), max_size=12
    ),
    st.sets(st.integers(0, 200), max_size=4),
)
def test_verdicts_do_not_depend_on_when_pruning_runs(
    tmp_path_factory: pytest.TempPathFactory,
    arrivals: list[tuple[str, bool, int]],
    prune_at: set[int],
) -> None:
    """Property: pruning at any moments changes no verdict, only the size."""
    window = dt.timedelta(hours=50)
    base = tmp_path_factory.mktemp("prune")
    ordered = sorted(arrivals, key=lambda a: a[2])
    with (
        DedupStore.open(base / "a.db", retention=window) as plain,
        DedupStore.open(base / "b.db", retention=window) as pruned,
    ):
        for mid, second, hour in ordered:
            now = T0 + dt.timedelta(hours=hour)
            if hour in prune_at:
                pruned.prune(now)
            digest = DIGEST_2 if second else DIGEST_1
            assert plain.check_and_record(mid, "GB", digest, now=now) == pruned.check_and_record(
                mid, "GB", digest, now=now
            )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("not-a-uuid", "GB", DIGEST_1), "UUIDv7"),
        ((ID_A, "gb", DIGEST_1), "partner code"),
        ((ID_A, "GB", b"short"), "32 bytes"),
    ],
)
def test_bad_inputs_are_usage_errors(
    store: DedupStore, args: tuple[str, str, bytes], needle: str
) -> None:
    with pytest.raises(errors.UsageError, match=needle):
        store.check_and_record(*args, now=T0)
    assert len(store) == 0


def test_naive_time_is_refused(store: DedupStore) -> None:
    with pytest.raises(errors.UsageError, match="timezone-aware"):
        store.check_and_record(ID_A, "GB", DIGEST_1, now=dt.datetime(2026, 12, 1))  # noqa: DTZ001


def test_database_files_are_private(tmp_path: Path) -> None:
    """The database and its write-ahead log are mode 0600, even under a permissive umask."""
    path = tmp_path / "dedup.sqlite3"
    old = os.umask(0o000)
    try:
        with DedupStore.open(path, retention=WINDOW) as store:
            store.check_and_record(ID_A, "GB", DIGEST_1, now=T0)
            wal = path.with_name(path.name + "-wal")
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_an_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "dedup.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    DedupStore.open(path, retention=WINDOW).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("content", "needle"), [(b"this is not sqlite" * 100, "not a de-duplication store")]
)
def test_a_foreign_file_is_refused(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "dedup.sqlite3"
    path.write_bytes(content)
    with pytest.raises(errors.UsageError, match=needle):
        DedupStore.open(path, retention=WINDOW)


def test_journal_is_wal(tmp_path: Path) -> None:
    """Write-ahead logging is on and persists in the file (synchronous=FULL is per connection)."""
    path = tmp_path / "dedup.sqlite3"
    DedupStore.open(path, retention=WINDOW).close()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


def test_missing_directory_and_bad_retention(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match="does not exist"):
        DedupStore.open(tmp_path / "absent" / "d.db", retention=WINDOW)
    with pytest.raises(errors.UsageError, match="positive"):
        DedupStore.open(tmp_path / "d.db", retention=dt.timedelta(0))
