"""The send journal keeps sealed bytes across restarts until acknowledged; the inbox sealer
is an AEAD: what it seals opens only with the same key and associated data."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import errors
from broker.adapter import SendJournal
from broker.adapter.fates import Acknowledged
from broker.crypto import AeadSealer
from broker.ids import MessageId, PartnerCode

from .world import NOW

A = MessageId("01900000-0000-7000-8000-000000000001")
B = MessageId("01900000-0000-7000-8000-000000000002")
RS = PartnerCode("RS")
MID = MessageId("01900000-0000-7000-8000-000000000001")


def test_a_restart_resends_the_same_bytes(tmp_path: pathlib.Path) -> None:
    """What was journalled and not acknowledged survives a restart byte for byte, in order."""
    path = tmp_path / "journal.sqlite"
    with SendJournal.open(path) as journal:
        journal.record(
            [(A, RS, "xb.outbox.GB", b"first"), (B, RS, "xb.outbox.GB", b"second")],
            source=None,
            now=NOW,
        )
        journal.attempted(A)
    with SendJournal.open(path) as journal:
        pending = journal.pending()
        assert [(e.message_id, e.envelope, e.attempts) for e in pending] == [
            (A, b"first", 1),
            (B, b"second", 0),
        ]
        journal.acknowledge(Acknowledged(A, "xb.outbox.GB", 0, 0), now=NOW)
    with SendJournal.open(path) as journal:
        assert [e.message_id for e in journal.pending()] == [B]


def test_a_source_is_journalled_once(tmp_path: pathlib.Path) -> None:
    """Recording the same source twice records nothing the second time."""
    with SendJournal.open(tmp_path / "j.sqlite") as journal:
        assert journal.record([(A, RS, "t", b"x")], source="spool:f", now=NOW)
        assert not journal.record([(B, RS, "t", b"y")], source="spool:f", now=NOW)
        assert len(journal) == 1
        assert journal.has_source("spool:f")


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: pathlib.Path) -> None:
    """A stray file gives a usage error naming it, not a traceback."""
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(errors.UsageError, match=r"j\.sqlite"):
        SendJournal.open(path)


def test_the_journal_file_is_private(tmp_path: pathlib.Path) -> None:
    """Sealed envelopes are not secret, but their metadata is: the file is mode 0600."""
    path = tmp_path / "j.sqlite"
    SendJournal.open(path).close()
    assert path.stat().st_mode & 0o077 == 0


KEY = bytes(range(32))


@given(plaintext=st.binary(max_size=2000), aad=st.binary(max_size=64))
def test_sealed_data_opens_with_the_same_key_and_aad(plaintext: bytes, aad: bytes) -> None:
    """Round trip for any plaintext and associated data."""
    sealer = AeadSealer()
    assert sealer.open(KEY, sealer.seal(KEY, plaintext, aad=aad), aad=aad) == plaintext


@given(position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_change_to_a_sealed_message_is_detected(position: int, bit: int) -> None:
    """A flipped bit anywhere (version, nonce, ciphertext, tag) is one opaque error."""
    sealer = AeadSealer()
    sealed = bytearray(sealer.seal(KEY, b"a stored message", aad=b"id"))
    sealed[position % len(sealed)] ^= 1 << bit
    with pytest.raises(errors.DecryptionError):
        sealer.open(KEY, bytes(sealed), aad=b"id")


@pytest.mark.parametrize(
    ("name", "key", "aad"),
    [("another key", bytes(32), b"id"), ("another row", KEY, b"other-id")],
)
def test_wrong_key_or_aad_does_not_open(name: str, key: bytes, aad: bytes) -> None:
    """A ciphertext moved to another row, or opened with another key, fails."""
    sealer = AeadSealer()
    sealed = sealer.seal(KEY, b"a stored message", aad=b"id")
    with pytest.raises(errors.DecryptionError):
        sealer.open(key, sealed, aad=aad)


def test_the_same_plaintext_seals_differently_each_time() -> None:
    """A fresh nonce per seal: equal plaintexts are not visible as equal ciphertexts."""
    sealer = AeadSealer()
    assert sealer.seal(KEY, b"same", aad=b"") != sealer.seal(KEY, b"same", aad=b"")


def test_a_version_1_journal_is_upgraded_and_its_unnamed_envelopes_hold_every_source(
    tmp_path: pathlib.Path,
) -> None:
    """Envelopes journalled before sources were named keep waiting; while one does, no spool
    source counts as settled (its sent/ copy might be that envelope's)."""
    path = tmp_path / "journal.sqlite"
    with SendJournal.open(path) as journal:
        journal.record([(MID, RS, "xb.outbox.GB", b"sealed")], source=None, now=NOW)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("DROP TABLE views")  # version 3 keeps each view's fate
    for column in ("gateway_header_name", "gateway_header"):  # version 4: a header beside it
        raw.execute(f"ALTER TABLE pending DROP COLUMN {column}")
    raw.execute("DROP INDEX pending_source")
    raw.execute("ALTER TABLE pending DROP COLUMN source")
    raw.execute("PRAGMA user_version = 1")
    raw.close()
    with SendJournal.open(path) as journal:
        (entry,) = journal.pending()
        assert (entry.message_id, entry.source) == (MID, None)
        assert not journal.settled("spool:a.json:" + "0" * 64)
        journal.acknowledge(Acknowledged(MID, "xb.outbox.GB", 0, 0), now=NOW)
        assert journal.settled("spool:a.json:" + "0" * 64)
