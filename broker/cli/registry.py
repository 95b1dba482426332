"""`broker registry ...`: edit, sign, verify and show the partner registry document.

Edits (init, add-partner, add-key, set-units, set-roots, set-expires, revoke) change the
``signed`` part: the first edit after any signature bumps the version and clears the
signatures. Root holders then run `sign` in turn until the threshold is met; `verify` checks
the result.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from broker import errors, keys
from broker.cli._app import console as cli_console
from broker.cli.keys import key_passphrase, passphrase_options, reports_errors
from broker.clock import SystemClock, format_instant, utc
from broker.ids import KeyId, PartnerCode, partner_code
from broker.store.officers import check_name

__all__ = ["group"]


class _Timestamp(click.ParamType[dt.datetime]):
    """An ISO 8601 time with a timezone, e.g. 2027-01-01T00:00:00Z."""

    name = "timestamp"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            return utc(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            self.fail(f"{value!r} is not an ISO 8601 time with a timezone ({exc})", param, ctx)


_TIMESTAMP = _Timestamp()
_DOCUMENT = click.Path(dir_okay=False, exists=True, path_type=Path)
_CARD = click.Path(dir_okay=False, exists=True, path_type=Path)
_root_cards = click.option(
    "--root-card",
    "root_cards",
    required=True,
    multiple=True,
    type=_CARD,
    help="A root key's card (`keys generate-root` wrote it); once per root.",
)
_threshold = click.option(
    "--threshold",
    required=True,
    type=click.IntRange(1, 64),
    help="How many of these roots must sign each registry version.",
)


@click.group(name="registry")
def group() -> None:
    """The partner registry: a versioned, expiring document signed by a threshold of roots."""


@group.command(name="init")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The new registry document.",
)
@_root_cards
@_threshold
@click.option("--expires", required=True, type=_TIMESTAMP, help="e.g. 2027-01-01T00:00:00Z")
@reports_errors
def init(out: Path, root_cards: tuple[Path, ...], threshold: int, expires: dt.datetime) -> None:
    """Start a registry (version 1) with the given root keys and signing threshold."""
    if out.exists():
        raise errors.UsageError(f"{out} exists; edit it instead of starting again")
    cards = [keys.KeyCard.from_bytes(_read(path)) for path in root_cards]
    draft = keys.RegistryDraft.new(roots=cards, threshold=threshold, expires=expires)
    keys.write_public_file(out, draft.to_bytes(), replace=False)
    click.echo(f"{out}: version 1, {len(cards)} roots, threshold {threshold}, unsigned")


@group.command(name="add-partner")
@click.argument("document", type=_DOCUMENT)
@click.argument("card_path", metavar="CARD", type=_CARD)
@reports_errors
def add_partner(document: Path, card_path: Path) -> None:
    """Add a partner from its card, or merge a rotated card's new keys."""
    draft = _load(document)
    card = keys.PartnerCard.from_bytes(_read(card_path))
    outcome = draft.add_partner(card)
    _save(document, draft, f"{outcome} partner {card.code}")


@group.command(name="add-key")
@click.argument("document", type=_DOCUMENT)
@click.argument("card_path", metavar="CARD", type=_CARD)
@reports_errors
def add_key(document: Path, card_path: Path) -> None:
    """Register a gateway or witness key from its card."""
    draft = _load(document)
    card = keys.KeyCard.from_bytes(_read(card_path))
    draft.add_service_key(card)
    _save(document, draft, f"added {card.kind} key {card.key_id} ({card.name})")


@group.command(name="set-units")
@click.argument("document", type=_DOCUMENT)
@click.argument("partner")
@click.option(
    "--unit",
    "units",
    multiple=True,
    type=(str, str),
    metavar="AGENCY UNIT",
    help="A unit and its agency, as the partner's officers are added (repeat for each).",
)
@click.option(
    "--none",
    "clear",
    is_flag=True,
    help="Remove the partner's list: its officers' units are then not checked.",
)
@reports_errors
def set_units(
    document: Path, partner: str, units: tuple[tuple[str, str], ...], clear: bool
) -> None:
    """Declare the units whose officers send for PARTNER, replacing its list (docs/OFFICERS.md).

    Senders then check that a restrict-to-units condition names only these units, the gateway
    and recipients refuse a view whose origin names another, and the partner's adapter adds
    officers only to these units."""
    try:
        code = partner_code(partner)
    except ValueError as exc:
        raise errors.UsageError(str(exc)) from exc
    if clear == bool(units):
        raise errors.UsageError("give --unit AGENCY UNIT (once per unit) or --none")
    declared = [
        keys.PartnerUnit(check_name(agency, what="an agency"), check_name(unit, what="a unit"))
        for agency, unit in units
    ]
    draft = _load(document)
    draft.set_units(code, None if clear else declared)
    what = "no units" if clear else f"{len(declared)} unit(s)"
    _save(document, draft, f"partner {code} declares {what}")


