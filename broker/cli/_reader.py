"""Who is running a command that shows received content: an authenticated officer, or, on an
adapter with no officers, the operating-system account (docs/OFFICERS.md).

Until an officer is added, the reader of the read log is the operating-system account. From
then on each such command needs ``--officer ID`` (or ``BROKER_OFFICER``) and that officer's
token (``BROKER_OFFICER_TOKEN``, or typed at a hidden prompt on a terminal); the officer must
hold the role, and be in a unit every ``restrict-to-units`` condition of the view names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import pwd
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from broker import errors
from broker.config import AdapterConfig, load_config
from broker.crypto import AeadSealer
from broker.schema import parse_message
from broker.schema.handling import HandlingCondition
from broker.store import InboxStore
from broker.store.officers import Officer, Role, check_units

__all__ = [
    "Reader",
    "inbox_of",
    "officer_option",
    "policy_signer_option",
    "reading_as",
    "releasing_as",
    "signing_policy_as",
    "submitting_as",
]

_TOKEN_ENV = "BROKER_OFFICER_TOKEN"  # noqa: S105 - the variable's name, not a secret
_F = TypeVar("_F", bound=Callable[..., Any])


def officer_option(dest: str = "officer_id") -> Callable[[_F], _F]:
    """The ``--officer`` option every command acting for a person takes, passed as ``dest``."""
    return click.option(
        "--officer",
        dest,
        envvar="BROKER_OFFICER",
        default=None,
        help="Your officer id on this adapter (required once it has officers); your token "
        f"comes from {_TOKEN_ENV}, or a hidden prompt on a terminal.",
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Reader:
    """Who is reading: an authenticated officer, or (an adapter with no officers) the
    operating-system account."""

    officer: Officer | None
    name: str

    def may_see(self, conditions: Iterable[HandlingCondition], *, message_id: str) -> None:
        """Return if this reader may see a view with these handling conditions."""
        if self.officer is not None:
            check_units(self.officer, conditions, message_id=message_id)

    def may_find(self, inbox: InboxStore, message_id: str) -> bool:
        """Whether a search may name ``message_id`` to this reader: not a view restricted to
        units the officer is not in (left out silently: naming it would tell what it holds)."""
        if self.officer is None:
            return True
        conditions = parse_message(inbox.get(message_id)).handling_conditions
        try:
            check_units(self.officer, conditions, message_id=message_id)
        except errors.AccessError:
            return False
        return True


def reading_as(inbox: InboxStore, officer_id: str | None, *, role: Role = Role.READ) -> Reader:
    """Authenticate the person running the command, before any content is decrypted."""
    directory = inbox.officers
    if officer_id is None:
        if directory.enabled:
            raise errors.AccessError(
                "this adapter has officers: name yours with --officer (or BROKER_OFFICER)"
            )
        return Reader(None, _account())
    officer = directory.authenticate(officer_id, _token(officer_id), role=role)
    return Reader(officer, officer.label)


def inbox_of(config: AdapterConfig) -> InboxStore:
    """The inbox named by the adapter's configuration (it must exist: the daemon made it)."""
    store = config.store
    if not store.path.exists():
        raise errors.UsageError(f"{store.path}: no inbox yet (has the adapter run?)")
    return InboxStore.open(
        store.path,
        recipient=config.partner,
        sealer=AeadSealer(),
        dedup_retention=dt.timedelta(seconds=config.limits.replay_window_seconds),
    )


def submitting_as(config: AdapterConfig, officer_id: str | None) -> str | None:
    """The officer queuing a message, authenticated with the ``submit`` role before anything
    is queued; None on an adapter with no officers (its inbox may not exist yet)."""
    if officer_id is None and not config.store.path.exists():
        return None
    with inbox_of(config) as inbox:
        submitter = reading_as(inbox, officer_id, role=Role.SUBMIT)
    return None if submitter.officer is None else submitter.officer.officer_id


def releasing_as(config: AdapterConfig, officer_id: str | None) -> str:
    """The officer releasing a held submission, authenticated with the ``approve`` role:
    four-eyes release needs officers, so an adapter with none has nobody to release."""
    with inbox_of(config) as inbox:
        releaser = reading_as(inbox, officer_id, role=Role.APPROVE)
    if releaser.officer is None:
        raise errors.AccessError("this adapter has no officers: nobody can release")
    return releaser.officer.officer_id


def policy_signer_option(command: _F) -> _F:
    """``--adapter-config`` and ``--officer``, for the commands that sign with a policy key
    on an adapter's host (``policy sign``, ``suspend``, ``resume``, ``terminate``)."""
    command = officer_option()(command)
    return click.option(
        "--adapter-config",
        "adapter_config",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Sign as an officer of this adapter: one with the sign-policy role, once it has "
        "officers (on a host where officers share the policy key).",
    )(command)


def signing_policy_as(adapter_config: str | None, officer_id: str | None) -> str | None:
    """The officer signing with a policy key on an adapter's host, authenticated with the
    ``sign-policy`` role before the key is opened; None without an adapter configuration, or
    on an adapter with no officers."""
    if adapter_config is None:
        if officer_id is not None:
            raise errors.UsageError("--officer names an officer of the adapter --adapter-config")
        return None
    config = load_config(adapter_config, AdapterConfig)
    if officer_id is None and not config.store.path.exists():
        return None
    with inbox_of(config) as inbox:
        signer = reading_as(inbox, officer_id, role=Role.SIGN_POLICY)
    return None if signer.officer is None else signer.officer.label


def _account() -> str:
    """The operating-system account running the command, from its uid, never from $USER or
    $LOGNAME, which anyone can set."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (a container): name the uid
        return f"uid {uid}"


def _token(officer_id: str) -> str:
    token = os.environ.get(_TOKEN_ENV)
    if token:
        return token
    if not sys.stdin.isatty():
        raise errors.AccessError(
            f"officer {officer_id}: no token (set {_TOKEN_ENV}, or run on a terminal)"
        )
    return str(click.prompt(f"token for officer {officer_id}", hide_input=True, err=True))
