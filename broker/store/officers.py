"""The officers of this partner who use its adapter: who they are, their agency and unit, what
they may do, and the credential each proves it with.

One identity per country cannot say which person read a view (DPA 2018 s.62 asks for "the
person") nor keep a view to the units its handling condition names. So each officer has their
own entry in the adapter's store, added by the adapter's operator:

- ``officer_id`` (lower-case letters, digits, ``.``, ``_`` and ``-``), ``agency`` and ``unit``
  (the names ``restrict-to-units`` conditions use);
- roles: ``submit`` (send), ``read`` (show, export, disclose the content of received views),
  ``approve`` (release what another officer submitted), ``sign-policy`` (sign accords),
  ``admin`` (add officers, reissue tokens, disable officers: the first officer holds it, and
  the last enabled one cannot be disabled);
- a credential: a random 256-bit token shown once when the officer is added or the token is
  reissued, never stored. The store keeps a random salt and ``SHA-256(salt || token)``; a
  token of that entropy has no dictionary to guess from, so a fast hash protects it, and it is
  compared in constant time. A disabled officer authenticates no more; the entry stays, so old
  read-log rows still name a known person.

Every change to the directory is logged (``officer_changes``: when, by whom, what, to whom).
Until the first officer is added the adapter runs as before (the operating-system account is
the reader); from then on every read of content needs an officer with the ``read`` role, and
every change to the directory an officer with the ``admin`` role.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Iterable
from typing import Final

import pydantic

from broker import errors
from broker.envelope import Origin
from broker.ids import OFFICER_ID, is_unit_name
from broker.schema.handling import HandlingCondition, RestrictToUnits
from broker.store._sqlite import from_micros, to_micros, transaction

__all__ = [
    "SCHEMA",
    "Change",
    "Officer",
    "OfficerDirectory",
    "Role",
    "check_name",
    "check_officer_id",
    "check_units",
]

#: what a token looks like: a prefix that says what it is, then 43 base64url characters
_TOKEN_PREFIX = "xbo_"  # noqa: S105 - a prefix that names the kind of secret, not a secret

SCHEMA: Final = (
    """CREATE TABLE officers (
        officer_id TEXT PRIMARY KEY,
        agency TEXT NOT NULL,
        unit TEXT NOT NULL,
        roles TEXT NOT NULL,
        salt BLOB NOT NULL,
        verifier BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        disabled_at INTEGER
    ) WITHOUT ROWID""",
    """CREATE TABLE officer_changes (
        changed_at INTEGER NOT NULL,
        changed_by TEXT NOT NULL,
        action TEXT NOT NULL,
        officer_id TEXT NOT NULL
    )""",
)


class Role(enum.StrEnum):
    """What an officer may do."""

    SUBMIT = "submit"
    READ = "read"
    APPROVE = "approve"
    SIGN_POLICY = "sign-policy"
    ADMIN = "admin"


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """One logged change to the directory."""

    changed_at: dt.datetime
    changed_by: str
    action: str
    officer_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Officer:
    """One officer's entry (never the credential)."""

    officer_id: str
    agency: str
    unit: str
    roles: frozenset[Role]
    created_at: dt.datetime
    disabled_at: dt.datetime | None

    @property
    def label(self) -> str:
        """How logs name the officer: ``<officer id> (<agency>, <unit>)``."""
        return f"{self.officer_id} ({self.agency}, {self.unit})"

    def origin(self) -> Origin:
        """What a signed header says of this officer as a view's submitter. Raises
        :class:`errors.AccessError` for an officer added under an earlier, looser name rule,
        whose agency or unit no header may carry."""
        try:
            return Origin(agency=self.agency, unit=self.unit, officer=self.officer_id)
        except pydantic.ValidationError:
            raise errors.AccessError(
                f"officer {self.label}: the agency or unit is not a name a header may carry "
                "(docs/OFFICERS.md); disable the officer and add them again"
            ) from None


