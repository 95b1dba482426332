"""Shredding a message leaves no plaintext copy behind, and a sent submission leaves none once
Kafka has acknowledged it: the delivery file, a queued webhook post, the spool's ``sent/``
copy; and the retention each view is stored with is the accord's, with its reason."""

from __future__ import annotations

import datetime as dt
import pathlib

from broker.adapter import Adapter, DeliveryDir, Webhook
from broker.adapter.fates import Acknowledged
from broker.adapter.journal import JournalEntry
from broker.clock import FixedClock
from broker.ids import MessageId
from broker.pipeline.send import Outgoing
from broker.runtime import Metrics

from .world import NOW, RS, deliver, report


def _deliver_one(uk: Adapter, serbia: Adapter) -> tuple[bytes, MessageId]:
    (outgoing,) = uk.submit(report(), to=[RS])
    assert isinstance(outgoing, Outgoing)
    frame = deliver(outgoing.envelope, recipient=RS)
    assert serbia.receive(frame) == "stored"
    return frame, outgoing.message_id


def test_a_stored_view_carries_its_retention_rule(uk: Adapter, serbia: Adapter) -> None:
    """Serbia keeps 30 days at most, stricter than gb-rs's 730: the local rule decides."""
    _, message_id = _deliver_one(uk, serbia)
    meta = serbia.inbox.metadata(message_id)
    assert meta.retain_until == NOW + dt.timedelta(days=30)
    assert meta.retention_rule == "local"
    assert meta.retention_reason == "this adapter keeps at most 30 days (store.retention_days)"
    serbia.retention = dt.timedelta(days=3650)
    _, laxer = _deliver_one(uk, serbia)
    assert serbia.inbox.metadata(laxer).retain_until == NOW + dt.timedelta(days=730)
    assert serbia.inbox.metadata(laxer).retention_rule == "accord"


def test_retention_deletes_the_delivery_files_of_what_it_shreds(
    uk: Adapter, serbia: Adapter, clock: FixedClock, tmp_path: pathlib.Path
) -> None:
    serbia.delivery_dir = DeliveryDir(tmp_path / "out")
    _, message_id = _deliver_one(uk, serbia)
    assert (tmp_path / "out" / f"{message_id}.json").exists()
    (tmp_path / "out" / "notes.txt").write_text("the agency's own file")
    clock.advance(dt.timedelta(days=30))
    assert serbia.shred_expired() == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notes.txt"]


def test_an_erased_messages_file_goes_and_a_redelivery_never_brings_it_back(
    uk: Adapter, serbia: Adapter, tmp_path: pathlib.Path
) -> None:
    """Erased by ``broker inbox erase`` beside the daemon: housekeeping removes the file; a
    redelivery of the same frame is still a duplicate and writes no file again."""
    serbia.delivery_dir = DeliveryDir(tmp_path / "out")
    frame, message_id = _deliver_one(uk, serbia)
    _, kept = _deliver_one(uk, serbia)
    serbia.inbox.erase(message_id, now=NOW, reason="asked")
    assert serbia.shred_expired() == 0  # nothing past retention; the erased file goes anyway
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"{kept}.json"]
    assert serbia.receive(frame) == "duplicate"
    assert not (tmp_path / "out" / f"{message_id}.json").exists()


def test_shredding_drops_queued_webhook_posts(uk: Adapter, serbia: Adapter) -> None:
    """The webhook's queue holds plaintext in memory; a shredded message's post goes."""
    serbia.webhook = Webhook("http://127.0.0.1:9/never", metrics=Metrics())
    _, first = _deliver_one(uk, serbia)
    _, second = _deliver_one(uk, serbia)
    assert serbia.webhook.queued() == [first, second]
    serbia.inbox.erase(first, now=NOW, reason="asked")
    serbia.shred_expired()
    assert serbia.webhook.queued() == [second]


def _spool_file(uk: Adapter, name: str = "report.json") -> pathlib.Path:
    assert uk.spool is not None
    path = uk.spool.incoming / name
    path.write_bytes(b'{"to":["RS"],"message":%b}' % report().model_dump_json().encode())
    return path


def _acknowledge(adapter: Adapter, entry: JournalEntry) -> None:
    """Kafka acknowledged ``entry``'s envelope (at some position of its outbox)."""
    acknowledged = Acknowledged(entry.message_id, entry.topic, 0, 0)
    adapter.journal.acknowledge_many([acknowledged], now=adapter.clock.now())


def test_the_sent_copy_goes_once_every_view_is_acknowledged(uk: Adapter) -> None:
    assert uk.spool is not None
    _spool_file(uk)
    assert uk.process_spool() == 1
    copy = uk.spool.sent / "report.json"
    assert copy.exists()  # journalled, not yet acknowledged: the copy may still be needed
    (entry,) = uk.journal.pending()
    assert uk.settle_sent([entry]) == 0
    _acknowledge(uk, entry)
    assert uk.settle_sent([entry]) == 1
    assert not copy.exists()


def test_housekeeping_removes_sent_copies_a_crash_left(uk: Adapter) -> None:
    """Acknowledged, then a crash before the copy went: the next housekeeping deletes it, and
    a copy whose views still wait stays."""
    assert uk.spool is not None
    _spool_file(uk, "first.json")
    uk.process_spool()
    (first,) = uk.journal.pending()
    _acknowledge(uk, first)
    _spool_file(uk, "second.json")
    uk.process_spool()
    uk.shred_expired()
    assert sorted(p.name for p in uk.spool.sent.iterdir()) == ["second.json"]


def test_a_reused_name_is_never_taken_for_the_acknowledged_submission(uk: Adapter) -> None:
    """The copy is deleted under the source its own bytes give, not by its name alone."""
    assert uk.spool is not None
    _spool_file(uk, "same.json")
    uk.process_spool()
    (first,) = uk.journal.pending()
    _acknowledge(uk, first)
    later = _spool_file(uk, "same.json")
    later.write_bytes(later.read_bytes().replace(b'"RS"', b' "RS"', 1))  # other bytes
    uk.process_spool()  # the new file replaces the old copy in sent/; its view waits
    assert uk.settle_sent([first]) == 0
    assert (uk.spool.sent / "same.json").exists()


def test_a_file_journalled_before_a_crash_is_not_kept_once_acknowledged(uk: Adapter) -> None:
    """Journalled, sent and acknowledged, but the crash came before the file left incoming/:
    on restart it is recognised and goes straight away instead of lingering in sent/."""
    assert uk.spool is not None
    path = _spool_file(uk)
    data = path.read_bytes()
    uk.process_spool()
    (entry,) = uk.journal.pending()
    _acknowledge(uk, entry)
    (uk.spool.sent / "report.json").rename(path)  # as if the move had not happened
    assert path.read_bytes() == data
    assert uk.process_spool() == 1
    assert list(uk.spool.incoming.iterdir()) == []
    assert not (uk.spool.sent / "report.json").exists()
    assert len(uk.journal) == 0
