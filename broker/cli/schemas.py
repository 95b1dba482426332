"""`broker schemas export|validate`: the message schemas as files, and checking documents."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from broker import errors
from broker.schema import json_schemas, parse_message

__all__ = ["group"]

_DEFAULT_OUT = Path("schemas")


@click.group(name="schemas")
def group() -> None:
    """Message schemas: export them as JSON Schema, validate message documents."""


@group.command(name="export")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=_DEFAULT_OUT,
    show_default=True,
    help="Directory to write the JSON Schema files into.",
)
def export_command(out_dir: Path) -> None:
    """Write one JSON Schema per message type, plus the labels schema."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in json_schemas().items():
            (out_dir / name).write_bytes(content)
    except OSError as exc:
        raise errors.UsageError(f"cannot write schemas to {out_dir}: {exc.strerror}") from exc
    click.echo(f"wrote {len(json_schemas())} schemas to {out_dir}")


@group.command(name="validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def validate_command(files: tuple[Path, ...]) -> None:
    """Validate message documents: print `FILE: ok` or each problem with its field path."""
    failed = False
    for path in files:
        try:
            parse_message(path.read_bytes())
        except OSError as exc:
            failed = True
            click.echo(f"{path}: cannot read ({exc.strerror})", err=True)
        except errors.SchemaError as exc:
            failed = True
            for line in str(exc).splitlines():
                click.echo(f"{path}: {line}")
        else:
            click.echo(f"{path}: ok")
    if failed:
        sys.exit(errors.SchemaError.exit_code)
