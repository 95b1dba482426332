"""``broker send`` places a validated submission in the spool; ``broker inbox list|show`` read
the local store (metadata in a table; one verified message as JSON)."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import pwd

import pytest
from click.testing import CliRunner

from broker import crypto, errors, keys
from broker.adapter import Adapter, parse_submission
from broker.cli import cli
from broker.clock import FixedClock
from broker.schema import EvaluationScheme, message_bytes

from .world import GB, NOW, RS, WORLD, deliver, make_adapter, report


def _config(tmp_path: pathlib.Path, store: pathlib.Path, store_extra: str = "") -> pathlib.Path:
    path = tmp_path / "adapter.yaml"
    path.write_text(
        "partner: RS\n"
        "registry: {path: registry.json, trusted_roots: roots.json}\n"
        "keys: {signing_key: sign.pem, decryption_keys: [kem.pem], "
        "passphrase: {env: KEY_PASSPHRASE}}\n"
        f"store: {{path: {store}{store_extra}}}\n"
        f"spool: {{dir: {tmp_path / 'spool'}}}\n",
        encoding="utf-8",
    )
    return path


def test_send_queues_a_submission(tmp_path: pathlib.Path) -> None:
    """Without the pre-check, the file lands in spool/incoming as a submission for the named
    partners, under the view id it printed."""
    config = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")
    message = tmp_path / "msg.json"
    message.write_bytes(message_bytes(report()))
    result = CliRunner().invoke(
        cli,
        ["send", "--no-precheck", "--config", str(config), str(message), "--to", "GB"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    (queued,) = (tmp_path / "spool" / "incoming").iterdir()
    assert str(queued) in result.output
    submission = parse_submission(queued.read_bytes())
    assert submission.to == (GB,)
    assert submission.message == report()
    assert f"GB  queued   {submission.ids[GB]}" in result.output


@pytest.mark.parametrize(
    ("name", "content", "to", "error"),
    [
        ("invalid message", b'{"type": "network.report"}', "GB", errors.SchemaError),
        ("bad partner code", None, "gb", errors.UsageError),
    ],
)
def test_send_refuses_bad_input_before_queueing(
    tmp_path: pathlib.Path, name: str, content: bytes | None, to: str, error: type[Exception]
) -> None:
    """Nothing reaches the spool when the message or the recipients are wrong."""
    config = _config(tmp_path, tmp_path / "inbox.sqlite")
    message = tmp_path / "msg.json"
    message.write_bytes(content if content is not None else message_bytes(report()))
    with pytest.raises(error):
        CliRunner().invoke(
            cli, ["send", "--config", str(config), str(message), "--to", to], catch_exceptions=False
        )
    incoming = tmp_path / "spool" / "incoming"
    assert not incoming.exists() or not list(incoming.iterdir()), name


def _received(tmp_path: pathlib.Path, clock: FixedClock) -> tuple[Adapter, str]:
    uk = make_adapter(GB, tmp_path / "gb", clock=clock)
    serbia = make_adapter(RS, tmp_path / "rs", clock=clock)
    uk.submit(report(), to=[RS])
    (entry,) = uk.journal.pending()
    assert serbia.receive(deliver(entry.envelope, recipient=RS)) == "stored"
    uk.journal.close()
    uk.inbox.close()
    return serbia, entry.message_id


def test_inbox_list_and_show(tmp_path: pathlib.Path, clock: FixedClock) -> None:
    """The list shows the message's id, sender and classification; show prints the message."""
    serbia, message_id = _received(tmp_path, clock)
    serbia.journal.close()
    serbia.inbox.close()
    config = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")
    listed = CliRunner().invoke(
        cli, ["inbox", "list", "--config", str(config)], env={"COLUMNS": "200"}
    )
    assert listed.exit_code == 0, listed.output
    assert message_id in listed.output
    assert "OFFICIAL-SENSITIVE" in listed.output
    shown = CliRunner().invoke(cli, ["inbox", "show", "--config", str(config), message_id])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert document["message_id"] == message_id
    assert document["sender"] == "GB"
    assert document["message"]["case_id"] == report().case_id


