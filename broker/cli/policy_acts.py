"""`broker policy suspend|resume|terminate`: a party's signed acts on an accord.

Each command signs one act with the party's policy key and writes it into
``<accord id>.acts.json`` beside the accord file, where the daemons pick it up at their next
reload (docs/ACCORDS.md, "Suspension, resumption and termination"). With ``--registry`` the
key must be the party's current policy key, so a wrong key is refused here rather than by
every daemon later.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
from collections.abc import Callable
from typing import Any

import click

from broker import errors, keys, policy
from broker.cli._reader import policy_signer_option, signing_policy_as
from broker.cli.keys import key_passphrase
from broker.clock import SystemClock
from broker.ids import PartnerCode, partner_code
from broker.trust.acts import ActKind, ActsFile, add_act, parse_acts_file
from broker.trust.files import acts_path

__all__ = ["resume", "suspend", "terminate"]

_FILE = click.Path(exists=True, dir_okay=False, path_type=pathlib.Path)


def _act_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.argument("accord_path", metavar="ACCORD", type=_FILE),
            click.option("--partner", required=True, help="The party signing, e.g. GB."),
            click.option("--key", "key_path", required=True, type=_FILE, help="Its policy key."),
            click.option("--reason", default="", help="Why, in a few words (kept in the log)."),
            click.option(
                "--registry",
                "registry_path",
                type=_FILE,
                help="Check the key is the party's current policy key in this registry.",
            ),
            click.option("--passphrase-file", type=_FILE, help="File holding the passphrase."),
            click.option(
                "--passphrase-env",
                default=keys.DEFAULT_PASSPHRASE_ENV,
                show_default=True,
                help="Environment variable holding the passphrase (without --passphrase-file).",
            ),
            policy_signer_option,
        )
    ):
        command = option(command)
    return command


@click.command()
@_act_options
def suspend(**options: Any) -> None:
    """Suspend ACCORD at once on behalf of PARTNER: every flow is refused until every party
    signs a resumption."""
    _sign("suspend", **options)


@click.command()
@_act_options
def resume(**options: Any) -> None:
    """Sign the resumption of a suspended ACCORD; it takes effect once every party signed."""
    _sign("resume", **options)


@click.command()
@_act_options
def terminate(**options: Any) -> None:
    """Terminate ACCORD on behalf of PARTNER, before its expiry and for good."""
    _sign("terminate", **options)


def _sign(
    kind: ActKind,
    *,
    accord_path: pathlib.Path,
    partner: str,
    key_path: pathlib.Path,
    reason: str,
    registry_path: pathlib.Path | None,
    passphrase_file: pathlib.Path | None,
    passphrase_env: str,
    adapter_config: str | None,
    officer_id: str | None,
) -> None:
    signing_policy_as(adapter_config, officer_id)  # before the key is opened
    accord = policy.load_accord(accord_path)
    try:
        party = partner_code(partner)
    except ValueError as exc:
        raise errors.UsageError(str(exc)) from exc
    key = keys.load_signing_key(
        key_path, passphrase=key_passphrase(passphrase_file, passphrase_env)
    )
    now = SystemClock().now()
    if registry_path is not None:
        _require_policy_key(registry_path, party, key.public_key().key_id, now=now)
    path = acts_path(accord_path, accord.accord_id)
    chain = (
        parse_acts_file(path.read_bytes(), source=str(path))
        if path.exists()
        else ActsFile(accord=accord.accord)
    )
    updated = add_act(
        chain,
        kind=kind,
        key=key,
        partner=party,
        parties=accord.party_codes,
        at=now,
        reason=reason or f"{kind} by {party}",
    )
    staged = path.with_name(f".{path.name}.new")
    staged.write_bytes(updated.to_bytes())
    os.replace(staged, path)
    last = updated.acts[-1]
    signed = ", ".join(sorted(s.partner for s in last.signatures))
    awaited = sorted(accord.party_codes - {PartnerCode(s.partner) for s in last.signatures})
    state = f"; awaiting {', '.join(awaited)}" if kind == "resume" and awaited else ""
    click.echo(f"{path}: {accord.accord} act {last.act.seq} {kind}, signed by {signed}{state}")


def _require_policy_key(
    registry_path: pathlib.Path, party: PartnerCode, key_id: str, *, now: dt.datetime
) -> None:
    registry = keys.verify_registry(registry_path.read_bytes(), trusted=None, now=now)
    current = {k.key_id for k in registry.policy_keys(party, at=now)}
    if key_id not in current:
        raise errors.KeyTrustError(f"key {key_id} is not a current policy key of {party}")
