"""`broker schemas ...`."""

from __future__ import annotations

import click

__all__ = ["group"]


@click.group(name="schemas")
def group() -> None:
    """(being built)"""
