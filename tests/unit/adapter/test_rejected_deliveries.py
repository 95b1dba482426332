"""A delivery the adapter refuses never vanishes: it is counted, logged, and recorded in the
inbox's rejected table with its reason, its position and what could be verified of it; and a
flood of refusals costs a bounded amount of disk (a prefix and digest per row, a bounded
number of rows, pruned by age, every pruned row counted)."""

from __future__ import annotations

import datetime as dt

import pytest

from broker import crypto, envelope, limits
from broker.adapter import Adapter
from broker.clock import FixedClock
from broker.errors import UsageError
from broker.store import RejectedDelivery
from broker.store.rejected import DEFAULT_MAX_AGE, RejectedLog

from .world import GB, NOW, RS, WORLD, deliver, report, under_declared_view


def _ids(offset: int) -> dict[str, object]:
    return {"topic": "xb.inbox.RS", "partition": 0, "offset": offset}


def _sealed(uk: Adapter) -> bytes:
    uk.submit(report(), to=[RS])
    (entry,) = uk.journal.pending()
    return entry.envelope


def test_a_view_refused_under_a_newer_registry_is_recorded_as_attested(
    uk: Adapter, serbia: Adapter
) -> None:
    """The revocation race: the gateway attested a view under the old registry, Serbia holds
    one revoking GB's signing key. The view is refused (unknown_key), no receipt goes back to
    an unauthenticated sender, and its row names the attested id, sender and case id."""
    sealed = _sealed(uk)
    header = envelope.parse(sealed).header
    draft = WORLD.edit()
    gb = WORLD.partners[GB]
    draft.revoke(
        partner=gb.partner, key_id=gb.signing_key_id, at=NOW - dt.timedelta(hours=1), reason="t"
    )
    serbia.registry, _ = WORLD.resign(draft, now=NOW)
    assert serbia.receive_many([deliver(sealed, recipient=RS)], ids=[_ids(41)]) == ["rejected"]
    (row,) = serbia.inbox.rejected.list()
    assert (row.reason_code, row.identified_by) == ("unknown_key", "attestation")
    assert (row.message_id, row.sender) == (header.message_id, "GB")
    assert row.case_id == report().case_id  # the history key the checker matches on
    assert (row.topic, row.partition, row.offset) == ("xb.inbox.RS", 0, 41)
    assert row.rejected_at == NOW
    assert serbia.inbox.list() == ()
    assert len(serbia.journal) == 0


def test_a_refusal_of_an_authenticated_sender_is_recorded_and_receipted(
    serbia: Adapter,
) -> None:
    """A label mismatch: the sender's signature checked, so the row's ids are the envelope's
    own, the frame's prefix and digest are kept, and the rejected receipt still goes back."""
    frame = deliver(under_declared_view(), recipient=RS)
    assert serbia.receive_many([frame], ids=[_ids(3)]) == ["rejected"]
    (row,) = serbia.inbox.rejected.list()
    assert (row.reason_code, row.identified_by, row.sender) == ("label_mismatch", "envelope", "GB")
    kept = serbia.inbox.rejected.get(row.id)
    assert kept.frame == frame[: limits.REJECTED_PREFIX_BYTES]
    assert (kept.frame_size, kept.frame_sha256) == (len(frame), crypto.sha256(frame))
    (receipt,) = serbia.journal.pending()
    assert receipt.recipient == GB


@pytest.mark.parametrize(
    ("frame", "reason_code"),
    [
        pytest.param(None, "malformed", id="an empty record"),
        pytest.param(b"XBD1garbage", "bad_attestation", id="a broken frame"),
        pytest.param(b"\x00" * 64, "bad_attestation", id="not a frame at all"),
    ],
)
def test_garbage_is_recorded_with_nothing_verified(
    serbia: Adapter, frame: bytes | None, reason_code: str
) -> None:
    """Even a record no one can vouch for is kept, its bytes and reason, with no identity."""
    serbia.receive_many([frame], ids=[_ids(0)])
    (row,) = serbia.inbox.rejected.list()
    assert (row.reason_code, row.identified_by, row.message_id) == (reason_code, None, None)
    assert serbia.inbox.rejected.get(row.id).frame == (frame or b"")


