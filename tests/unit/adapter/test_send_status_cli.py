"""``broker send`` decides before it queues and prints each view's id; ``broker status ID``
follows a view from the spool to the journal. On a provisioned federation's real files (keys,
signed registry, co-signed accords re-dated around now), with no Kafka: nothing here needs one.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from broker.adapter import SendJournal, build_adapter, journal_path, parse_submission
from broker.adapter.fates import Acknowledged
from broker.cli import _app, cli
from broker.config import AdapterConfig, load_config
from broker.demo.federation import Federation
from broker.demo.scenario import network_report
from broker.ids import MessageId, PartnerCode
from broker.pipeline.notice import VerifiedNotice
from broker.runtime import Metrics
from broker.schema import message_bytes

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _logging(logging_put_back: None) -> None:
    """Every test here runs the CLI in process."""


@pytest.fixture
def message_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "report.json"
    path.write_bytes(message_bytes(network_report("GB-STATUS-1")))
    return path


@pytest.fixture
def empty_spool(federation: Federation) -> Iterator[pathlib.Path]:
    incoming = federation.spool_dir("GB") / "incoming"
    yield incoming
    for path in incoming.glob("*.json"):
        path.unlink()


def _run(*args: str) -> tuple[int, str, str]:
    """The command in a process of its own: its exit status, stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "broker", *args], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout, done.stderr


def test_a_refused_recipient_is_named_and_the_others_queued_under_printed_ids(
    federation: Federation, message_file: pathlib.Path, empty_spool: pathlib.Path
) -> None:
    """RS has an accord with GB and QQ none: RS's view is queued under the id printed, QQ is
    named with ``no_accord`` and left out of the submission."""
    config = str(federation.config_path("GB"))
    status, out, err = _run(
        "send", "--json", "--config", config, "--to", "RS,QQ", str(message_file)
    )
    assert status == 0, err
    document = json.loads(out)
    rs, qq = document["views"]
    assert (rs["recipient"], rs["state"]) == ("RS", "queued")
    assert (qq["recipient"], qq["state"], qq["reason_code"]) == ("QQ", "refused", "no_accord")
    (queued,) = empty_spool.glob("*.json")
    assert document["spool_file"] == str(queued)
    submission = parse_submission(queued.read_bytes())
    assert submission.to == ("RS",)
    assert submission.ids == {"RS": rs["message_id"]}


def test_when_every_recipient_is_refused_nothing_is_queued_and_the_exit_is_10(
    federation: Federation, message_file: pathlib.Path, empty_spool: pathlib.Path
) -> None:
    """`broker send --to QQ` used to say "queued for QQ" and exit 0; it now refuses at once with
    one ``error:`` line naming the reason, exit status 10, and an empty spool."""
    config = str(federation.config_path("GB"))
    status, out, err = _run("send", "--config", config, "--to", "QQ", str(message_file))
    assert status == 10
    assert err.splitlines() == [
        "error: every recipient was refused, nothing was queued (QQ: no_accord)"
    ]
    assert out.startswith("QQ  refused  no_accord: no accord in force between GB and QQ")
    assert list(empty_spool.iterdir()) == []


def test_status_follows_a_view_from_the_spool_into_the_journal(
    federation: Federation,
    message_file: pathlib.Path,
    empty_spool: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before the adapter runs, ``status`` finds the view waiting in the spool (by a prefix of
    its id); once the adapter has sealed it, the journal says it is journalled; an id nobody
    sent is a usage error (exit 2)."""
    config = str(federation.config_path("GB"))
    assert _app.run(cli, ["send", "--json", "--config", config, "--to", "RS,MK",
                          str(message_file)]) == 0  # fmt: skip
    views = json.loads(capsys.readouterr().out)["views"]
    ids = {view["recipient"]: view["message_id"] for view in views}

    assert _app.run(cli, ["status", "--config", config, ids["MK"][:13]]) == 0
    out = capsys.readouterr().out
    assert f"MK  {ids['MK']}  waiting in the spool" in out
    assert f"RS  {ids['RS']}  waiting in the spool" in out

    adapter = build_adapter(load_config(config, AdapterConfig), metrics=Metrics())
    try:
        assert adapter.process_spool() == 1
    finally:
        adapter.journal.close()
        adapter.inbox.close()
    assert _app.run(cli, ["status", "--json", "--config", config, ids["RS"]]) == 0
    fates = {v["recipient"]: v for v in json.loads(capsys.readouterr().out)["views"]}
    assert {r: (v["message_id"], v["state"]) for r, v in fates.items()} == {
        "RS": (ids["RS"], "journalled"),
        "MK": (ids["MK"], "journalled"),
    }
    assert fates["RS"]["acknowledged_at"] is None

    # the sender's list: newest first, each view once, filtered by recipient on request
    assert _app.run(cli, ["sent", "list", "--json", "--config", config]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(v["recipient"], v["message_id"], v["state"]) for v in listed[:2]} == {
        ("RS", ids["RS"], "journalled"),
        ("MK", ids["MK"], "journalled"),
    }
    assert _app.run(cli, ["sent", "list", "--to", "MK", "--config", config]) == 0
    table = capsys.readouterr().out
    assert ids["MK"] in table
    assert ids["RS"] not in table
    assert _app.run(cli, ["sent", "show", "--json", "--config", config, ids["MK"]]) == 0
    assert json.loads(capsys.readouterr().out)["views"] == list(fates.values())

    # the gateway's notice of a quarantine: its reason may quote anything anyone wrote, and
    # is shown as text (a Rich markup tag in it once broke the table)
    now = dt.datetime.now(dt.UTC)
    with SendJournal.open(journal_path(load_config(config, AdapterConfig))) as journal:
        journal.acknowledge(Acknowledged(MessageId(ids["MK"]), "xb.outbox.GB", 0, 3), now=now)
        notice = VerifiedNotice(
            MessageId(ids["MK"]), PartnerCode("MK"), ("xb.outbox.GB", 0, 3), "malformed",
            "xb-recipient=[b'[/x]'] [bold]", now,
        )  # fmt: skip
        assert journal.record_quarantines([notice]) == 1
    assert _app.run(cli, ["sent", "list", "--to", "MK", "--config", config]) == 0
    assert "[/x]" in capsys.readouterr().out
    assert _app.run(cli, ["status", "--config", config, ids["MK"]]) == 0
    assert "quarantined by the gateway: malformed: xb-recipient=[b'[/x]']" in (
        capsys.readouterr().out
    )

    assert (
        _app.run(cli, ["status", "--config", config, "01234567-89ab-7def-8123-456789abcdef"]) == 2
    )
    assert capsys.readouterr().err.startswith("error: 01234567-89ab-7def-8123-456789abcdef: no ")
