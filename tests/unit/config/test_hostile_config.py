"""Regressions found by the fuzz campaigns (docs/FUZZING.md): hostile configuration YAML is a
SchemaError naming the file, never a ValueError or RecursionError, and is refused early."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import errors
from broker.config import load_config


@pytest.mark.parametrize(
    ("name", "text", "why"),
    [
        ("flow nesting", "kafka: " + "[" * 100_000 + "\n", "nested deeper than 32 levels"),
        ("closed flow nesting", "kafka: " + "[" * 40 + "]" * 40 + "\n", "nested deeper"),
        ("block nesting", "".join("  " * i + f"k{i}:\n" for i in range(40)), "nested deeper"),
        ("integer of 5000 digits", "limits:\n  max_age: " + "9" * 5000 + "\n", "too many digits"),
        (
            "a path under an unknown user",
            "registry:\n  path: ~no-such-user/r.json\n",
            "no such user",
        ),
    ],
)
def test_hostile_yaml_is_a_schema_error(tmp_path: Path, name: str, text: str, why: str) -> None:
    """Each document is refused with SchemaError and the reason."""
    path = tmp_path / "broker.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(errors.SchemaError, match=why):
        load_config(path, env={})
