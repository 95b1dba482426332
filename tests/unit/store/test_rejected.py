"""The inbox's table of refused deliveries: written in the same transaction as the batch's
messages, one row per (topic, partition, offset), bounded fields, and older inboxes upgraded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import errors
from broker.crypto import AeadSealer
from broker.ids import new_message_id
from broker.store import InboxItem, InboxStore, RejectedDelivery, Sealer, rejected

from .conftest import as_left_by_version
from .test_inbox import LABELS, T0, WINDOW

FRAME = b"XBD1" + bytes(range(256)) * 4


def _mid(n: int) -> str:
    return new_message_id(unix_ms=1_700_000_000_000 + n, random_bytes=n.to_bytes(10, "big"))


def _item(n: int, plaintext: bytes = b'{"n": 1}') -> InboxItem:
    return InboxItem(
        message_id=_mid(n),
        sender="GB",
        labels=LABELS,
        case_id=f"GB-CASE-{n}",
        plaintext=plaintext,
        digest=hashlib.sha256(plaintext + bytes([n])).digest(),
        received_at=T0,
        retain_until=T0 + dt.timedelta(days=30),
    )


def _refused(offset: int | None = 7, **changes: object) -> RejectedDelivery:
    base = RejectedDelivery(
        reason_code="unknown_key",
        reason="envelope: signing key GB-sig-1 was revoked",
        rejected_at=T0,
        frame=FRAME[:100],
        frame_size=len(FRAME),
        frame_sha256=hashlib.sha256(FRAME).digest(),
        topic=None if offset is None else "xb.inbox.RS",
        partition=None if offset is None else 0,
        offset=offset,
        message_id=_mid(99),
        sender="GB",
        case_id="GB-CASE-99",
        identified_by="attestation",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _open(path: Path, sealer: Sealer | None = None) -> InboxStore:
    return InboxStore.open(
        path, recipient="RS", sealer=sealer or AeadSealer(), dedup_retention=WINDOW
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InboxStore]:
    with _open(tmp_path / "inbox.sqlite") as opened:
        yield opened


def test_a_refusal_is_kept_with_its_reason_position_and_bounded_frame(store: InboxStore) -> None:
    """Everything recorded comes back; list() leaves the frame out, get() has the bytes kept
    and says they were cut short of the frame's real size."""
    assert store.put_many([], rejected=[_refused()]) == []
    (listed,) = store.rejected.list()
    assert listed.frame is None
    assert (listed.topic, listed.partition, listed.offset) == ("xb.inbox.RS", 0, 7)
    assert (listed.message_id, listed.sender, listed.case_id) == (_mid(99), "GB", "GB-CASE-99")
    assert (listed.reason_code, listed.identified_by) == ("unknown_key", "attestation")
    assert listed.reason.startswith("envelope: signing key")
    assert listed.rejected_at == T0
    assert listed.frame_sha256 == hashlib.sha256(FRAME).digest()  # of the whole frame
    full = store.rejected.get(listed.id)
    assert full.frame == FRAME[:100]
    assert (full.frame_size, full.frame_truncated) == (len(FRAME), True)
    with pytest.raises(errors.UsageError, match="no rejected delivery 999"):
        store.rejected.get(999)


def test_a_redelivered_frame_is_recorded_once(store: InboxStore) -> None:
    """The same (topic, partition, offset) again, as after a crash before the commit, adds no
    row and leaves the first one as it was; a frame with no position is recorded each time."""
    store.put_many([], rejected=[_refused()])
    store.put_many([], rejected=[_refused(reason="a second look", rejected_at=T0 + WINDOW)])
    store.put_many([], rejected=[_refused(offset=None), _refused(offset=None)])
    rows = store.rejected.list()
    assert [r.offset for r in rows] == [7, None, None]
    assert rows[0].reason.startswith("envelope:")
    assert rows[0].rejected_at == T0


@settings(max_examples=25, deadline=None)
@given(offsets=st.lists(st.integers(min_value=0, max_value=5), max_size=12))
def test_rows_are_the_distinct_positions_whatever_the_batches(offsets: list[int]) -> None:
    """However redeliveries are split into batches, one row per distinct position remains."""
    with tempfile.TemporaryDirectory() as directory, _open(Path(directory) / "i.sqlite") as s:
        for start in range(0, len(offsets), 3):
            s.put_many([], rejected=[_refused(o) for o in offsets[start : start + 3]])
        assert sorted(r.offset or 0 for r in s.rejected.list()) == sorted(set(offsets))


