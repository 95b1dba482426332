"""A delivery the adapter refuses never vanishes: it is counted, logged, and recorded in the
inbox's rejected table with its reason, its position and what could be verified of it."""

from __future__ import annotations

import datetime as dt

import pytest

from broker import envelope
from broker.adapter import Adapter
from broker.adapter.receiving import frame_limit
from broker.pipeline import MAX_DELIVERY_BYTES

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
    own, the frame is kept whole, and the rejected receipt still goes back to GB."""
    frame = deliver(under_declared_view(), recipient=RS)
    assert serbia.receive_many([frame], ids=[_ids(3)]) == ["rejected"]
    (row,) = serbia.inbox.rejected.list()
    assert (row.reason_code, row.identified_by, row.sender) == ("label_mismatch", "envelope", "GB")
    assert serbia.inbox.rejected.get(row.id).frame == frame
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


def test_only_the_bound_of_a_frame_is_kept(serbia: Adapter) -> None:
    """A frame larger than the bound keeps its first bytes and its real size."""
    serbia.max_rejected_frame_bytes = 16
    serbia.receive_many([b"\x00" * 1000], ids=[_ids(0)])
    row = serbia.inbox.rejected.get(serbia.inbox.rejected.list()[0].id)
    assert (row.frame, row.frame_size, row.frame_truncated) == (b"\x00" * 16, 1000, True)


def test_the_bound_follows_the_configured_envelope_size() -> None:
    """The bound is the largest delivery record of the configuration, never above the frame
    size limit every accepted frame respects."""
    assert frame_limit(envelope.MAX_ENVELOPE_BYTES) == MAX_DELIVERY_BYTES
    assert frame_limit(1024) < frame_limit(2048) < MAX_DELIVERY_BYTES
    assert frame_limit(10 * envelope.MAX_ENVELOPE_BYTES) == MAX_DELIVERY_BYTES