@group.command(name="set-roots")
@click.argument("document", type=_DOCUMENT)
@_root_cards
@_threshold
@reports_errors
def set_roots(document: Path, root_cards: tuple[Path, ...], threshold: int) -> None:
    """Rotate the root keys: the old roots' threshold AND the new roots' must then sign."""
    draft = _load(document)
    draft.set_roots([keys.KeyCard.from_bytes(_read(p)) for p in root_cards], threshold=threshold)
    _save(document, draft, f"roots replaced ({len(root_cards)} keys, threshold {threshold})")


@group.command(name="set-expires")
@click.argument("document", type=_DOCUMENT)
@click.option("--expires", required=True, type=_TIMESTAMP, help="The new expiry (UTC).")
@reports_errors
def set_expires(document: Path, expires: dt.datetime) -> None:
    """Move the expiry of the registry (then sign again)."""
    draft = _load(document)
    draft.set_expires(expires)
    _save(document, draft, f"expires {_ts(expires)}")


@group.command(name="revoke")
@click.argument("document", type=_DOCUMENT)
@click.option("--partner", default=None, help="The key's partner; omit for a gateway/witness key.")
@click.option("--key-id", required=True, help="The id of the key to revoke.")
@click.option("--at", "at", required=True, type=_TIMESTAMP, help="Revoked from this instant on.")
@click.option("--reason", required=True, help="Why, in words kept in the registry.")
@reports_errors
def revoke(document: Path, partner: str | None, key_id: str, at: dt.datetime, reason: str) -> None:
    """Revoke a key from AT on; lookups for times before AT still succeed (for audit)."""
    code: PartnerCode | None = None
    if partner is not None:
        try:
            code = partner_code(partner)
        except ValueError as exc:
            raise errors.UsageError(str(exc)) from exc
    draft = _load(document)
    draft.revoke(partner=code, key_id=KeyId(key_id), at=at, reason=reason)
    _save(document, draft, f"revoked {key_id} from {_ts(at)}")


@group.command(name="sign")
@click.argument("document", type=_DOCUMENT)
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The root's private key file (encrypted PEM).",
)
@click.option(
    "--trusted",
    type=_DOCUMENT,
    default=None,
    help="The registry in force: with it, one of its roots may sign a root rotation.",
)
@passphrase_options
@reports_errors
def sign(
    document: Path,
    key_path: Path,
    trusted: Path | None,
    passphrase_file: Path | None,
    passphrase_env: str,
) -> None:
    """Add one root signature to DOCUMENT (root holders sign in turn). A key that is not one
    of DOCUMENT's roots is refused (exit 9), unless it is one of the --trusted registry's
    roots signing the rotation away from them."""
    passphrase = key_passphrase(passphrase_file, passphrase_env)
    key = keys.load_signing_key(key_path, passphrase=passphrase)
    draft = _load(document)
    key_id = key.public_key().key_id
    is_root = key_id in {root.key_id for root in draft.unverified_registry.roots}
    outgoing = trusted is not None and key_id in {
        root.key_id for root in keys.load_trusted_registry(_read(trusted)).roots
    }
    if not is_root and not outgoing:
        where = "" if trusted is None else f" nor of {trusted}'s"
        raise errors.RegistryError(
            f"key {key_id} is not one of {document}'s roots{where}: its signature would not "
            "count, so it is not added (an outgoing root signs a rotation with --trusted)"
        )
    draft.sign(key)
    keys.write_public_file(document, draft.to_bytes())
    registry = draft.unverified_registry
    note = "" if is_root else " (an outgoing root of the registry in force)"
    click.echo(
        f"signed version {draft.version} with {key.public_key().key_id}{note}; "
        f"{len(draft.signers())} of {registry.root_threshold} root signatures"
    )


