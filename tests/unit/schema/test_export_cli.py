"""`broker schemas export|validate`, and the committed JSON Schemas match the models."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from broker.cli import cli
from broker.schema import DataCategory, MessageType, json_schemas

from .conftest import EXAMPLE_FILES, SCHEMAS_DIR


def test_committed_schemas_match_the_models() -> None:
    """The files in schemas/ are exactly what the models generate."""
    for name, content in json_schemas().items():
        committed = SCHEMAS_DIR / name
        assert committed.exists(), f"{name} missing: run `broker schemas export`"
        assert committed.read_bytes() == content, (
            f"schemas/{name} drifted from the models: run `broker schemas export`"
        )


def test_one_schema_per_message_type_plus_labels() -> None:
    """Every message type has its schema file per version (receipts two), and the labels
    have one."""
    names = set(json_schemas())
    versions = {f"{t}.v1.schema.json" for t in MessageType} | {"receipt.v2.schema.json"}
    assert names == versions | {"labels.schema.json"}


def test_schemas_are_deterministic_and_mark_categories() -> None:
    """Two generations are byte-identical; fields carry their data category."""
    assert json_schemas() == json_schemas()
    text = json_schemas()["network.report.v1.schema.json"].decode()
    expected = {c.value for c in DataCategory} - {"health"}
    assert all(f'"x-data-category": "{c}"' in text for c in expected)
    assert json.loads(text)["additionalProperties"] is False


def test_export_writes_every_schema(tmp_path: Path) -> None:
    """`export --out DIR` writes the same bytes json_schemas() returns."""
    result = CliRunner().invoke(cli, ["schemas", "export", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name, content in json_schemas().items():
        assert (tmp_path / "out" / name).read_bytes() == content


def test_validate_reports_ok_for_valid_files() -> None:
    """Valid files print `FILE: ok` and exit 0."""
    paths = [str(p) for p in EXAMPLE_FILES]
    result = CliRunner().invoke(cli, ["schemas", "validate", *paths])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{p}: ok" for p in paths]


def test_validate_prints_each_problem_and_exits_4(tmp_path: Path) -> None:
    """An invalid file prints one line per problem with the field path and exits 4."""
    document = json.loads((SCHEMAS_DIR / "examples" / "receipt.json").read_bytes())
    document["body"]["status"] = "lost"
    document["colour"] = "red"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    good = str(SCHEMAS_DIR / "examples" / "receipt.json")
    result = CliRunner().invoke(cli, ["schemas", "validate", good, str(bad)])
    assert result.exit_code == 4
    lines = result.output.splitlines()
    assert lines[0] == f"{good}: ok"
    assert sorted(lines[1:]) == [
        f"{bad}: body.status: Input should be 'accepted' or 'rejected'",
        f"{bad}: colour: unknown field",
    ]


def test_validate_reports_an_unreadable_file(tmp_path: Path) -> None:
    """A missing file is reported, not a traceback, and the exit code is 4."""
    result = CliRunner().invoke(cli, ["schemas", "validate", str(tmp_path / "absent.json")])
    assert result.exit_code == 4
    assert "cannot read" in result.output
