"""`broker seal`, `broker open` and `broker envelope inspect`: envelopes by hand.

Each command checks the partner registry it is given (its roots' threshold and its expiry)
before using any key from it. Plaintext goes only where ``--out`` says (stdout by default);
the header summary goes to stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from broker import envelope, errors, keys, schema
from broker.cli.keys import key_passphrase, passphrase_options, reports_errors
from broker.clock import SystemClock
from broker.envelope._header import parse_time
from broker.ids import AccordId, CaseId, PartnerCode, partner_code

__all__ = ["group", "open_command", "seal_command"]

_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)
_OUT = click.Path(dir_okay=False, path_type=Path)
_REGISTRY_HELP = "The signed partner registry (its keys decide who signed and who may read)."


def _partner(_ctx: click.Context, _param: click.Parameter, value: str) -> PartnerCode:
    try:
        return partner_code(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise errors.UsageError(f"cannot read {path}: {exc.strerror}") from exc


def _write(out: Path | None, data: bytes) -> None:
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise errors.UsageError(f"cannot write {out}: {exc.strerror}") from exc


def _registry(path: Path, *, now: dt.datetime) -> keys.Registry:
    return keys.verify_registry(_read(path), trusted=None, now=now)


def _summary(header: envelope.VerifiedHeader) -> str:
    labels = header.labels
    return (
        f"{header.message_id} {header.sender}->{header.recipient} {labels.message_type} "
        f"{labels.classification} TLP:{labels.tlp} {labels.handling} "
        f"accord {header.accord_id} created {header.created:%Y-%m-%dT%H:%M:%SZ}"
    )


@click.command(name="seal")
@click.argument("message_file", type=_FILE)
@click.option("--from", "sender", required=True, callback=_partner, help="Our partner code.")
@click.option("--to", "recipient", required=True, callback=_partner, help="The recipient.")
@click.option("--key", "key_path", required=True, type=_FILE, help="Our signing key (PEM).")
@click.option("--registry", "registry_path", required=True, type=_FILE, help=_REGISTRY_HELP)
@click.option("--accord-id", required=True, help="The accord the envelope is sent under.")
@click.option("--accord-digest", required=True, help="SHA-256 (hex) of the signed accord.")
@click.option(
    "--ttl-hours",
    type=click.IntRange(1, 720),
    default=168,
    show_default=True,
    help="Hours until the envelope expires.",
)
@click.option("--out", type=_OUT, default=None, help="Envelope file (default: stdout).")
@passphrase_options
@reports_errors
def seal_command(
    message_file: Path,
    sender: PartnerCode,
    recipient: PartnerCode,
    key_path: Path,
    registry_path: Path,
    accord_id: str,
    accord_digest: str,
    ttl_hours: int,
    out: Path | None,
    passphrase_file: Path | None,
    passphrase_env: str,
) -> None:
    """Validate MESSAGE_FILE, sign it and seal it to the recipient's current key."""
    now = SystemClock().now()
    registry = _registry(registry_path, now=now)
    message = schema.parse_message(_read(message_file))
    passphrase = key_passphrase(passphrase_file, passphrase_env)
    signing_key = keys.load_signing_key(key_path, passphrase=passphrase)
    # Refuse early if our own key is not the registered, valid one: receivers would refuse.
    registry.signing_key(sender, signing_key.public_key().key_id, at=now)
    key_id, recipient_key = registry.current_encryption_key(
        recipient, at=now, suite=signing_key.suite
    )
    sealed = envelope.seal(
        message,
        labels=schema.labels_of(message),
        sender=sender,
        sender_key=signing_key,
        recipient=recipient,
        recipient_key_id=key_id,
        recipient_key=recipient_key,
        accord_id=AccordId(accord_id),
        accord_digest=accord_digest.lower(),
        now=now,
        ttl=dt.timedelta(hours=ttl_hours),
        case_id=None if message.case_id is None else CaseId(message.case_id),
    )
    _write(out, sealed)
    click.echo(f"sealed {len(sealed)} bytes for {recipient} (key {key_id})", err=True)


@click.command(name="open")
@click.argument("envelope_file", type=_FILE)
@click.option("--as", "recipient", required=True, callback=_partner, help="Our partner code.")
@click.option(
    "--key", "key_paths", required=True, multiple=True, type=_FILE, help="Decryption key(s)."
)
@click.option("--registry", "registry_path", required=True, type=_FILE, help=_REGISTRY_HELP)
@click.option("--out", type=_OUT, default=None, help="Message file (default: stdout).")
@passphrase_options
@reports_errors
def open_command(
    envelope_file: Path,
    recipient: PartnerCode,
    key_paths: tuple[Path, ...],
    registry_path: Path,
    out: Path | None,
    passphrase_file: Path | None,
    passphrase_env: str,
) -> None:
    """Verify and decrypt ENVELOPE_FILE; write the message only if every check passed."""
    now = SystemClock().now()
    registry = _registry(registry_path, now=now)
    passphrase = key_passphrase(passphrase_file, passphrase_env)
    loaded = [keys.load_decryption_key(path, passphrase=passphrase) for path in key_paths]
    opened = envelope.open(
        _read(envelope_file),
        registry=registry,
        recipient=recipient,
        decryption_keys={key.key_id: key for key in loaded},
        now=now,
    )
    _write(out, opened.message_bytes + b"\n")
    click.echo(f"verified {_summary(opened.header)}", err=True)


@click.group(name="envelope")
def group() -> None:
    """Look inside envelopes."""


@group.command(name="inspect")
@click.argument("envelope_file", type=_FILE)
@click.option(
    "--registry",
    "registry_path",
    type=_FILE,
    default=None,
    help="Verify the signature and keys against this registry (else nothing is verified).",
)
@reports_errors
def inspect(envelope_file: Path, registry_path: Path | None) -> None:
    """Print the clear header of ENVELOPE_FILE as JSON, marked verified or UNVERIFIED."""
    data = _read(envelope_file)
    parsed = envelope.parse(data)
    status = "UNVERIFIED"
    if registry_path is not None:
        now = SystemClock().now()
        # Inspecting an old envelope is legitimate: check the signature at its own time.
        created = parse_time(parsed.header.created)
        envelope.verify(data, registry=_registry(registry_path, now=now), now=created)
        status = "verified"
    header = json.loads(parsed.header_bytes)
    sizes = {"envelope": len(data), "ciphertext": len(parsed.ciphertext)}
    click.echo(json.dumps({"status": status, "sizes": sizes, "header": header}, indent=2))