def test_inbox_show_of_an_unknown_id_is_a_usage_error(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """An id that is not in the inbox gives one clear error."""
    serbia, _ = _received(tmp_path, clock)
    serbia.journal.close()
    serbia.inbox.close()
    config = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")
    with pytest.raises(errors.UsageError, match="no message"):
        CliRunner().invoke(
            cli,
            ["inbox", "show", "--config", str(config), "01900000-0000-7000-8000-000000000009"],
            catch_exceptions=False,
        )


def test_inbox_show_says_until_when_and_why(tmp_path: pathlib.Path, clock: FixedClock) -> None:
    """Serbia keeps at most 30 days (stricter than gb-rs's 730): show names that rule."""
    serbia, message_id = _received(tmp_path, clock)
    serbia.journal.close()
    serbia.inbox.close()
    config = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")
    shown = CliRunner().invoke(cli, ["inbox", "show", "--config", str(config), message_id])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["retention"] == {
        "rule": "local",
        "why": "kept until 2026-12-28T12:00:00Z: this adapter keeps at most 30 days "
        "(store.retention_days)",
    }
    listed = CliRunner().invoke(
        cli, ["inbox", "list", "--config", str(config)], env={"COLUMNS": "250"}
    )
    assert "2026-12-28 (local)" in listed.output


def test_inbox_erase_shreds_the_message_and_its_delivery_file(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """Erased now, with the reason kept beside what is left; a second erase is refused."""
    serbia, message_id = _received(tmp_path, clock)
    serbia.journal.close()
    serbia.inbox.close()
    out = tmp_path / "delivered"
    out.mkdir()
    (out / f"{message_id}.json").write_text("{}")
    config = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")
    config.write_text(
        config.read_text().replace("store: {path: ", f"store: {{delivery_dir: {out}, path: ")
    )
    erase = ["inbox", "erase", "--config", str(config), message_id]
    erased = CliRunner().invoke(cli, [*erase, "--reason", "request RS-17"])
    assert erased.exit_code == 0, erased.output
    assert "(by erasure: request RS-17); 1 delivery file(s) removed" in erased.output
    assert list(out.iterdir()) == []
    with pytest.raises(errors.UsageError, match="by erasure: request RS-17"):
        CliRunner().invoke(
            cli, ["inbox", "show", "--config", str(config), message_id], catch_exceptions=False
        )
    with pytest.raises(errors.UsageError, match="shredded already"):
        CliRunner().invoke(cli, [*erase, "--reason", "again"], catch_exceptions=False)
    missing = CliRunner().invoke(cli, erase)
    assert missing.exit_code == 2
    assert "--reason" in missing.output


def test_inbox_search_finds_a_name_written_in_another_script(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """The report names "TESTOVIĆ": a search in Serbian Cyrillic finds it, with its full id,
    and one filter that does not match finds nothing."""
    serbia, message_id = _received(tmp_path, clock)
    serbia.journal.close()
    serbia.inbox.close()
    config = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")
    found = CliRunner().invoke(
        cli, ["inbox", "search", "--config", str(config), "--json", "ТЕСТОВИЋ"]
    )
    assert found.exit_code == 0, found.output
    assert [json.loads(line)["message_id"] for line in found.output.splitlines()] == [message_id]
    none = CliRunner().invoke(
        cli, ["inbox", "search", "--config", str(config), "--json", "--sender", "MK", "testovic"]
    )
    assert none.exit_code == 0, none.output
    assert none.output == ""


def _received_two(tmp_path: pathlib.Path, clock: FixedClock) -> list[str]:
    uk = make_adapter(GB, tmp_path / "gb", clock=clock)
    serbia = make_adapter(RS, tmp_path / "rs", clock=clock)
    uk.submit(report(), to=[RS])
    uk.submit(report(), to=[RS])
    ids: list[str] = []
    for entry in uk.journal.pending():
        assert serbia.receive(deliver(entry.envelope, recipient=RS)) == "stored"
        ids.append(entry.message_id)
    for adapter in (uk, serbia):
        adapter.journal.close()
        adapter.inbox.close()
    return ids


def test_inbox_list_piped_keeps_whole_ids_and_json_gives_every_field(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """Piped into another program, even at a narrow COLUMNS, no id is cut short; --json is one
    object per message."""
    ids = _received_two(tmp_path, clock)
    config = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")
    listed = CliRunner().invoke(
        cli, ["inbox", "list", "--config", str(config)], env={"COLUMNS": "40"}
    )
    assert listed.exit_code == 0, listed.output
    assert all(message_id in listed.output for message_id in ids), listed.output
    as_json = CliRunner().invoke(cli, ["inbox", "list", "--config", str(config), "--json"])
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert sorted(row["message_id"] for row in rows) == sorted(ids)
    assert {row["sender"] for row in rows} == {"GB"}
    assert all(row["shredded_at"] is None and row["retention_rule"] for row in rows)


def test_inbox_show_takes_a_unique_prefix_and_names_the_candidates_of_one_that_is_not(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """Two messages of the same millisecond share their first 13 characters: a prefix that
    far is ambiguous (both named), one character more picks one, fewer than 8 is refused."""
    first, second = _received_two(tmp_path, clock)
    assert first[:13] == second[:13]
    config = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")
    common = next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)

    def show(prefix: str) -> str:
        shown = CliRunner().invoke(
            cli, ["inbox", "show", "--config", str(config), prefix], catch_exceptions=False
        )
        return str(json.loads(shown.output)["message_id"])

    assert show(first[: common + 1].upper()) == first
    assert show(second) == second
    with pytest.raises(errors.UsageError, match="several message ids") as ambiguous:
        show(first[:common])
    assert first in str(ambiguous.value)
    assert second in str(ambiguous.value)
    with pytest.raises(errors.UsageError, match="at least its first 8 characters"):
        show(first[:7])


def test_inbox_show_adds_the_grading_in_the_agencys_own_scheme(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """A reader of Europol's 4x4 sees the UK's 3x5x2 grading translated, with each loss named;
    the message keeps the sender's grading, and --grading-as chooses another scheme."""
    serbia, message_id = _received(tmp_path, clock)
    serbia.journal.close()
    serbia.inbox.close()
    config = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite", ", evaluation_scheme: europol-4x4")
    shown = CliRunner().invoke(
        cli, ["inbox", "show", "--config", str(config), message_id], catch_exceptions=False
    )
    document = json.loads(shown.output)
    assert document["message"]["evaluation"] == {
        "scheme": "uk-3x5x2",
        "source": "1",
        "information": "B",
        "handling": "C",
    }
    grading = document["grading"]
    assert (grading["scheme"], grading["from"]) == ("europol-4x4", "uk-3x5x2")
    assert grading["evaluation"]["scheme"] == "europol-4x4"
    assert any("handling 'C' of uk-3x5x2 has no europol-4x4" in line for line in grading["lost"])

    same = CliRunner().invoke(
        cli,
        ["inbox", "show", "--config", str(config), "--grading-as", "uk-3x5x2", message_id],
        catch_exceptions=False,
    )
    assert json.loads(same.output)["grading"]["lost"] == []
    plain = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")
    unset = CliRunner().invoke(cli, ["inbox", "show", "--config", str(plain), message_id])
    assert "grading" not in json.loads(unset.output)


def test_inbox_show_reads_gradings_in_the_scheme_the_registry_lists_for_its_partner(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """Without store.evaluation_scheme, the registry's entry for RS (from its card, `keys
    generate --evaluation-scheme`) says how its analysts read gradings."""
    serbia, message_id = _received(tmp_path, clock)
    serbia.journal.close()
    serbia.inbox.close()
    card, _ = keys.generate_partner_keys(
        RS,
        name="Serbia",
        suite=crypto.Suite.CLASSIC,
        not_before=NOW,
        valid_for=dt.timedelta(days=30),
        evaluation_scheme=EvaluationScheme.ADMIRALTY_6X6,
    )
    draft = WORLD.edit()
    draft.add_partner(card)
    registry, data = WORLD.resign(draft, now=NOW)
    assert registry.evaluation_scheme_of(RS) is EvaluationScheme.ADMIRALTY_6X6
    assert registry.evaluation_scheme_of(GB) is None
    (tmp_path / "registry.json").write_bytes(data)
    config = _config(tmp_path, tmp_path / "rs" / "inbox.sqlite")
    shown = CliRunner().invoke(
        cli, ["inbox", "show", "--config", str(config), message_id], catch_exceptions=False
    )
    grading = json.loads(shown.output)["grading"]
    assert (grading["scheme"], grading["from"]) == ("admiralty-6x6", "uk-3x5x2")


def test_every_read_of_a_message_is_logged_before_it_is_shown(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """`inbox show` and `inbox export` each log who read which message, and `inbox reads`
    lists them, oldest first; the reads outlive an erasure of the message (s.62)."""
    serbia, message_id = _received(tmp_path, clock)
    serbia.journal.close()
    serbia.inbox.close()
    config = str(_config(tmp_path, tmp_path / "rs" / "inbox.sqlite"))
    runner = CliRunner(env={"USER": "someone-else", "LOGNAME": "someone-else"})
    assert runner.invoke(cli, ["inbox", "show", "--config", config, message_id]).exit_code == 0
    out = tmp_path / "bundle.stix.json"
    exported = runner.invoke(cli, ["inbox", "export", "--config", config, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    listed = runner.invoke(cli, ["inbox", "reads", "--json", "--config", config, message_id[:13]])
    assert listed.exit_code == 0, listed.output
    reads = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["action"] for r in reads] == ["show", "export"]
    assert {r["reader"] for r in reads} == {pwd.getpwuid(os.geteuid()).pw_name}
    assert all(r["message_id"] == message_id for r in reads)
    erased = runner.invoke(
        cli, ["inbox", "erase", "--config", config, "--reason", "request 7", message_id]
    )
    assert erased.exit_code == 0, erased.output
    text = runner.invoke(cli, ["inbox", "reads", "--config", config, message_id])
    assert text.output.count(pwd.getpwuid(os.geteuid()).pw_name) == 2
