"""`broker kafka ...`."""

from __future__ import annotations

import click

__all__ = ["group"]


@click.group(name="kafka")
def group() -> None:
    """(being built)"""
