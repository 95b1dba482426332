"""`broker demo`: the whole exchange on the embedded broker, in one command."""

from __future__ import annotations

import click

__all__ = ["command"]


@click.command(name="demo")
def command() -> None:
    """(being built)"""
