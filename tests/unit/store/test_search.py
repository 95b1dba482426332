"""Searching the inbox: any spelling of a name finds the others, a phone number with or
without its spaces, every filter narrows, and a shredded message is found by nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.ids import new_message_id
from broker.schema.labels import MessageType
from broker.store import InboxStore, Sealer
from broker.store.search import fold, terms_of

from .conftest import as_left_by_version
from .test_inbox import LABELS, T0, WINDOW

REPORT = json.loads(
    (
        Path(__file__).resolve().parents[3] / "schemas" / "examples" / "network.report.json"
    ).read_bytes()
)


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("ТЕСТОВИЋ", "testovic"),  # Serbian Cyrillic
        ("TESTOVIĆ", "testovic"),  # Serbian Latin
        ("Testovic", "testovic"),
        ("Ђорђевић", "djordjevic"),
        ("Đorđević", "djordjevic"),
        ("Љубљана", "ljubljana"),
        ("Ѓорѓиевски", "gorgievski"),  # Macedonian
        ("I\u015f\u0131k", "isik"),  # Turkish, with its dotless i
        ("Gjergjë", "gjergje"),  # Albanian
        ("Straße", "strasse"),
    ],
)
def test_every_spelling_folds_to_one(written: str, folded: str) -> None:
    assert fold(written) == folded


def test_a_phone_number_is_a_term_with_and_without_its_separators() -> None:
    terms = terms_of("call +381 60 000 0001 or (389) 70-000-002")
    assert {"381600000001", "38970000002", "call"} <= terms


def _put(inbox: InboxStore, n: int, document: dict[str, object], *, at: dt.datetime = T0) -> str:
    message_id = new_message_id(unix_ms=1_700_000_000_000 + n, random_bytes=n.to_bytes(10, "big"))
    plaintext = json.dumps(document, ensure_ascii=False).encode()
    assert (
        inbox.put(
            message_id=message_id,
            sender="RS" if n % 2 else "MK",
            labels=LABELS,
            case_id=f"CASE-{n}",
            plaintext=plaintext,
            digest=hashlib.sha256(plaintext).digest(),
            received_at=at,
            retain_until=at + dt.timedelta(days=n),
        )
        == "new"
    )
    return message_id


@pytest.fixture
def inbox(tmp_path: Path, sealer: Sealer) -> Iterator[InboxStore]:
    with InboxStore.open(
        tmp_path / "inbox.sqlite3", recipient="GB", sealer=sealer, dedup_retention=WINDOW
    ) as store:
        yield store


def test_a_name_in_cyrillic_finds_the_report_written_in_latin(inbox: InboxStore) -> None:
    report = _put(inbox, 1, REPORT)
    other = _put(inbox, 2, {"body": {"summary": "nothing to do with it"}})

    def found(text: str) -> list[str]:
        return [m.message_id for m in inbox.search(text)]

    assert found("ТЕСТОВИЋ") == [report]
    assert found("testovic Doktor") == [report]  # every word must match
    assert found("testovic nothing") == []
    assert found("+381600000001") == [report]
    assert found("+381 60 000 0001") == [report]
    assert found("") == [report, other]  # no words: the filters alone
    assert [m.message_id for m in inbox.search("", sender="MK")] == [other]
    assert [m.message_id for m in inbox.search("testovic", case_id="CASE-2")] == []
    assert [m.message_id for m in inbox.search("", message_type=str(MessageType.NETWORK_REPORT))]
    assert inbox.search("testovic", since=T0 + dt.timedelta(seconds=1)) == ()
    assert [m.message_id for m in inbox.search("testovic", until=T0 + dt.timedelta(seconds=1))] == [
        report
    ]


def test_a_shredded_message_leaves_nothing_to_match(tmp_path: Path, inbox: InboxStore) -> None:
    """Shredding deletes the message's index entries with its key; no word was ever written
    in the clear."""
    report = _put(inbox, 1, REPORT)
    assert [m.message_id for m in inbox.search("testovic")] == [report]  # indexed now
    for file in tmp_path.iterdir():
        data = file.read_bytes()
        assert b"TESTOVI" not in data, file.name
        assert b"testovic" not in data, file.name
    assert inbox.shred_expired(T0 + dt.timedelta(days=1)) == (report,)
    assert inbox.search("testovic") == ()
    with sqlite3.connect(tmp_path / "inbox.sqlite3") as conn:
        left = conn.execute(
            "SELECT count(*) FROM search_terms WHERE message_id = ?", (report,)
        ).fetchone()
    assert left == (0,)


def _pending(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT message_id FROM search_pending")]


def test_storing_only_notes_a_message_and_indexing_comes_after(
    tmp_path: Path, inbox: InboxStore
) -> None:
    """A stored message waits to be indexed (delivery never pays for it); the idle indexer
    takes a few at a time, and a search indexes whatever is still waiting before it looks;
    a message shredded while waiting leaves nothing either."""
    path = tmp_path / "inbox.sqlite3"
    first, second, third = (_put(inbox, n, REPORT) for n in (1, 2, 3))
    assert sorted(_pending(path)) == sorted([first, second, third])
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM search_terms").fetchone() == (0,)

    assert inbox.index_pending(limit=1) == 1
    assert len(_pending(path)) == 2
    assert inbox.shred_expired(T0 + dt.timedelta(days=2)) == (first, second)
    assert _pending(path) == [third]
    assert [m.message_id for m in inbox.search("testovic")] == [third]
    assert _pending(path) == []
    assert inbox.index_pending() == 0


def test_an_inbox_of_version_5_gets_its_unindexed_messages_indexed(
    tmp_path: Path, sealer: Sealer
) -> None:
    """Messages a version-5 inbox never indexed (stored before its index existed) become
    findable after the upgrade."""
    path = tmp_path / "inbox.sqlite3"
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        report = _put(store, 1, REPORT)
    as_left_by_version(path, 5)
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        assert _pending(path) == [report]
        assert [m.message_id for m in store.search("ТЕСТОВИЋ")] == [report]