class _FailingSealer:
    """The real sealer, failing for one plaintext: a write that breaks mid-transaction."""

    def __init__(self, poison: bytes) -> None:
        self._real, self._poison = AeadSealer(), poison

    def seal(self, key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
        if plaintext == self._poison:
            raise errors.AvailabilityError("disk full")
        return self._real.seal(key, plaintext, aad=aad)

    def open(self, key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
        return self._real.open(key, sealed, aad=aad)


def _poisoned_message(path: Path) -> tuple[InboxStore, list[InboxItem]]:
    poison = b'{"poison": 1}'
    return _open(path, _FailingSealer(poison)), [_item(1), _item(2, poison)]


def _poisoned_rejection(path: Path) -> tuple[InboxStore, list[InboxItem]]:
    store = _open(path)
    # Another connection installs a fault: the rejected row's insert aborts.
    other = sqlite3.connect(path)
    other.execute(
        "CREATE TRIGGER fault BEFORE INSERT ON rejected BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    other.commit()
    other.close()
    return store, [_item(1), _item(2)]


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_poisoned_message, id="the message write fails"),
        pytest.param(_poisoned_rejection, id="the rejection write fails"),
    ],
)
def test_messages_and_rejections_commit_together_or_not_at_all(
    tmp_path: Path, spoil: Callable[[Path], tuple[InboxStore, list[InboxItem]]]
) -> None:
    """A failure anywhere in the batch's transaction leaves neither messages nor rejections
    (nor de-duplication entries): the batch is redone whole after the redelivery."""
    path = tmp_path / "inbox.sqlite"
    store, items = spoil(path)
    with store, pytest.raises(errors.AvailabilityError):
        store.put_many(items, rejected=[_refused(offset=3)])
    with _open(path) as reopened:
        assert reopened.list() == ()
        assert len(reopened.rejected) == 0
        assert len(reopened.dedup) == 0


_BAD: list[tuple[str, RejectedDelivery, str]] = [
    ("not a reason code", _refused(reason_code="Bad Code!"), "not a reason code"),
    ("half a position", _refused(partition=None), "topic, partition and offset"),
    ("a size below the bytes", _refused(frame_size=3), "at least len"),
    ("a prefix without its digest", _refused(frame_sha256=None), "SHA-256 of the whole"),
    ("a digest of another size", _refused(frame_sha256=b"short"), "32-byte SHA-256"),
    ("a naive time", _refused(rejected_at=T0.replace(tzinfo=None)), "timezone-aware"),
    ("unknown provenance", _refused(identified_by="rumour"), "identified_by"),
]


@pytest.mark.parametrize(("item", "match"), [c[1:] for c in _BAD], ids=[c[0] for c in _BAD])
def test_a_malformed_rejection_is_refused_before_anything_is_written(
    store: InboxStore, item: RejectedDelivery, match: str
) -> None:
    """Validation happens first: the batch's good message is not written either."""
    with pytest.raises(errors.UsageError, match=match):
        store.put_many([_item(1)], rejected=[item])
    assert store.list() == ()


def test_text_from_the_frame_is_bounded(store: InboxStore) -> None:
    """A reason may quote attacker-controlled input: it is cut, not refused."""
    store.put_many([], rejected=[_refused(reason="x" * 10_000, case_id="c" * 500)])
    (row,) = store.rejected.list()
    assert len(row.reason) == rejected.MAX_REASON_CHARS
    assert row.case_id == "c" * 128


def test_an_inbox_of_the_previous_version_gains_the_table(tmp_path: Path) -> None:
    """Opening a version-1 inbox adds the empty rejected tables and keeps its messages."""
    path = tmp_path / "inbox.sqlite"
    with _open(path) as old:
        old.put_many([_item(1)])
    as_left_by_version(path, 1)
    with _open(path) as upgraded:
        assert [m.message_id for m in upgraded.list()] == [_mid(1)]
        assert upgraded.rejected.list() == ()
        upgraded.put_many([], rejected=[_refused()])
        assert len(upgraded.rejected) == 1
    with _open(path) as again:  # the upgrade happens once
        assert len(again.rejected) == 1
