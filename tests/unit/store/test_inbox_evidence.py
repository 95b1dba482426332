"""What the inbox keeps beside each message, and how it goes: the retention rule that decided
its life, its evidence (sealed under the message's key, shredded with it), and erasure."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import errors
from broker.store import InboxItem, InboxStore, Sealer

from .conftest import as_left_by_version
from .test_inbox import LABELS, SECRET, T0, WINDOW, mid

EVIDENCE = b'{"delivery":"EVIDENCE-MARKER-91c2","salts":{}}'


def item(n: int, *, days: int = 30, evidence: bytes | None = EVIDENCE) -> InboxItem:
    return InboxItem(
        message_id=mid(n),
        sender="RS",
        labels=LABELS,
        case_id=None,
        plaintext=SECRET,
        digest=hashlib.sha256(SECRET + bytes([n])).digest(),
        received_at=T0,
        retain_until=T0 + dt.timedelta(days=days),
        retention_rule="accord",
        retention_reason=f"flow RS-GB-OPS of accord gb-rs v1 keeps at most {days} days",
        evidence=evidence,
    )


@pytest.fixture
def inbox(tmp_path: Path, sealer: Sealer) -> Iterator[InboxStore]:
    path = tmp_path / "inbox.sqlite"
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        yield store


def test_the_rule_that_decided_retention_is_kept_and_listed(inbox: InboxStore) -> None:
    inbox.put_many([item(1, days=730)])
    meta = inbox.metadata(mid(1))
    assert meta.retain_until == T0 + dt.timedelta(days=730)
    assert meta.retention_rule == "accord"
    assert meta.retention_reason == "flow RS-GB-OPS of accord gb-rs v1 keeps at most 730 days"
    assert meta.shred_reason is None
    assert inbox.list()[0] == meta


def test_evidence_is_sealed_at_rest_and_read_back(tmp_path: Path, inbox: InboxStore) -> None:
    inbox.put_many([item(1)])
    assert inbox.evidence(mid(1)) == EVIDENCE
    for file in tmp_path.iterdir():
        assert b"EVIDENCE-MARKER" not in file.read_bytes(), file.name


def test_evidence_does_not_open_as_the_content_nor_the_reverse(
    tmp_path: Path, inbox: InboxStore
) -> None:
    """Each is bound to its own purpose: swapping the two ciphertexts opens neither."""
    inbox.put_many([item(1)])
    raw = sqlite3.connect(tmp_path / "inbox.sqlite", isolation_level=None)
    [(content,)] = raw.execute("SELECT ciphertext FROM messages")
    [(evidence,)] = raw.execute("SELECT sealed FROM evidence")
    raw.execute("UPDATE messages SET ciphertext = ?", (evidence,))
    raw.execute("UPDATE evidence SET sealed = ?", (content,))
    raw.close()
    with pytest.raises(errors.DecryptionError):
        inbox.get(mid(1))
    with pytest.raises(errors.DecryptionError):
        inbox.evidence(mid(1))


def test_shredding_deletes_the_evidence_with_the_key(tmp_path: Path, inbox: InboxStore) -> None:
    inbox.put_many([item(1, days=1), item(2, days=30)])
    assert inbox.shred_expired(T0 + dt.timedelta(days=1)) == (mid(1),)
    with pytest.raises(errors.UsageError, match="shredded"):
        inbox.evidence(mid(1))
    assert inbox.evidence(mid(2)) == EVIDENCE
    raw = sqlite3.connect(tmp_path / "inbox.sqlite")
    assert raw.execute("SELECT message_id FROM evidence").fetchall() == [(mid(2),)]
    raw.close()


def test_a_message_stored_without_evidence_says_it_cannot_be_disclosed(
    inbox: InboxStore,
) -> None:
    inbox.put_many([item(1, evidence=None)])
    with pytest.raises(errors.UsageError, match="without its evidence"):
        inbox.evidence(mid(1))


class TestErasure:
    """``erase`` shreds one message now, before its retention ends, with its reason."""

    def test_an_erased_message_is_shredded_with_its_reason(self, inbox: InboxStore) -> None:
        inbox.put_many([item(1), item(2)])
        later = T0 + dt.timedelta(hours=3)
        meta = inbox.erase(mid(1), now=later, reason="  data subject's request\n ref 17 ")
        assert meta.shredded_at == later
        assert meta.shred_reason == "by erasure: data subject's request ref 17"
        with pytest.raises(errors.UsageError, match="by erasure: data subject's request"):
            inbox.get(mid(1))
        with pytest.raises(errors.UsageError, match="shredded"):
            inbox.evidence(mid(1))
        assert inbox.get(mid(2)) == SECRET
        assert inbox.shredded_among([mid(1), mid(2), mid(3)]) == {mid(1)}

    @pytest.mark.parametrize(
        ("n", "reason", "match"),
        [
            (1, "", "needs a reason"),
            (1, " \n ", "needs a reason"),
            (1, "x" * 2001, "needs a reason"),
            (9, "asked", "no message"),
        ],
        ids=["empty", "blank", "too long", "unknown"],
    )
    def test_bad_erasures_are_refused_and_change_nothing(
        self, inbox: InboxStore, n: int, reason: str, match: str
    ) -> None:
        inbox.put_many([item(1)])
        with pytest.raises(errors.UsageError, match=match):
            inbox.erase(mid(n), now=T0, reason=reason)
        assert inbox.get(mid(1)) == SECRET

    def test_a_shredded_message_is_not_erased_again(self, inbox: InboxStore) -> None:
        inbox.put_many([item(1, days=1)])
        inbox.shred_expired(T0 + dt.timedelta(days=1))
        with pytest.raises(errors.UsageError, match="shredded already"):
            inbox.erase(mid(1), now=T0 + dt.timedelta(days=2), reason="asked")
        assert inbox.metadata(mid(1)).shred_reason is None  # retention's, untouched


def test_an_inbox_of_version_3_is_upgraded_and_keeps_its_messages(
    tmp_path: Path, sealer: Sealer
) -> None:
    """Its messages stay readable, with no rule recorded (none was) and no evidence."""
    path = tmp_path / "inbox.sqlite"
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        store.put_many([dataclasses.replace(item(1), retention_rule=None, evidence=None)])
    as_left_by_version(path, 3)
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        assert store.get(mid(1)) == SECRET
        assert store.metadata(mid(1)).retention_rule is None
        with pytest.raises(errors.UsageError, match="without its evidence"):
            store.evidence(mid(1))
        store.put_many([item(2)])
        assert store.evidence(mid(2)) == EVIDENCE