def test_a_batch_stores_its_messages_and_rejections_together_once(
    uk: Adapter, serbia: Adapter
) -> None:
    """A batch mixing a good view and a refused one stores both outcomes; the same batch
    redelivered (a crash before the commit) adds a duplicate count and no second row."""
    frames = [deliver(_sealed(uk), recipient=RS), b"XBD1garbage"]
    ids = [_ids(10), _ids(11)]
    assert serbia.receive_many(frames, ids=ids) == ["stored", "rejected"]
    assert serbia.receive_many(frames, ids=ids) == ["duplicate", "rejected"]
    assert len(serbia.inbox.list()) == 1
    assert [r.offset for r in serbia.inbox.rejected.list()] == [11]
    rejected = serbia.metrics.counter("xb_adapter_rejected_total", "", ("reason_code",))
    assert rejected.value(reason_code="bad_attestation") == 2  # the metric counts each look


def test_only_the_bound_of_a_frame_is_kept_with_the_digest_of_all_of_it(serbia: Adapter) -> None:
    """A frame larger than the bound keeps its first bytes, its real size and its SHA-256."""
    assert serbia.max_rejected_frame_bytes == limits.REJECTED_PREFIX_BYTES
    frame = bytes(range(256)) * 4096  # 1 MiB of junk, the size of the largest envelope
    serbia.receive_many([frame], ids=[_ids(0)])
    row = serbia.inbox.rejected.get(serbia.inbox.rejected.list()[0].id)
    assert row.frame == frame[: limits.REJECTED_PREFIX_BYTES]
    assert (row.frame_size, row.frame_truncated) == (len(frame), True)
    assert row.frame_sha256 == crypto.sha256(frame)


def test_a_flood_of_refusals_keeps_the_newest_rows_and_counts_the_rest(serbia: Adapter) -> None:
    """Past the row bound the oldest rows go, in the same transaction, and are counted by
    reason code: the table never grows past its bound, the count never forgets."""
    serbia.inbox.rejected._max_rows = 5  # the daemon's bound is 10,000; the rule is the same
    for batch in range(4):
        frames = [b"XBD1garbage"] * 3 + [None]
        serbia.receive_many(frames, ids=[_ids(10 * batch + i) for i in range(4)])
    rows = serbia.inbox.rejected.list()
    assert [row.offset for row in rows] == [23, 30, 31, 32, 33]
    assert len(serbia.inbox.rejected) == 5
    assert serbia.inbox.rejected.pruned() == {"bad_attestation": 9, "malformed": 2}


def test_refusals_older_than_the_age_bound_are_pruned_and_counted(
    serbia: Adapter, clock: FixedClock
) -> None:
    """Housekeeping drops refusals older than 30 days; the count by reason code stays."""
    serbia.receive_many([b"XBD1garbage", None], ids=[_ids(0), _ids(1)])
    clock.advance(DEFAULT_MAX_AGE + dt.timedelta(seconds=1))
    serbia.shred_expired()
    assert serbia.inbox.rejected.list() == ()
    assert serbia.inbox.rejected.pruned() == {"bad_attestation": 1, "malformed": 1}
    pruned = serbia.metrics.counter("xb_adapter_rejected_pruned_total", "")
    assert pruned.value() == 2


def test_a_bounded_frame_without_the_digest_of_the_whole_is_refused() -> None:
    """The store cannot be handed a prefix that claims to be all of a frame."""
    cut = RejectedDelivery("malformed", "x", NOW, frame=b"ab", frame_size=10)
    with pytest.raises(UsageError, match="SHA-256 of the whole frame"):
        RejectedLog.validate([cut])