@group.command(name="verify")
@click.argument("document", type=_DOCUMENT)
@click.option(
    "--trusted",
    type=_DOCUMENT,
    default=None,
    help="The registry trusted so far: refuse rollback and require its roots' threshold.",
)
@reports_errors
def verify(document: Path, trusted: Path | None) -> None:
    """Verify DOCUMENT now: threshold, expiry and (with --trusted) rollback and root rotation."""
    held = keys.load_trusted_registry(_read(trusted)) if trusted is not None else None
    data = _read(document)
    registry = keys.verify_registry(data, trusted=held, now=SystemClock().now())
    signers = keys.RegistryDraft.from_bytes(data).signers()
    click.echo(
        f"ok: registry version {registry.version}, {len(registry.partners)} partners, "
        f"signed by {len(signers)} of {len(registry.roots)} roots "
        f"(threshold {registry.root_threshold}), expires {_ts(registry.expires)}, "
        f"digest {registry.digest[:16]}"
    )


@group.command(name="diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reports_errors
def diff(old: Path, new: Path) -> None:
    """Say what signing NEW changes against OLD (the version in force): partners, keys,
    validity windows, revocations, roots, threshold and expiry; grants of trust first. Then
    whether NEW verifies against OLD as the daemons will check it. Review before `sign`."""
    old_data, new_data = _read(old), _read(new)
    before = keys.RegistryDraft.from_bytes(old_data).unverified_registry
    after = keys.RegistryDraft.from_bytes(new_data).unverified_registry
    changes = keys.diff_registries(before, after)
    click.echo(f"version {before.version} -> {after.version}: {len(changes)} changes")
    for change in changes:
        click.echo(f"  {change}")
    try:
        keys.verify_registry(new_data, trusted=before, now=SystemClock().now())
        click.echo(f"{new} verifies against {old} now")
    except errors.RegistryError as exc:
        click.echo(f"{new} does not verify against {old} yet: {exc}")


@group.command(name="show")
@click.argument("document", type=_DOCUMENT)
@reports_errors
def show(document: Path) -> None:
    """Show partners, keys, validity windows and revocations, and whether it verifies now."""
    data = _read(document)
    now = SystemClock().now()
    draft = keys.RegistryDraft.from_bytes(data)
    registry = draft.unverified_registry
    try:
        keys.verify_registry(data, trusted=None, now=now)
        status = "[green]verifies now[/green]"
    except errors.RegistryError as exc:
        status = f"[red]DOES NOT VERIFY: {escape(str(exc))}[/red]"
    console = cli_console()
    console.print(
        f"registry version {registry.version}, expires {_ts(registry.expires)}, "
        f"roots {len(registry.roots)} (threshold {registry.root_threshold}), "
        f"signed by {len(draft.signers())}: {status}"
    )
    for root in registry.roots:
        console.print(f"  root {root.key_id} ({escape(root.name)})")
    for code in sorted(registry.partners):
        scheme = registry.evaluation_scheme_of(code)
        if scheme is not None:
            console.print(f"  {code} reads gradings as {scheme}")
        declared = registry.units_of(code)
        if declared is not None:
            listed = ", ".join(escape(str(unit)) for unit in declared)
            console.print(f"  {code} units: {listed}")
    table = Table("owner", "name", "role", "key id", "suite", "valid from", "until", "status")
    for record in registry.key_records():
        owner = record.owner
        name = registry.name_of(PartnerCode(owner)) if owner in registry.partners else ""
        status_text = record.status_at(now)
        if record.revoked_at is not None:
            status_text += f" (revoked {_ts(record.revoked_at)}: {escape(record.reason or '')})"
        table.add_row(
            escape(owner),
            escape(name),
            record.role,
            record.key_id,
            record.suite.value,
            _ts(record.not_before),
            _ts(record.not_after),
            status_text,
        )
    console.print(table)


def _ts(at: dt.datetime) -> str:
    return format_instant(at)


def _load(document: Path) -> keys.RegistryDraft:
    return keys.RegistryDraft.from_bytes(_read(document))


def _save(document: Path, draft: keys.RegistryDraft, what: str) -> None:
    keys.write_public_file(document, draft.to_bytes())
    signed = len(draft.signers())
    click.echo(f"{document}: {what}; version {draft.version}, {signed} root signature(s)")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise errors.UsageError(f"cannot read {path}: {exc.strerror}") from exc
