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
    path = tmp_path / "inbox.sqlite"
    with InboxStore.open(path, recipient="GB", sealer=sealer, dedup_retention=WINDOW) as store:
        yield store


def test_an_officer_authenticates_with_their_own_token_for_their_roles(
    inbox: InboxStore,
) -> None:
    officers = inbox.officers
    assert not inbox.officers.enabled
    token = officers.add(
        "a.jones", agency="NCA", unit="Organised Immigration Crime", roles=[Role.READ], now=T0
    )
    other = officers.add("b.smith", agency="BF", unit="Maritime", roles=[Role.SUBMIT], now=T0)
    assert officers.enabled
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
    token = inbox.officers.add("a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0)
    assert token.encode() not in (tmp_path / "inbox.sqlite").read_bytes()
    fresh = inbox.officers.reissue("a.jones")
    assert fresh != token
    inbox.officers.authenticate("a.jones", fresh, role=Role.READ)
    with pytest.raises(errors.AccessError):
        inbox.officers.authenticate("a.jones", token, role=Role.READ)
    with pytest.raises(errors.UsageError, match="no officer"):
        inbox.officers.reissue("nobody")


def test_a_disabled_officer_cannot_authenticate_but_stays_listed(inbox: InboxStore) -> None:
    token = inbox.officers.add("a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0)
    inbox.officers.disable("a.jones", now=T0)
    with pytest.raises(errors.AccessError, match="disabled"):
        inbox.officers.authenticate("a.jones", token, role=Role.READ)
    (listed,) = inbox.officers.all()
    assert listed.disabled_at == T0
    with pytest.raises(errors.UsageError, match="no enabled officer"):
        inbox.officers.disable("a.jones", now=T0)


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
        inbox.officers.add(officer_id, agency=agency, unit=unit, roles=roles, now=T0)
    assert not inbox.officers.enabled


def test_an_officer_id_is_added_once(inbox: InboxStore) -> None:
    inbox.officers.add("a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0)
    with pytest.raises(errors.UsageError, match="exists already"):
        inbox.officers.add("a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0)


def test_an_inbox_of_version_8_is_upgraded_with_no_officers(tmp_path: Path, sealer: Sealer) -> None:
    path = tmp_path / "inbox.sqlite"
    InboxStore.open(path, recipient="RS", sealer=sealer, dedup_retention=WINDOW).close()
    as_left_by_version(path, 8)
    with pytest.raises(sqlite3.OperationalError):
        sqlite3.connect(path).execute("SELECT * FROM officers")
    with InboxStore.open(path, recipient="RS", sealer=sealer, dedup_retention=WINDOW) as inbox:
        assert not inbox.officers.enabled
        inbox.officers.add("a.jones", agency="NCA", unit="OIC", roles=[Role.READ], now=T0)
        assert inbox.officers.enabled
