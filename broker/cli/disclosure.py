"""``broker disclose`` and ``broker disclosure verify``: proving to a third party what was
received, field by field.

A recipient reveals chosen fields of a stored view in a disclosure bundle (docs/PROTOCOL.md,
section 9), built from the evidence its adapter kept; anyone holding the partner registry
checks the bundle offline and sees exactly what was disclosed, and that the originator signed
it and a registered gateway delivered it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import click
import structlog

from broker import errors, keys, limits
from broker.bounded import read_bounded
from broker.cli._reader import officer_option, reading_as
from broker.cli.adapter import open_inbox
from broker.cli.keys import reports_errors
from broker.clock import SystemClock
from broker.config import AdapterConfig, load_config
from broker.pipeline.disclosure import Evidence, VerifiedBundle, disclosure_bundle, verify_bundle
from broker.schema import parse_message

__all__ = ["disclose_command", "disclosure_group"]

_log = structlog.get_logger(__name__)
_FILE = click.Path(dir_okay=False, path_type=Path)


def _read(path: Path, what: str, limit: int = limits.REGISTRY_MAX_BYTES) -> bytes:
    return read_bounded(path, limit=limit, what=what)


def _adapter_registry(config: AdapterConfig, *, now: dt.datetime) -> keys.Registry:
    """The adapter's registry, chained to the roots it trusts, as its daemon reads them."""
    anchor = keys.load_trusted_registry(_read(config.registry.trusted_roots, "trusted roots"))
    return keys.verify_registry(
        _read(config.registry.path, "the partner registry"), trusted=anchor, now=now
    )


@click.command("disclose")
@click.option(
    "--config",
    "config_path",
    required=True,
    envvar="BROKER_CONFIG",
    help="The receiving adapter's YAML configuration (or set BROKER_CONFIG).",
)
@click.option(
    "--fields",
    required=True,
    help="The committed paths to reveal, comma-separated: body.summary,case_id.",
)
@click.option("--out", required=True, type=_FILE, help="The bundle file to write (not existing).")
@officer_option()
@click.argument("message_id")
@reports_errors
def disclose_command(
    config_path: str, fields: str, out: Path, officer_id: str | None, message_id: str
) -> None:
    """Write a disclosure bundle revealing FIELDS of the received message MESSAGE_ID.

    Only the named fields leave in the clear; the others stay hidden behind their salted
    commitments. The bundle is verified before it is written.
    """
    paths = [path.strip() for path in fields.split(",") if path.strip()]
    if not paths:
        raise errors.UsageError("--fields names no field")
    config = load_config(config_path, AdapterConfig)
    registry = _adapter_registry(config, now=SystemClock().now())
    with open_inbox(config_path) as inbox:
        reading = reading_as(inbox, officer_id)
        content = inbox.get(message_id)
        reading.may_see(parse_message(content).handling_conditions, message_id=message_id)
        evidence = Evidence.from_bytes(inbox.evidence(message_id))
        meta = inbox.metadata(message_id)
        bundle = disclosure_bundle(evidence, message_json=content, fields=paths, registry=registry)
        # logged before the bundle leaves (s.62): a disclosure that cannot be logged is not made
        inbox.reads.note(
            [meta.message_id], reader=reading.name, action="disclose", now=SystemClock().now()
        )
    _write_new(out, bundle)
    _log.warning(
        "message_disclosed", message_id=meta.message_id, sender=meta.sender, fields=sorted(paths)
    )
    click.echo(
        f"disclosed {', '.join(sorted(set(paths)))} of {meta.message_id} from {meta.sender} "
        f"to {out}"
    )


def _write_new(out: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``out``, mode 0600 (it holds plaintext): never over an
    existing one."""
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise errors.UsageError(f"{out} exists: choose another --out") from None
    except OSError as exc:
        raise errors.UsageError(f"cannot write {out}: {exc.strerror}") from exc
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


@click.group("disclosure")
def disclosure_group() -> None:
    """Check disclosure bundles (offline)."""


@disclosure_group.command("verify")
@click.argument("bundle_file", type=_FILE)
@click.option(
    "--registry",
    "registry_path",
    required=True,
    type=_FILE,
    help="The signed partner registry the bundle is checked against.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@reports_errors
def verify_command(bundle_file: Path, registry_path: Path, as_json: bool) -> None:
    """Check BUNDLE_FILE with the partner registry alone and print exactly what it discloses.

    Exit 0 only when the gateway's attestation, the sender's signature and every revealed
    field's commitment check; otherwise one line and the error's exit status.
    """
    registry = keys.verify_registry(
        _read(registry_path, "the partner registry"), trusted=None, now=SystemClock().now()
    )
    data = _read(bundle_file, "the disclosure bundle", limits.DISCLOSURE_BUNDLE_MAX_BYTES)
    verified = verify_bundle(data, registry=registry)
    if as_json:
        click.echo(json.dumps(_document(verified), indent=2, ensure_ascii=False))
        return
    click.echo(_text(verified))


def _document(verified: VerifiedBundle) -> dict[str, Any]:
    header, attestation = verified.header, verified.attestation
    return {
        "verified": True,
        "message_id": header.message_id,
        "case_id": header.case_id,
        "sender": header.sender,
        "sender_key_id": header.sender_key_id,
        "suite": str(header.suite),
        "recipient": header.recipient,
        "created": header.created,
        "labels": header.labels.model_dump(mode="json"),
        "accord_id": header.accord_id,
        "accord_digest": header.accord_digest,
        "delivery": {
            "gateway_key_id": attestation.gateway_key_id,
            "decided_at": attestation.decided_at,
            "envelope_sha256": attestation.envelope_sha256,
            "accord_version": attestation.accord_version,
            "rule_ids": list(attestation.rule_ids),
        },
        "disclosed": dict(sorted(verified.fields.items())),
        "withheld": list(verified.withheld),
    }


def _text(verified: VerifiedBundle) -> str:
    header, attestation, labels = verified.header, verified.attestation, verified.header.labels
    disclosed = sorted(verified.fields.items())
    lines = [
        f"verified: message {header.message_id} from {header.sender} to {header.recipient}",
        f"  signed by {header.sender} key {header.sender_key_id} ({header.suite}), sealed "
        f"{header.created}" + (f", case {header.case_id}" if header.case_id else ""),
        f"  labels: {labels.message_type} v{labels.schema_version}, {labels.classification}, "
        f"TLP:{labels.tlp}, {labels.handling}; purposes "
        f"{', '.join(sorted(str(p) for p in labels.purposes))}; categories "
        f"{', '.join(sorted(str(c) for c in labels.data_categories))}",
        f"  delivered: gateway key {attestation.gateway_key_id} decided "
        f"{attestation.decided_at} under accord {attestation.accord_id} "
        f"v{attestation.accord_version} ({', '.join(attestation.rule_ids)}), envelope sha256 "
        f"{attestation.envelope_sha256}",
        f"disclosed {len(disclosed)} of {len(disclosed) + len(verified.withheld)} committed "
        "fields:",
        *(
            f"  {path} = {json.dumps(value, ensure_ascii=False, sort_keys=True)}"
            for path, value in disclosed
        ),
        f"withheld (committed, not revealed): {', '.join(verified.withheld) or 'none'}",
    ]
    return "\n".join(lines)
