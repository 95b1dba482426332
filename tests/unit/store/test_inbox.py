"""The inbox: encrypted at rest, idempotent with its dedup record, crypto-shredded on retention."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import errors
from broker.ids import new_message_id
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)
from broker.store import DedupCounters, InboxItem, InboxStore, Sealer

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=48)
SECRET = b'{"body": {"members": [{"name": "PLAINTEXT-MARKER-7f3a"}]}}'
LABELS = Labels(
    message_type=MessageType.NETWORK_REPORT,
    schema_version=1,
    classification=Classification.OFFICIAL_SENSITIVE,
    tlp=TLP.AMBER,
    handling=HandlingCode.H2,
    purposes=frozenset({Purpose.PEOPLE_SMUGGLING}),
    data_categories=frozenset({DataCategory.IDENTITY}),
)


def mid(n: int) -> str:
    return new_message_id(unix_ms=1_700_000_000_000 + n, random_bytes=n.to_bytes(10, "big"))


def put(
    store: InboxStore, n: int, *, plaintext: bytes = SECRET, days: int = 30, at: dt.datetime = T0
) -> str:
    verdict = store.put(
        message_id=mid(n),
        sender="RS",
        labels=LABELS,
        case_id="GB-NCA-2026-0417",
        plaintext=plaintext,
        digest=hashlib.sha256(plaintext).digest(),
        received_at=at,
        retain_until=at + dt.timedelta(days=days),
    )
    assert verdict == "new"
    return mid(n)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "inbox.sqlite3"


@pytest.fixture
def inbox(path: Path, sealer: Sealer) -> Iterator[InboxStore]:
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        yield store


def test_round_trip_and_metadata(inbox: InboxStore) -> None:
    message_id = put(inbox, 1)
    assert inbox.get(message_id) == SECRET
    [meta] = inbox.list()
    assert meta.message_id == message_id
    assert meta.sender == "RS"
    assert meta.message_type is MessageType.NETWORK_REPORT
    assert meta.labels == LABELS
    assert meta.case_id == "GB-NCA-2026-0417"
    assert meta.received_at == T0
    assert meta.shredded_at is None
    assert inbox.metadata(message_id) == meta


def test_durable_across_reopen(path: Path, sealer: Sealer) -> None:
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        message_id = put(store, 1)
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        assert store.get(message_id) == SECRET
        assert (
            store.dedup.check_and_record(message_id, "GB", hashlib.sha256(SECRET).digest(), now=T0)
            == "duplicate"
        )


def test_put_is_idempotent_and_flags_conflicts(inbox: InboxStore) -> None:
    """A redelivery stores nothing new; a different envelope reusing the id changes nothing."""
    message_id = put(inbox, 1)

    def again(plaintext: bytes) -> str:
        return inbox.put(
            message_id=message_id,
            sender="RS",
            labels=LABELS,
            case_id=None,
            plaintext=plaintext,
            digest=hashlib.sha256(plaintext).digest(),
            received_at=T0,
            retain_until=T0 + dt.timedelta(days=1),
        )

    assert (again(SECRET), again(b"forged")) == ("duplicate", "conflict")
    assert inbox.get(message_id) == SECRET
    assert len(inbox.list()) == 1
    assert inbox.dedup.counters == DedupCounters(duplicates=1, conflicts=1)


def test_no_plaintext_in_any_file(path: Path, inbox: InboxStore) -> None:
    """Only labels and metadata are in the clear: the content is nowhere in the files."""
    put(inbox, 1)
    for file in path.parent.iterdir():
        assert b"PLAINTEXT-MARKER" not in file.read_bytes(), file.name


def test_a_failure_mid_put_leaves_no_half_state(
    path: Path, inbox: InboxStore, sealer: Sealer
) -> None:
    """If the key row cannot be written, neither the message nor the dedup record remain."""
    saboteur = sqlite3.connect(path)
    saboteur.execute(
        "CREATE TRIGGER fail_key BEFORE INSERT ON message_keys "
        "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    saboteur.commit()
    with pytest.raises(errors.AvailabilityError, match="disk trouble"):
        put(inbox, 1)
    assert inbox.list() == ()
    assert len(inbox.dedup) == 0
    saboteur.execute("DROP TRIGGER fail_key")
    saboteur.commit()
    saboteur.close()
    assert inbox.get(put(inbox, 1)) == SECRET  # the retry is "new", not "duplicate"


def test_a_sealer_failure_mid_put_leaves_no_half_state(path: Path) -> None:
    class BrokenSealer:
        def seal(self, key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
            raise errors.DecryptionError("sealing failed")

        def open(self, key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
            raise AssertionError("never called")

    with InboxStore.open(path, recipient="GB", sealer=BrokenSealer(), dedup_retention=WINDOW) as s:
        with pytest.raises(errors.DecryptionError):
            put(s, 1)
        assert len(s.dedup) == 0


class TestShredding:
    """At retain_until the key is destroyed; the row stays, unreadable, saying when and why."""

    def test_expired_messages_become_unreadable(self, path: Path, inbox: InboxStore) -> None:
        short = put(inbox, 1, days=1)
        long = put(inbox, 2, days=30)
        assert inbox.shred_expired(T0 + dt.timedelta(days=1) - dt.timedelta(microseconds=1)) == ()
        at = T0 + dt.timedelta(days=1)
        assert inbox.shred_expired(at) == (short,)
        assert inbox.shred_expired(at) == ()
        with pytest.raises(
            errors.UsageError, match=r"shredded at 2026-12-02T12:00:00\+00:00 under retention"
        ):
            inbox.get(short)
        assert inbox.get(long) == SECRET
        assert inbox.metadata(short).shredded_at == at
        assert [m.message_id for m in inbox.list(include_shredded=False)] == [long]

    def test_the_key_is_gone_from_every_file(self, path: Path, inbox: InboxStore) -> None:
        """No copy of the key survives in the database or its log: the ciphertext is lost."""
        message_id = put(inbox, 1, days=1)
        raw = sqlite3.connect(path)
        [(key,)] = raw.execute("SELECT key FROM message_keys WHERE message_id = ?", (message_id,))
        raw.close()
        inbox.shred_expired(T0 + dt.timedelta(days=2))
        raw = sqlite3.connect(path)
        assert raw.execute("SELECT count(*) FROM message_keys").fetchone() == (0,)
        [(ciphertext,)] = raw.execute("SELECT ciphertext FROM messages")
        raw.close()
        assert ciphertext  # the row is kept, and useless without the key
        for file in path.parent.iterdir():
            assert bytes(key) not in file.read_bytes(), file.name

    def test_shredding_survives_reopen(self, path: Path, sealer: Sealer) -> None:
        with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as s:
            message_id = put(s, 1, days=1)
            s.shred_expired(T0 + dt.timedelta(days=1))
        with (
            InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as s,
            pytest.raises(errors.UsageError, match="shredded"),
        ):
            s.get(message_id)


def test_ciphertext_is_bound_to_its_row(path: Path, inbox: InboxStore) -> None:
    """Swapping ciphertexts between rows makes both unreadable (AAD = id and recipient)."""
    first, second = put(inbox, 1), put(inbox, 2, plaintext=b"other")
    raw = sqlite3.connect(path)
    raw.execute("UPDATE message_keys SET message_id = 'x' WHERE message_id = ?", (first,))
    raw.execute("UPDATE message_keys SET message_id = ? WHERE message_id = ?", (first, second))
    raw.execute("UPDATE message_keys SET message_id = ? WHERE message_id = 'x'", (second,))
    raw.commit()
    raw.close()
    with pytest.raises(errors.DecryptionError):
        inbox.get(first)


@pytest.mark.parametrize(
    ("change", "error", "needle"),
    [
        ({"sender": "rs"}, errors.UsageError, "partner code"),
        ({"message_id": "123"}, errors.UsageError, "UUIDv7"),
        ({"retain_until": T0}, errors.UsageError, "after received_at"),
        ({"received_at": dt.datetime(2026, 1, 1)}, errors.UsageError, "timezone-aware"),  # noqa: DTZ001
        ({"case_id": ""}, errors.UsageError, "case id"),
        ({"digest": b"x"}, errors.UsageError, "32 bytes"),
    ],
)
def test_bad_puts_are_refused_without_side_effects(
    inbox: InboxStore, change: dict[str, object], error: type[Exception], needle: str
) -> None:
    args: dict[str, object] = {
        "message_id": mid(1),
        "sender": "RS",
        "labels": LABELS,
        "case_id": None,
        "plaintext": SECRET,
        "digest": hashlib.sha256(SECRET).digest(),
        "received_at": T0,
        "retain_until": T0 + dt.timedelta(days=1),
    }
    with pytest.raises(error, match=needle):
        inbox.put(**{**args, **change})  # type: ignore[arg-type]
    assert inbox.list() == ()
    assert len(inbox.dedup) == 0


def test_unknown_message_and_filters(inbox: InboxStore) -> None:
    with pytest.raises(errors.UsageError, match="no message"):
        inbox.get(mid(9))
    with pytest.raises(errors.UsageError, match="no message"):
        inbox.metadata(mid(9))
    put(inbox, 1)
    assert inbox.list(sender="MK") == ()
    assert len(inbox.list(sender="RS", case_id="GB-NCA-2026-0417")) == 1
    with pytest.raises(errors.UsageError, match="limit"):
        inbox.list(limit=0)


def item(n: int, *, plaintext: bytes = SECRET, message_id: str | None = None) -> InboxItem:
    return InboxItem(
        message_id=message_id or mid(n),
        sender="RS",
        labels=LABELS,
        case_id=None,
        plaintext=plaintext,
        digest=hashlib.sha256(plaintext).digest(),
        received_at=T0,
        retain_until=T0 + dt.timedelta(days=1),
    )


class TestPutMany:
    """A batch gives the verdicts of one put after another, committed together or not at all."""

    def test_verdicts_are_those_of_puts_in_order(self, inbox: InboxStore) -> None:
        """Within one batch a second copy is a duplicate and reused ids are a conflict."""
        batch = [item(1), item(2), item(1), item(0, plaintext=b"forged", message_id=mid(2))]
        assert inbox.put_many(batch) == ["new", "new", "duplicate", "conflict"]
        assert {m.message_id for m in inbox.list()} == {mid(1), mid(2)}
        assert inbox.get(mid(2)) == SECRET
        assert inbox.dedup.counters == DedupCounters(duplicates=1, conflicts=1)

    def test_a_batch_survives_reopen(self, path: Path, sealer: Sealer) -> None:
        with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as s:
            assert s.put_many([item(n) for n in range(5)]) == ["new"] * 5
        with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as s:
            assert [s.get(mid(n)) for n in range(5)] == [SECRET] * 5
            assert s.put_many([item(3)]) == ["duplicate"]

    def test_one_bad_item_stores_nothing(self, inbox: InboxStore) -> None:
        """Every item is checked before anything is written."""
        bad = dataclasses.replace(item(2), retain_until=T0)
        with pytest.raises(errors.UsageError, match="retain_until"):
            inbox.put_many([item(1), bad])
        assert inbox.list() == ()
        assert len(inbox.dedup) == 0

    def test_a_failure_mid_batch_leaves_no_half_state(self, path: Path, inbox: InboxStore) -> None:
        saboteur = sqlite3.connect(path)
        saboteur.execute(
            "CREATE TRIGGER fail_third BEFORE INSERT ON message_keys "
            f"WHEN NEW.message_id = '{mid(3)}' BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
        )
        saboteur.commit()
        saboteur.close()
        with pytest.raises(errors.AvailabilityError, match="disk trouble"):
            inbox.put_many([item(1), item(2), item(3)])
        assert inbox.list() == ()
        assert len(inbox.dedup) == 0

    def test_an_empty_batch_does_nothing(self, inbox: InboxStore) -> None:
        assert inbox.put_many([]) == []


def test_each_reads_every_message_past_any_page_size(inbox: InboxStore) -> None:
    """each() yields every stored message once, in the order stored, however many pages it
    takes (list() stops at its limit; the history checker reads whole inboxes)."""
    inbox.put_many([item(n) for n in range(1, 24)])
    assert [m.message_id for m in inbox.each(batch=5)] == [mid(n) for n in range(1, 24)]
    assert [m.message_id for m in inbox.each(batch=100)] == [mid(n) for n in range(1, 24)]


def test_an_origin_kept_under_the_earlier_name_rule_leaves_every_row_readable(
    path: Path, sealer: Sealer
) -> None:
    """One row whose sender's origin passed the earlier release's looser rule (a decomposed
    letter) must not make the listing, search or a whole-inbox check fail after the upgrade."""
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        first, second = put(store, 1), put(store, 2)
    kept = '{"agency":"Granic\\u030cna policija","officer":"m.petrovic","unit":"Analysis"}'
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE messages SET origin = ? WHERE message_id = ?", (kept, first))
    conn.close()
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        listed = {meta.message_id: meta for meta in store.list()}
        assert len(list(store.each())) == 2
        origin = store.metadata(first).origin
    assert set(listed) == {first, second}
    assert origin is not None
    assert (origin.agency, origin.unit) == ("Granic\u030cna policija", "Analysis")
