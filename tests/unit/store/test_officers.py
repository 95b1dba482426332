"""The adapter's officers: each proves who they are with their own token, and may do only what
their roles allow; tokens are never stored, and a disabled officer stays on record."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import errors
from broker.store import InboxStore, Sealer
from broker.store.officers import Role

from .conftest import as_left_by_version

T0 = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(days=1)


@pytest.fixture
def inbox(tmp_path: Path, sealer: Sealer) -> Iterator[InboxStore]:
    """An inbox whose first officer, an administrator, is there already."""
    path = tmp_path / "inbox.sqlite"
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        store.officers.add(
            "ops.lead", agency="NCA", unit="IT", roles=[Role.ADMIN], now=T0, by="ops"
        )
        yield store


def test_an_officer_authenticates_with_their_own_token_for_their_roles(
    inbox: InboxStore,
) -> None:
    officers = inbox.officers
    token = officers.add(
        "a.jones",
        agency="NCA",
        unit="Organised Immigration Crime",
        roles=[Role.READ],
        now=T0,
        by="ops",
    )
    other = officers.add(
        "b.smith", agency="BF", unit="Maritime", roles=[Role.SUBMIT], now=T0, by="ops"
    )
    assert token.startswith("xbo_")
    assert len(token) == 4 + 43
    officer = officers.authenticate("a.jones", token, role=Role.READ)
    assert (officer.agency, officer.unit) == ("NCA", "Organised Immigration Crime")
    assert officer.label == "a.jones (NCA, Organised Immigration Crime)"
    with pytest.raises(errors.AccessError, match="does not hold the submit role"):
        officers.authenticate("a.jones", token, role=Role.SUBMIT)
    for officer_id, wrong in [("a.jones", other), ("a.jones", token[:-1]), ("nobody", token)]:
        with pytest.raises(errors.AccessError, match="unknown id or wrong token"):
            officers.authenticate(officer_id, wrong, role=Role.READ)


def test_tokens_are_not_stored_and_a_reissue_replaces_the_old_one(
    inbox: InboxStore, tmp_path: Path
) -> None:
    token = inbox.officers.add(
        "a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0, by="ops"
    )
    assert token.encode() not in (tmp_path / "inbox.sqlite").read_bytes()
    fresh = inbox.officers.reissue("a.jones", now=T0, by="ops")
    assert fresh != token
    inbox.officers.authenticate("a.jones", fresh, role=Role.READ)
    with pytest.raises(errors.AccessError):
        inbox.officers.authenticate("a.jones", token, role=Role.READ)
    with pytest.raises(errors.UsageError, match="no officer"):
        inbox.officers.reissue("nobody", now=T0, by="ops")


def test_a_disabled_officer_cannot_authenticate_but_stays_listed(inbox: InboxStore) -> None:
    token = inbox.officers.add(
        "a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0, by="ops"
    )
    inbox.officers.disable("a.jones", now=T0, by="ops")
    with pytest.raises(errors.AccessError, match="disabled"):
        inbox.officers.authenticate("a.jones", token, role=Role.READ)
    (listed,) = [o for o in inbox.officers.all() if o.officer_id == "a.jones"]
    assert listed.disabled_at == T0
    with pytest.raises(errors.UsageError, match="no enabled officer"):
        inbox.officers.disable("a.jones", now=T0, by="ops")


@pytest.mark.parametrize(
    ("officer_id", "agency", "unit", "roles"),
    [
        ("A.Jones", "NCA", "OIC", [Role.READ]),  # upper case
        ("", "NCA", "OIC", [Role.READ]),
        ("a" * 65, "NCA", "OIC", [Role.READ]),
        ("a.jones", "", "OIC", [Role.READ]),
        ("a.jones", "NCA", " OIC", [Role.READ]),
        ("a.jones", "NCA", "O\nIC", [Role.READ]),
        ("a.jones", "NCA", "OIC", []),
    ],
)
def test_invalid_officers_are_refused(
    inbox: InboxStore, officer_id: str, agency: str, unit: str, roles: list[Role]
) -> None:
    with pytest.raises(errors.UsageError):
        inbox.officers.add(officer_id, agency=agency, unit=unit, roles=roles, now=T0, by="ops")
    assert [o.officer_id for o in inbox.officers.all()] == ["ops.lead"]


def test_an_officer_id_is_added_once(inbox: InboxStore) -> None:
    inbox.officers.add("a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0, by="ops")
    with pytest.raises(errors.UsageError, match="exists already"):
        inbox.officers.add("a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0, by="ops")


def test_an_inbox_of_version_8_is_upgraded_with_no_officers(tmp_path: Path, sealer: Sealer) -> None:
    path = tmp_path / "inbox.sqlite"
    InboxStore.open(path, recipient="RS", sealer=sealer, dedup_retention=WINDOW).close()
    as_left_by_version(path, 8)
    with pytest.raises(sqlite3.OperationalError):
        sqlite3.connect(path).execute("SELECT * FROM officers")
    with InboxStore.open(path, recipient="RS", sealer=sealer, dedup_retention=WINDOW) as inbox:
        assert not inbox.officers.enabled
        inbox.officers.add(
            "a.jones", agency="NCA", unit="OIC", roles=[Role.ADMIN], now=T0, by="ops"
        )
        assert inbox.officers.enabled


def test_the_directory_always_keeps_an_admin_and_logs_every_change(
    tmp_path: Path, sealer: Sealer
) -> None:
    """The first officer must be an admin, the last enabled admin cannot be disabled (nobody
    could change the directory again), and each change is logged with who made it."""
    path = tmp_path / "inbox.sqlite"
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as inbox:
        with pytest.raises(errors.UsageError, match="first officer must hold the admin role"):
            inbox.officers.add(
                "a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0, by="root"
            )
        inbox.officers.add("lead", agency="NCA", unit="IT", roles=[Role.ADMIN], now=T0, by="root")
        inbox.officers.add(
            "a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0, by="lead (NCA, IT)"
        )
        with pytest.raises(errors.UsageError, match="last enabled admin"):
            inbox.officers.disable("lead", now=T0, by="lead (NCA, IT)")
        inbox.officers.reissue("a.jones", now=T0, by="lead (NCA, IT)")
        inbox.officers.disable("a.jones", now=T0, by="lead (NCA, IT)")
        assert [(c.changed_by, c.action, c.officer_id) for c in inbox.officers.changes()] == [
            ("root", "add admin", "lead"),
            ("lead (NCA, IT)", "add read", "a.jones"),
            ("lead (NCA, IT)", "reissue", "a.jones"),
            ("lead (NCA, IT)", "disable", "a.jones"),
        ]


def test_an_inbox_of_version_9_is_upgraded_and_its_messages_have_no_origin(
    tmp_path: Path, sealer: Sealer
) -> None:
    path = tmp_path / "inbox.sqlite"
    InboxStore.open(path, recipient="RS", sealer=sealer, dedup_retention=WINDOW).close()
    as_left_by_version(path, 9)
    with InboxStore.open(path, recipient="RS", sealer=sealer, dedup_retention=WINDOW) as inbox:
        assert inbox.list() == ()
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(messages)")]
    assert columns[-1] == "origin"
