"""``broker adapter rejected list|show``: the recipient's operators read the deliveries their
adapter refused (a table or JSON; one refusal with its frame), without changing anything."""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib

import pytest
from click.testing import CliRunner

from broker import errors
from broker.cli import cli
from broker.clock import FixedClock

from .test_cli import _config
from .world import RS, make_adapter

GARBAGE = b"XBD1garbage"


def _refused_once(tmp_path: pathlib.Path, clock: FixedClock) -> pathlib.Path:
    serbia = make_adapter(RS, tmp_path / "rs", clock=clock)
    serbia.receive_many([GARBAGE], ids=[{"topic": "xb.inbox.RS", "partition": 2, "offset": 9}])
    serbia.journal.close()
    serbia.inbox.close()
    return _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")


def test_rejected_list_as_a_table_and_as_json(tmp_path: pathlib.Path, clock: FixedClock) -> None:
    """The table names the reason and position; --json gives every field but the frame."""
    config = _refused_once(tmp_path, clock)
    table = CliRunner().invoke(
        cli, ["adapter", "rejected", "list", "--config", str(config)], env={"COLUMNS": "200"}
    )
    assert table.exit_code == 0, table.output
    assert "bad_attestation" in table.output
    assert "xb.inbox.RS/2/9" in table.output
    listed = CliRunner().invoke(
        cli, ["adapter", "rejected", "list", "--json", "--config", str(config)]
    )
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["reason_code"], row["offset"], row["identified_by"]) == ("bad_attestation", 9, None)
    assert row["frame_sha256"] == hashlib.sha256(GARBAGE).hexdigest()
    assert "frame_base64" not in row


def test_rejected_show_prints_the_frame_kept(tmp_path: pathlib.Path, clock: FixedClock) -> None:
    """One refusal as JSON, with the bytes of its frame in base64."""
    config = _refused_once(tmp_path, clock)
    shown = CliRunner().invoke(cli, ["adapter", "rejected", "show", "--config", str(config), "1"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert base64.b64decode(document["frame_base64"]) == GARBAGE
    assert document["frame_truncated"] is False


def test_rejected_show_of_an_unknown_id_is_a_usage_error(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """An id that was never recorded gives one clear error."""
    config = _refused_once(tmp_path, clock)
    with pytest.raises(errors.UsageError, match="no rejected delivery 7"):
        CliRunner().invoke(
            cli,
            ["adapter", "rejected", "show", "--config", str(config), "7"],
            catch_exceptions=False,
        )