def check_officer_id(value: str) -> str:
    """``value`` if it is a valid officer id; UsageError otherwise."""
    if not OFFICER_ID.fullmatch(value):
        raise errors.UsageError(
            f"an officer id is 1 to 64 lower-case letters, digits, '.', '_' or '-' starting "
            f"with a letter or digit, not {value!r}"
        )
    return value


def check_name(value: str, *, what: str) -> str:
    """``value`` if it is a valid agency or unit name; UsageError otherwise."""
    if not is_unit_name(value):
        raise errors.UsageError(
            f"{what} is 1 to 120 characters in Unicode NFC: no control, format, private-use "
            f"or separator character, and no white space but single spaces inside; not {value!r}"
        )
    return value


class OfficerDirectory:
    """The ``officers`` table of an inbox database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def enabled(self) -> bool:
        """Whether any officer was ever added: from then on, reads need an officer."""
        return self._conn.execute("SELECT 1 FROM officers LIMIT 1").fetchone() is not None

    def add(
        self,
        officer_id: str,
        *,
        agency: str,
        unit: str,
        roles: Iterable[Role],
        now: dt.datetime,
        by: str,
    ) -> str:
        """Add an officer (``by`` names who did, for the change log); their token (shown
        once: it is not kept). UsageError if the id is taken or a field is invalid, or if
        this first officer would not hold the admin role (nobody could add the next)."""
        check_officer_id(officer_id)
        check_name(agency, what="an agency")
        check_name(unit, what="a unit")
        granted = frozenset(roles)
        if not granted:
            raise errors.UsageError("an officer needs at least one role")
        if Role.ADMIN not in granted and not self.enabled:
            raise errors.UsageError(
                "the first officer must hold the admin role: from then on only an admin "
                "officer changes the directory"
            )
        token, salt, verifier = _new_credential()
        with transaction(self._conn, what="add an officer"):
            try:
                self._conn.execute(
                    "INSERT INTO officers VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    (
                        officer_id,
                        agency,
                        unit,
                        ",".join(sorted(granted)),
                        salt,
                        verifier,
                        to_micros(now),
                    ),
                )
            except sqlite3.IntegrityError:
                raise errors.UsageError(f"officer {officer_id} exists already") from None
            self._log(now, by, f"add {','.join(sorted(granted))}", officer_id)
        return token

    def reissue(self, officer_id: str, *, now: dt.datetime, by: str) -> str:
        """A new token for ``officer_id`` (the old one stops working); UsageError if unknown."""
        token, salt, verifier = _new_credential()
        with transaction(self._conn, what="reissue an officer's token"):
            changed = self._conn.execute(
                "UPDATE officers SET salt = ?, verifier = ? WHERE officer_id = ?",
                (salt, verifier, officer_id),
            ).rowcount
            if not changed:
                raise errors.UsageError(f"no officer {officer_id}")
            self._log(now, by, "reissue", officer_id)
        return token

    def disable(self, officer_id: str, *, now: dt.datetime, by: str) -> None:
        """Stop ``officer_id`` from authenticating (the entry stays, for the read log); never
        the last enabled admin, or nobody could change the directory again."""
        with transaction(self._conn, what="disable an officer"):
            changed = self._conn.execute(
                "UPDATE officers SET disabled_at = ? WHERE officer_id = ? AND disabled_at IS NULL",
                (to_micros(now), officer_id),
            ).rowcount
            if not changed:
                raise errors.UsageError(f"no enabled officer {officer_id}")
            if not any(Role.ADMIN in o.roles and o.disabled_at is None for o in self.all()):
                raise errors.UsageError(
                    f"{officer_id} is the last enabled admin: add another first"
                )
            self._log(now, by, "disable", officer_id)

    def changes(self) -> tuple[Change, ...]:
        """Every change to the directory, oldest first."""
        rows = self._conn.execute(
            "SELECT changed_at, changed_by, action, officer_id FROM officer_changes ORDER BY rowid"
        ).fetchall()
        return tuple(Change(from_micros(int(at)), str(b), str(a), str(o)) for at, b, a, o in rows)

    def _log(self, now: dt.datetime, by: str, action: str, officer_id: str) -> None:
        self._conn.execute(
            "INSERT INTO officer_changes VALUES (?, ?, ?, ?)",
            (to_micros(now), by[:128], action, officer_id),
        )

    def all(self) -> tuple[Officer, ...]:
        """Every officer, by id."""
        rows = self._conn.execute(
            "SELECT officer_id, agency, unit, roles, created_at, disabled_at FROM officers "
            "ORDER BY officer_id"
        ).fetchall()
        return tuple(_officer(row) for row in rows)

    def holding(self, officer_id: str, role: Role) -> Officer:
        """The enabled officer ``officer_id`` holding ``role``, without a credential: for the
        daemon, which acts on what an authenticated command queued (a submission names its
        officer; ``broker send`` checked the token). AccessError otherwise."""
        row = self._conn.execute(
            "SELECT officer_id, agency, unit, roles, created_at, disabled_at FROM officers "
            "WHERE officer_id = ?",
            (officer_id,),
        ).fetchone()
        if row is None:
            raise errors.AccessError(f"officer {officer_id} is not in this adapter's directory")
        return _entitled(_officer(row), role)

    def authenticate(self, officer_id: str, token: str, *, role: Role) -> Officer:
        """The officer ``officer_id`` if ``token`` is theirs, they are enabled and they hold
        ``role``; AccessError otherwise (one message for an unknown id and a wrong token)."""
        row = self._conn.execute(
            "SELECT officer_id, agency, unit, roles, created_at, disabled_at, salt, verifier "
            "FROM officers WHERE officer_id = ?",
            (officer_id,),
        ).fetchone()
        # the same work whether or not the id exists, so timing tells no id apart
        salt, verifier = (bytes(row[6]), bytes(row[7])) if row else (b"\0" * 16, b"")
        matches = hmac.compare_digest(_verifier(salt, token), verifier)
        if row is None or not matches:
            raise errors.AccessError(f"officer {officer_id}: unknown id or wrong token")
        return _entitled(_officer(row[:6]), role)


def _entitled(officer: Officer, role: Role) -> Officer:
    if officer.disabled_at is not None:
        raise errors.AccessError(f"officer {officer.officer_id} is disabled")
    if role not in officer.roles:
        raise errors.AccessError(f"officer {officer.officer_id} does not hold the {role} role")
    return officer


def check_units(
    officer: Officer, conditions: Iterable[HandlingCondition], *, message_id: str
) -> None:
    """Return if ``officer`` may see a view with these handling ``conditions``: every
    ``restrict-to-units`` condition names the officer's unit (exactly). AccessError otherwise,
    naming the units, so the officer knows whom to ask."""
    for condition in conditions:
        if isinstance(condition, RestrictToUnits) and officer.unit not in condition.units:
            raise errors.AccessError(
                f"message {message_id} is restricted to {', '.join(condition.units)}; officer "
                f"{officer.officer_id} is in {officer.unit}"
            )


def _new_credential() -> tuple[str, bytes, bytes]:
    secret = secrets.token_bytes(32)
    token = _TOKEN_PREFIX + base64.urlsafe_b64encode(secret).decode("ascii").rstrip("=")
    salt = secrets.token_bytes(16)
    return token, salt, _verifier(salt, token)


def _verifier(salt: bytes, token: str) -> bytes:
    return hashlib.sha256(salt + token.encode("utf-8", "surrogatepass")).digest()


def _officer(row: tuple[object, ...]) -> Officer:
    officer_id, agency, unit, roles, created_at, disabled_at = row
    return Officer(
        officer_id=str(officer_id),
        agency=str(agency),
        unit=str(unit),
        roles=frozenset(Role(r) for r in str(roles).split(",")),
        created_at=from_micros(int(str(created_at))),
        disabled_at=None if disabled_at is None else from_micros(int(str(disabled_at))),
    )
