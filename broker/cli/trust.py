"""`broker trust show|rekey|reset`: a daemon's trust memory (``trust-state.json`` beside its
store)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pydantic

from broker import errors, keys
from broker.clock import SystemClock
from broker.config import (
    SecretSource,
    TrustingConfig,
    WitnessConfig,
    hold_trust,
    load_config,
    read_secret,
    trust_state_path,
)
from broker.keys import format_timestamp
from broker.trust import TrustStateFile

__all__ = ["group"]

_CONFIG_HELP = "The daemon's YAML configuration (gateway or adapter; or set BROKER_CONFIG)."


@click.group(name="trust")
def group() -> None:
    """What a daemon remembers so that no restart lowers a version (docs/KEYS.md)."""


@group.command()
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print it as one JSON object.")
def show(config_path: str, as_json: bool) -> None:
    """Print the registry version held, each accord's floor and its signed acts' standing."""
    config = _trusting(config_path)
    key = keys.load_signing_key(
        config.keys.signing_key, passphrase=read_secret(config.keys.passphrase)
    )
    path = trust_state_path(config)
    memory = TrustStateFile(path, key=key).load()
    if memory is None:
        raise errors.UsageError(f"{path}: no trust state yet (the daemon has not started here)")
    registry = keys.load_trusted_registry(memory.registry)
    floors = {str(a): v for a, v in sorted(memory.floors.items())}
    acts = {
        str(accord): {
            "applied": m.length,
            "standing": "in force" if m.halt is None else str(m.halt.code),
            **({} if m.halt is None else {"why": m.halt.reason}),
        }
        for accord, m in sorted(memory.acts.items())
    }
    expires = format_timestamp(registry.expires)
    if as_json:
        document = {
            "registry": {"version": registry.version, "expires": expires},
            "floors": floors,
            "acts": acts,
        }
        click.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    click.echo(f"{path} (verified)")
    click.echo(f"registry: version {registry.version}, expires {expires}")
    for accord, floor in floors.items():
        click.echo(f"accord {accord}: never below version {floor}")
    for accord, standing in acts.items():
        click.echo(
            f"accord {accord}: {standing['applied']} signed acts applied; {standing['standing']}"
        )


@group.command()
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option("--yes", is_flag=True, help="Confirm: the daemon forgets every version it held.")
def reset(config_path: str, yes: bool) -> None:
    """Re-anchor a stopped daemon on its out-of-band trusted roots (registry.trusted_roots).

    Only after checking the registry out of band: the daemon forgets the registry, accord
    versions and signed acts it held, and trusts the anchor as on its first start.
    """
    if not yes:
        raise errors.UsageError("this forgets what the daemon held; add --yes to confirm")
    config = _trusting(config_path)
    key = keys.load_signing_key(
        config.keys.signing_key, passphrase=read_secret(config.keys.passphrase)
    )
    path = trust_state_path(config)
    path.unlink(missing_ok=True)
    held = hold_trust(config, key=key, now=SystemClock().now(), reanchor=True)
    click.echo(f"{path}: re-anchored on registry version {held.registry.version}")


@group.command()
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG", help=_CONFIG_HELP)
@click.option(
    "--previous-key",
    "previous_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The daemon's signing key before the rotation (its encrypted PKCS#8 file).",
)
@click.option(
    "--previous-passphrase-env",
    metavar="NAME",
    help="Read the previous key's passphrase from this variable (default: the config's).",
)
def rekey(config_path: str, previous_path: Path, previous_passphrase_env: str | None) -> None:
    """Re-sign a stopped daemon's trust state with its new key after a key rotation.

    The state is verified with the previous key, which you prove you hold, and which the
    registry the state holds must not have revoked; what it remembers is kept.
    """
    config = _trusting(config_path)
    key = keys.load_signing_key(
        config.keys.signing_key, passphrase=read_secret(config.keys.passphrase)
    )
    source = config.keys.passphrase
    if previous_passphrase_env is not None:
        try:
            source = SecretSource(env=previous_passphrase_env)
        except pydantic.ValidationError as exc:
            raise errors.UsageError(
                f"--previous-passphrase-env {previous_passphrase_env!r}: not a variable name"
            ) from exc
    previous = keys.load_signing_key(previous_path, passphrase=read_secret(source))
    path = trust_state_path(config)
    state = TrustStateFile(path, key=key, previous=previous.public_key())
    memory = state.load()
    if memory is None:
        raise errors.UsageError(f"{path}: no trust state yet (the daemon has not started here)")
    state.save(memory)
    click.echo(
        f"{path}: re-signed by key {key.public_key().key_id} "
        f"(was {previous.public_key().key_id}); nothing it remembers changed"
    )


def _trusting(config_path: str) -> TrustingConfig:
    """An adapter's or the gateway's configuration (read by its shape, as each daemon reads
    it); a witness holds no accords and keeps no trust memory here."""
    config = load_config(config_path)
    if isinstance(config, WitnessConfig):
        raise errors.UsageError(f"{config_path}: a witness keeps no trust memory")
    return config
