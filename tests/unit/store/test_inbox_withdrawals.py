"""Withdrawals at the inbox: what they shred, when, and what they may never touch."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import errors
from broker.store import InboxStore, Sealer, Withdrawn

from .conftest import as_left_by_version
from .test_inbox import SECRET, T0, WINDOW, mid
from .test_inbox_evidence import EVIDENCE, item

LATER = T0 + dt.timedelta(hours=1)


@pytest.fixture
def inbox(tmp_path: Path, sealer: Sealer) -> Iterator[InboxStore]:
    path = tmp_path / "inbox.sqlite"
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        yield store


def notice(n: int, *, by: str = "RS", replaced_by: str | None = None) -> Withdrawn:
    return Withdrawn(mid(n), by, mid(100 + n), "source retracted", replaced_by)


def test_a_withdrawal_shreds_its_view_content_and_evidence_with_the_reason(
    inbox: InboxStore,
) -> None:
    inbox.put_many([item(1), item(2)])
    assert inbox.apply_withdrawals([notice(1)], now=LATER) == (mid(1),)
    meta = inbox.metadata(mid(1))
    assert meta.shredded_at == LATER
    assert meta.shred_reason == f"withdrawn by RS ({mid(101)}): source retracted"
    with pytest.raises(errors.UsageError):
        inbox.get(mid(1))
    with pytest.raises(errors.UsageError):
        inbox.evidence(mid(1))
    assert inbox.get(mid(2)) == SECRET  # the other view is untouched


def test_a_correction_names_the_view_that_replaces_it(inbox: InboxStore) -> None:
    inbox.put_many([item(1)])
    inbox.apply_withdrawals([notice(1, replaced_by=mid(7))], now=LATER)
    assert inbox.metadata(mid(1)).shred_reason == (
        f"corrected by RS ({mid(101)}), replaced by {mid(7)}: source retracted"
    )


def test_a_redelivered_withdrawal_changes_nothing(inbox: InboxStore) -> None:
    inbox.put_many([item(1)])
    inbox.apply_withdrawals([notice(1)], now=LATER)
    assert inbox.apply_withdrawals([notice(1)], now=LATER + dt.timedelta(hours=1)) == ()
    assert inbox.metadata(mid(1)).shredded_at == LATER


def test_a_withdrawal_that_arrives_first_shreds_its_view_on_arrival(inbox: InboxStore) -> None:
    assert inbox.apply_withdrawals([notice(1)], now=T0) == ()
    inbox.put_many([item(1)])
    assert inbox.apply_withdrawals([], arrived=[(mid(1), "RS")], now=LATER) == (mid(1),)
    assert inbox.metadata(mid(1)).shred_reason is not None


def test_a_waiting_withdrawal_from_another_partner_never_binds_the_view(
    inbox: InboxStore,
) -> None:
    # MK names an id before RS's view of that id arrives: it stays MK's, and RS's view is kept
    inbox.apply_withdrawals([notice(1, by="MK")], now=T0)
    inbox.put_many([item(1)])
    assert inbox.apply_withdrawals([], arrived=[(mid(1), "RS")], now=LATER) == ()
    assert inbox.get(mid(1)) == SECRET
    # and RS can still withdraw its own view afterwards
    assert inbox.apply_withdrawals([notice(1)], now=LATER) == (mid(1),)


def test_a_withdrawal_never_shreds_a_view_of_another_sender(inbox: InboxStore) -> None:
    """A notice binds only its own sender's view (the adapter also raises a security alert)."""
    inbox.put_many([item(1)])
    assert inbox.originators([mid(1), mid(9)]) == {mid(1): "RS"}
    assert inbox.apply_withdrawals([notice(1, by="MK")], now=LATER) == ()
    assert inbox.get(mid(1)) == SECRET


def test_an_inbox_of_version_6_is_upgraded_and_takes_withdrawals(
    tmp_path: Path, sealer: Sealer
) -> None:
    path = tmp_path / "inbox.sqlite"
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        store.put_many([dataclasses.replace(item(1), evidence=EVIDENCE)])
    as_left_by_version(path, 6)
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        assert store.get(mid(1)) == SECRET
        assert store.apply_withdrawals([notice(1)], now=LATER) == (mid(1),)


def test_a_waiting_withdrawal_is_forgotten_past_the_de_duplication_window(
    inbox: InboxStore,
) -> None:
    """A hostile partner's notices for ids that never come cannot pile up for ever: past the
    window no view created before the notice can still be accepted."""
    inbox.apply_withdrawals([notice(1, by="MK"), notice(2)], now=T0)
    inbox.shred_expired(T0 + WINDOW - dt.timedelta(seconds=1))
    inbox.put_many([item(2)])
    assert inbox.apply_withdrawals([], arrived=[(mid(2), "RS")], now=T0) == (mid(2),)
    inbox.apply_withdrawals([notice(3)], now=T0)
    inbox.shred_expired(T0 + WINDOW + dt.timedelta(seconds=1))
    inbox.put_many([dataclasses.replace(item(3), received_at=LATER)])
    assert inbox.apply_withdrawals([], arrived=[(mid(3), "RS")], now=LATER) == ()


def test_an_inbox_of_version_7_is_upgraded_and_logs_reads(tmp_path: Path, sealer: Sealer) -> None:
    """Version 8 adds the read log; an older inbox starts it empty."""
    path = tmp_path / "inbox.sqlite"
    InboxStore.open(path, recipient="RS", sealer=sealer, dedup_retention=WINDOW).close()
    as_left_by_version(path, 7)
    with InboxStore.open(path, recipient="RS", sealer=sealer, dedup_retention=WINDOW) as inbox:
        assert inbox.reads.of("01900000-0000-7000-8000-000000000001") == ()
        inbox.reads.note(["01900000-0000-7000-8000-000000000001"], reader="alice", action="show",
                         now=dt.datetime(2026, 12, 6, tzinfo=dt.UTC))  # fmt: skip
        (read,) = inbox.reads.of("01900000-0000-7000-8000-000000000001")
        assert (read.reader, read.action) == ("alice", "show")
