"""`broker keys generate|rotate|generate-root`: a partner's keys, and root, gateway, witness keys.

Private keys are written encrypted (PKCS#8) with mode 0600 and never overwritten; the public
halves go to JSON cards that `broker registry add-partner` / `add-key` / `init` import.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from broker import crypto, errors, keys
from broker.cli import _app
from broker.clock import SystemClock, format_instant
from broker.ids import PartnerCode, partner_code
from broker.schema import EvaluationScheme

__all__ = ["group", "key_passphrase", "passphrase_options"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_SUITES = click.Choice([suite.value for suite in crypto.Suite])
_SUITE_HELP = "classic (Ed25519, X25519) or pq-hybrid (adds ML-DSA-65 and ML-KEM-768)."
_KEY_DIR = click.Path(file_okay=False, path_type=Path)
_OUT_HELP = "The directory to write the keys (private, passphrase-encrypted) and the card to."
_VALID_DAYS: dict[str, Any] = {
    "type": click.IntRange(1, 3650),
    "default": 365,
    "show_default": True,
    "help": "Days the new keys are valid for, from now.",
}


def reports_errors(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn our errors into one line and their exit code, also under CliRunner."""

    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except errors.BrokerError as exc:
            _app.fail(exc)
            raise  # unreachable: fail() exits

    return wrapper


def passphrase_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--passphrase-file`` / ``--passphrase-env``: where the key passphrase comes from."""
    command = click.option(
        "--passphrase-env",
        default=keys.DEFAULT_PASSPHRASE_ENV,
        show_default=True,
        help="Environment variable holding the key passphrase (used without --passphrase-file).",
    )(command)
    return click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="File holding the key passphrase (one trailing newline is ignored).",
    )(command)


def key_passphrase(file: Path | None, env: str, *, new: bool = False) -> bytes:
    """The key passphrase from ``--passphrase-file``, else ``--passphrase-env``'s variable,
    else, on a terminal, typed at a prompt that does not echo it (twice for a new key, so a
    typo cannot lock a key away). Without any of them: a UsageError naming the three ways."""
    if file is not None or os.environ.get(env) or not sys.stdin.isatty():
        return keys.read_passphrase(file=file, env=env)
    typed: str = click.prompt(
        "Passphrase for the new key files" if new else "Key passphrase",
        hide_input=True,
        confirmation_prompt=new,
        err=True,
    )
    if not typed:
        raise errors.UsageError("an empty passphrase protects nothing")
    return typed.encode("utf-8")


def _partner(_ctx: click.Context, _param: click.Parameter, value: str) -> PartnerCode:
    try:
        return partner_code(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group(name="keys")
def group() -> None:
    """A partner's key pairs, and root, gateway and witness keys (private files are 0600)."""


@group.command(name="generate")
@click.option("--partner", required=True, callback=_partner, help="Partner code, e.g. RS.")
@click.option("--name", default=None, help="Display name [default: the partner code].")
@click.option("--out", "out_dir", required=True, type=_KEY_DIR, help=_OUT_HELP)
@click.option("--suite", type=_SUITES, default="classic", show_default=True, help=_SUITE_HELP)
@click.option("--valid-days", **_VALID_DAYS)
@click.option(
    "--evaluation-scheme",
    type=click.Choice([scheme.value for scheme in EvaluationScheme]),
    default=None,
    help="The grading scheme the partner's analysts read; the registry lists it, and "
    "`inbox show` translates each sender's grading into it.",
)
@passphrase_options
@reports_errors
def generate(
    partner: PartnerCode,
    name: str | None,
    out_dir: Path,
    suite: str,
    valid_days: int,
    evaluation_scheme: str | None,
    passphrase_file: Path | None,
    passphrase_env: str,
) -> None:
    """Create signing, encryption and policy-signing keys for PARTNER and its public card.

    Writes OUT/<P>.card.json and OUT/<P>-<role>-<key id>.pem (encrypted, mode 0600).
    """
    passphrase = key_passphrase(passphrase_file, passphrase_env, new=True)
    card_path = out_dir / f"{partner}.card.json"
    if card_path.exists():
        raise errors.UsageError(f"{card_path} exists; use `broker keys rotate` for new keys")
    card, private = keys.generate_partner_keys(
        partner,
        name=name or partner,
        suite=crypto.Suite(suite),
        not_before=SystemClock().now(),
        valid_for=dt.timedelta(days=valid_days),
        evaluation_scheme=None
        if evaluation_scheme is None
        else EvaluationScheme(evaluation_scheme),
    )
    _make_private_dir(out_dir)
    written = [
        _save(
            out_dir / f"{partner}-signing-{private.signing_key_id}.pem", private.signing, passphrase
        ),
        _save(
            out_dir / f"{partner}-encryption-{private.encryption_key_id}.pem",
            private.decryption,
            passphrase,
        ),
        _save(
            out_dir / f"{partner}-policy-{private.policy_key_id}.pem", private.policy, passphrase
        ),
    ]
    keys.write_public_file(card_path, card.to_bytes(), replace=False)
    for path in written:
        click.echo(f"private key  {path}")
    click.echo(f"public card  {card_path}")
    click.echo(f"next: broker registry add-partner REGISTRY {card_path}")


