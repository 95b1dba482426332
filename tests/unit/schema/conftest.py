"""Shared fixtures: the committed examples, loaded as bytes and as messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.schema import Message, parse_message

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
EXAMPLES_DIR = SCHEMAS_DIR / "examples"
EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*.json"))


def example_bytes(name: str) -> bytes:
    """The bytes of ``schemas/examples/<name>.json``."""
    return (EXAMPLES_DIR / f"{name}.json").read_bytes()


@pytest.fixture(params=EXAMPLE_FILES, ids=lambda p: p.stem)
def example(request: pytest.FixtureRequest) -> Message:
    """Each committed example, parsed."""
    path: Path = request.param
    return parse_message(path.read_bytes())
