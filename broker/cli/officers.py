"""``broker officers``: the people of this partner's agencies who use its adapter, each with
their own token and roles (docs/OFFICERS.md)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from broker import errors
from broker.cli._reader import officer_option, reading_as
from broker.cli.adapter import open_inbox, registry_on_file
from broker.clock import SystemClock, format_instant
from broker.config import AdapterConfig, load_config
from broker.pipeline.units import unlisted_unit
from broker.store import InboxStore
from broker.store.officers import Role

__all__ = ["officers_group"]

_F = TypeVar("_F", bound=Callable[..., Any])


@click.group("officers")
def officers_group() -> None:
    """The officers who use this adapter: add, list, reissue a token, disable."""


_CONFIG = click.option(
    "--config",
    "config_path",
    required=True,
    envvar="BROKER_CONFIG",
    help="The adapter's configuration file (or BROKER_CONFIG).",
)


def _open(function: _F) -> _F:
    """Run the command on the inbox the adapter's configuration names."""

    @functools.wraps(function)
    def wrapper(config_path: str, **kwargs: Any) -> Any:
        with open_inbox(config_path) as inbox:
            return function(inbox, **kwargs)

    return wrapper  # type: ignore[return-value]


@officers_group.command("add")
@_CONFIG
@click.option("--agency", required=True, help="The officer's agency, e.g. 'NCA'.")
@click.option("--unit", required=True, help="The unit, as restrict-to-units conditions name it.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="A role to grant (repeat for several).",
)
@officer_option("officer")
@click.argument("officer_id")
def add_command(
    config_path: str,
    officer_id: str,
    agency: str,
    unit: str,
    roles: tuple[str, ...],
    officer: str | None,
) -> None:
    """Add OFFICER_ID and print their token, once: hand it to the officer, it is not kept.

    The first officer must hold the admin role; from then on every change to the officers
    needs an admin officer (--officer), and every command that shows content an officer.
    When the registry lists this partner's units (`registry set-units`), the agency and unit
    must be one of them: views naming another are refused."""
    with open_inbox(config_path) as inbox:
        by = reading_as(inbox, officer, role=Role.ADMIN).name
        _check_declared(load_config(config_path, AdapterConfig), agency=agency, unit=unit)
        granted = [Role(r) for r in roles]
        token = inbox.officers.add(
            officer_id, agency=agency, unit=unit, roles=granted, now=SystemClock().now(), by=by
        )
    click.echo(
        f"officer {officer_id} added ({agency}, {unit}; {', '.join(sorted(roles))})", err=True
    )
    click.echo("their token, shown once (it is not kept; reissue it if lost):", err=True)
    click.echo(token)


def _check_declared(config: AdapterConfig, *, agency: str, unit: str) -> None:
    """Refuse a unit the registry on file does not list for this partner, before anything
    changes; a registry that cannot be read checks nothing (said on stderr)."""
    registry = registry_on_file(config)
    if registry is None:
        click.echo(
            f"warning: {config.registry.path} cannot be read: the unit is not checked against "
            "the units the registry lists",
            err=True,
        )
        return
    if config.partner not in registry.partners:
        click.echo(
            f"warning: {config.registry.path} does not list {config.partner}: the unit is not "
            "checked",
            err=True,
        )
        return
    unlisted = unlisted_unit(registry, config.partner, agency, unit)
    if unlisted is not None:
        raise errors.UsageError(f"{unlisted}: ask the registry's root holders to add it first")


@officers_group.command("reissue")
@_CONFIG
@officer_option("officer")
@click.argument("officer_id")
@_open
def reissue_command(inbox: InboxStore, officer_id: str, officer: str | None) -> None:
    """Print a new token for OFFICER_ID, once; the old one stops working (an admin officer
    only)."""
    by = reading_as(inbox, officer, role=Role.ADMIN).name
    token = inbox.officers.reissue(officer_id, now=SystemClock().now(), by=by)
    click.echo(f"officer {officer_id}: new token, shown once:", err=True)
    click.echo(token)


@officers_group.command("disable")
@_CONFIG
@officer_option("officer")
@click.argument("officer_id")
@_open
def disable_command(inbox: InboxStore, officer_id: str, officer: str | None) -> None:
    """Stop OFFICER_ID from authenticating; they stay listed, as the read log names them (an
    admin officer only; never the last enabled admin)."""
    by = reading_as(inbox, officer, role=Role.ADMIN).name
    inbox.officers.disable(officer_id, now=SystemClock().now(), by=by)
    click.echo(f"officer {officer_id} disabled")


@officers_group.command("list")
@_CONFIG
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_open
def list_command(inbox: InboxStore, as_json: bool) -> None:
    """List the officers: id, agency, unit, roles, and when added or disabled."""
    for officer in inbox.officers.all():
        roles = sorted(officer.roles)
        row: dict[str, object] = {
            "officer_id": officer.officer_id,
            "agency": officer.agency,
            "unit": officer.unit,
            "roles": roles,
            "created_at": format_instant(officer.created_at),
            "disabled_at": None
            if officer.disabled_at is None
            else format_instant(officer.disabled_at),
        }
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            state = "enabled" if officer.disabled_at is None else f"disabled {row['disabled_at']}"
            click.echo(
                f"{officer.officer_id}  {officer.agency}  {officer.unit}  "
                f"{','.join(roles)}  {state}"
            )


@officers_group.command("log")
@_CONFIG
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_open
def log_command(inbox: InboxStore, as_json: bool) -> None:
    """Every change to the officers, oldest first: when, by whom, what, to whom."""
    for change in inbox.officers.changes():
        row = {
            "changed_at": format_instant(change.changed_at),
            "changed_by": change.changed_by,
            "action": change.action,
            "officer_id": change.officer_id,
        }
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            when, by = row["changed_at"], change.changed_by
            click.echo(f"{when}  {change.action:<24}  {change.officer_id}  by {by}")