@group.command(name="rotate")
@click.option("--partner", required=True, callback=_partner, help="Partner code, e.g. RS.")
@click.option(
    "--dir",
    "key_dir",
    required=True,
    type=_KEY_DIR,
    help="The partner's key directory (as `keys generate --out` wrote it).",
)
@click.option(
    "--overlap-days",
    type=click.IntRange(1, 365),
    default=30,
    show_default=True,
    help="How long the old keys stay valid after the new ones start.",
)
@click.option("--valid-days", **_VALID_DAYS)
@click.option(
    "--suite",
    type=_SUITES,
    default=None,
    help="The new keys' suite [default: the card's]. Another suite adds keys beside the old "
    "ones, which stay valid for the accords that still use them.",
)
@passphrase_options
@reports_errors
def rotate(
    partner: PartnerCode,
    key_dir: Path,
    overlap_days: int,
    valid_days: int,
    suite: str | None,
    passphrase_file: Path | None,
    passphrase_env: str,
) -> None:
    """New signing and encryption keys for PARTNER; the old ones of that suite end after the
    overlap."""
    passphrase = key_passphrase(passphrase_file, passphrase_env, new=True)
    card_path = key_dir / f"{partner}.card.json"
    card = keys.PartnerCard.from_bytes(_read(card_path))
    if card.code != partner:
        raise errors.UsageError(f"{card_path} is the card of {card.code}, not {partner}")
    now = SystemClock().now()
    rotated, new = keys.rotate_partner_keys(
        card,
        now=now,
        overlap=dt.timedelta(days=overlap_days),
        valid_for=dt.timedelta(days=valid_days),
        suite=None if suite is None else crypto.Suite(suite),
    )
    _save(key_dir / f"{partner}-signing-{new.signing_key_id}.pem", new.signing, passphrase)
    _save(key_dir / f"{partner}-encryption-{new.encryption_key_id}.pem", new.decryption, passphrase)
    keys.write_public_file(card_path, rotated.to_bytes())
    retire = now.replace(microsecond=0) + dt.timedelta(days=overlap_days)
    new_suite = new.signing.suite
    click.echo(f"new signing key     {new.signing_key_id} ({new_suite})")
    click.echo(f"new encryption key  {new.encryption_key_id} ({new_suite})")
    until = format_instant(retire)
    click.echo(f"older {new_suite} keys valid until {until} (overlap {overlap_days} days)")
    if new_suite is not card.suite:
        click.echo(
            f"the {card.suite} keys stay as they are; add the new signing key to the adapter's "
            "keys.extra_signing_keys and the encryption key to keys.decryption_keys"
        )
    click.echo(f"card updated: {card_path}")
    click.echo(f"next: broker registry add-partner REGISTRY {card_path}, then sign and publish")


@group.command(name="generate-root")
@click.option("--out", "out_dir", required=True, type=_KEY_DIR, help=_OUT_HELP)
@click.option(
    "--kind",
    type=click.Choice(["root", "gateway", "witness"]),
    default="root",
    show_default=True,
    help="root signs the registry; gateway signs decisions; witness cosigns audit checkpoints.",
)
@click.option("--name", default=None, help="A label for the key holder [default: the kind].")
@click.option("--suite", type=_SUITES, default="classic", show_default=True, help=_SUITE_HELP)
@click.option(
    "--valid-days",
    type=click.IntRange(1, 3650),
    default=365,
    show_default=True,
    help="Validity of a gateway or witness key (root keys last until rotated).",
)
@passphrase_options
@reports_errors
def generate_root(
    out_dir: Path,
    kind: str,
    name: str | None,
    suite: str,
    valid_days: int,
    passphrase_file: Path | None,
    passphrase_env: str,
) -> None:
    """Create a root (or gateway, witness) signing key and its public key card."""
    passphrase = key_passphrase(passphrase_file, passphrase_env, new=True)
    kinds: dict[str, keys.KeyKind] = {"root": "root", "gateway": "gateway", "witness": "witness"}
    is_root = kind == "root"
    card, key = keys.generate_service_key(
        kinds[kind],
        name=name or kind,
        suite=crypto.Suite(suite),
        not_before=None if is_root else SystemClock().now(),
        valid_for=None if is_root else dt.timedelta(days=valid_days),
    )
    _make_private_dir(out_dir)
    key_path = _save(out_dir / f"{kind}-{card.key_id}.pem", key, passphrase)
    card_path = out_dir / f"{kind}-{card.key_id}.card.json"
    keys.write_public_file(card_path, card.to_bytes(), replace=False)
    click.echo(f"private key  {key_path}")
    click.echo(f"public card  {card_path}")


def _save(path: Path, key: crypto.SigningKey | crypto.DecryptionKey, passphrase: bytes) -> Path:
    keys.save_private_key(path, key, passphrase=passphrase)
    return path


def _make_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.UsageError(f"cannot create {path}: {exc.strerror}") from exc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise errors.UsageError(f"cannot read {path}: {exc.strerror}") from exc
