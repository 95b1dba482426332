"""An officer sends: ``broker send --officer`` on an adapter with officers needs the submit
role; the adapter names the officer, with their agency and unit from its directory, in each
view's signed header (version 2); ``broker status`` shows who submitted each view; a
submission naming an officer who may not submit is rejected with the reason. On a provisioned
federation's real files, with no Kafka."""

from __future__ import annotations

import csv
import io
import json
import pathlib
import shutil
from collections.abc import Sequence

import pytest
from click.testing import CliRunner, Result
from ruamel.yaml import YAML

from broker import envelope, errors
from broker.adapter import (
    SendJournal,
    journal_path,
    parse_submission,
    write_submission,
)
from broker.cli import cli
from broker.config import AdapterConfig, load_config
from broker.demo.federation import Federation
from broker.demo.scenario import network_report
from broker.ids import PartnerCode, new_message_id
from broker.pipeline.send import withdrawal_for
from broker.schema import labels_of, message_bytes

from .world import process_spool

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[3]

CSV_COLUMNS = (
    "at", "kind", "action", "person", "officer", "agency", "unit", "released_by", "message_id",
    "counterpart",
    "case_id", "message_type", "classification", "purposes", "data_categories",
)  # fmt: skip
ORIGIN = {"agency": "Border Force", "officer": "d.clarke", "unit": "Maritime Intelligence"}


@pytest.fixture(autouse=True)
def _logging(logging_put_back: None) -> None:
    """Every test here runs the CLI in process."""


def _run(args: Sequence[str], *, officer: str | None = None, token: str | None = None) -> Result:
    env = {"BROKER_OFFICER": officer, "BROKER_OFFICER_TOKEN": token}
    return CliRunner(env=env).invoke(cli, list(args))


def _token(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_an_officers_view_names_them_in_its_signed_header_and_status_shows_who(
    federation: Federation, tmp_path: pathlib.Path
) -> None:
    config = str(federation.config_path("GB"))
    process_spool(config)  # the adapter's first run makes its store
    report = tmp_path / "report.json"
    report.write_bytes(message_bytes(network_report("GB-OFFICER-1")))
    spool = federation.spool_dir("GB")
    add = ["officers", "add", "--config", config, "--agency", "Border Force"]
    admin = _token(_run([*add, "--unit", "IT", "--role", "admin", "ops.lead"]))
    clerk = _token(
        _run(
            [*add, "--unit", "Maritime Intelligence", "--role", "submit", "d.clarke"],
            officer="ops.lead",
            token=admin,
        )
    )
    send = ["send", "--json", "--config", config, "--to", "RS", str(report)]

    # once there are officers, nobody sends anonymously, nor without the submit role
    refused = _run(send)
    assert isinstance(refused.exception, errors.AccessError)
    assert "has officers" in str(refused.exception)
    refused = _run(send, officer="ops.lead", token=admin)
    assert isinstance(refused.exception, errors.AccessError)
    assert "does not hold the submit role" in str(refused.exception)
    refused = _run(send, officer="d.clarke", token=admin)
    assert "wrong token" in str(refused.exception)
    assert list((spool / "incoming").iterdir()) == []

    sent = _run(send, officer="d.clarke", token=clerk)
    assert sent.exit_code == 0, sent.output
    (view,) = json.loads(sent.stdout)["views"]
    (queued,) = (spool / "incoming").glob("*.json")
    assert parse_submission(queued.read_bytes()).officer == "d.clarke"

    process_spool(config)
    with SendJournal.open(journal_path(load_config(config, AdapterConfig))) as journal:
        (entry,) = [e for e in journal.pending() if e.message_id == view["message_id"]]
    header = envelope.parse(entry.envelope).header
    assert header.version == 2
    assert header.origin is not None
    assert header.origin.model_dump() == ORIGIN

    status = _run(["status", "--config", config, view["message_id"]])
    assert "submitted by d.clarke (Border Force, Maritime Intelligence)" in status.stdout
    status = _run(["status", "--json", "--config", config, view["message_id"]])
    assert json.loads(status.stdout)["views"][0]["origin"] == ORIGIN

    # the s.62 export names the person, for a regulator; only an admin officer exports it
    export = ["audit", "s62-export", "--config", config]
    denied = _run(export, officer="d.clarke", token=clerk)
    assert "does not hold the admin role" in str(denied.exception)
    rows = list(csv.DictReader(io.StringIO(_run(export, officer="ops.lead", token=admin).stdout)))
    (row,) = [r for r in rows if r["message_id"] == view["message_id"]]
    assert (row["kind"], row["action"], row["counterpart"]) == ("disclosure", "send", "RS")
    assert (row["officer"], row["agency"], row["unit"]) == (
        "d.clarke",
        "Border Force",
        "Maritime Intelligence",
    )
    assert row["person"] == "d.clarke (Border Force, Maritime Intelligence)"
    assert (row["case_id"], row["message_type"]) == ("GB-OFFICER-1", "network.report")
    assert "people-smuggling" in row["purposes"].split(";")
    lines = _run([*export, "--format", "json"], officer="ops.lead", token=admin).stdout
    (document,) = [json.loads(line) for line in lines.splitlines() if view["message_id"] in line]
    assert {k: document[k] for k in ("officer", "agency", "unit")} == {
        "officer": "d.clarke",
        "agency": "Border Force",
        "unit": "Maritime Intelligence",
    }
    earlier = _run([*export, "--until", "2020-01-01"], officer="ops.lead", token=admin)
    assert earlier.stdout.splitlines() == [",".join(CSV_COLUMNS)]


def test_a_submission_naming_an_officer_who_may_not_submit_is_rejected_with_why(
    federation: Federation,
) -> None:
    """The spool is written by the adapter's own account; still, a submission naming an
    unknown officer, or one without the submit role, is never sealed under their name."""
    config = str(federation.config_path("MK"))
    process_spool(config)
    admin = _token(
        _run(
            [
                "officers",
                "add",
                "--config",
                config,
                "--agency",
                "MVR",
                "--unit",
                "IT",
                "--role",
                "admin",
                "ops.lead",
            ]
        )
    )
    assert admin.startswith("xbo_")
    spool = federation.spool_dir("MK")
    message = network_report("MK-OFFICER-1")
    for officer, why in (
        ("ghost", "officer ghost is not in this adapter's directory"),
        ("ops.lead", "officer ops.lead does not hold the submit role"),
    ):
        queued = write_submission(spool, message, [PartnerCode("GB")], officer=officer)
        process_spool(config)
        rejected = spool / "rejected" / queued.name
        assert rejected.exists()
        assert why in (spool / "rejected" / f"{queued.name}.reason").read_text()


@pytest.fixture(scope="module")
def rs_officers(federation: Federation) -> dict[str, str]:
    """RS's officers, by id, with their tokens: it.lead (admin, approve) and m.ilic (submit,
    approve)."""
    config = str(federation.config_path("RS"))
    process_spool(config)  # the adapter's first run makes its store
    add = ["officers", "add", "--config", config, "--agency", "Granična policija"]
    admin = _token(_run([*add, "--unit", "IT", "--role", "admin", "--role", "approve", "it.lead"]))
    clerk = _token(
        _run(
            [*add, "--unit", "Analysis", "--role", "submit", "--role", "approve", "m.ilic"],
            officer="it.lead",
            token=admin,
        )
    )
    return {"it.lead": admin, "m.ilic": clerk}


def test_a_four_eyes_flow_is_held_until_another_officer_releases_it(
    federation: Federation, tmp_path: pathlib.Path, rs_officers: dict[str, str]
) -> None:
    """spool.four_eyes_flows: RS's views to GB wait in held/ until a second officer with the
    approve role releases them; the submitter cannot release their own, and a view of the
    flow dropped into incoming/ with no release is refused by the adapter (not_released)."""
    config = _four_eyes_config(federation, tmp_path, ["RS-GB-OPS"])
    admin, clerk = rs_officers["it.lead"], rs_officers["m.ilic"]
    report = tmp_path / "report.json"
    report.write_bytes(message_bytes(network_report("RS-FOUR-EYES-1")))
    spool = federation.spool_dir("RS")

    sent = _run(["send", "--json", "--config", config, "--to", "GB", str(report)],
                officer="m.ilic", token=clerk)  # fmt: skip
    assert sent.exit_code == 0, sent.output
    (view,) = json.loads(sent.stdout)["views"]
    assert view["state"] == "held"
    (held,) = (spool / "held").glob("*.json")
    assert list((spool / "incoming").iterdir()) == []
    process_spool(config)  # the adapter never reads held/
    assert held.exists()
    status = _run(["status", "--config", config, view["message_id"]])
    assert "held for a second officer's release (submitted by m.ilic)" in status.stdout

    release = ["release", "--config", config, view["message_id"][:13]]
    # the second officer sees what they are about to release, and nothing moves
    shown = _run([*release, "--show"], officer="it.lead", token=admin)
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert (document["submitted_by"], document["views"]) == ("m.ilic", {"GB": view["message_id"]})
    assert document["message"]["case_id"] == "RS-FOUR-EYES-1"
    assert held.exists()
    own = _run(release, officer="m.ilic", token=clerk)
    assert isinstance(own.exception, errors.AccessError)
    assert "another officer must release it" in str(own.exception)
    released = _run(release, officer="it.lead", token=admin)
    assert released.exit_code == 0, released.output
    assert "released by it.lead (submitted by m.ilic)" in released.stdout
    assert not held.exists()
    (queued,) = (spool / "incoming").glob("*.json")
    assert parse_submission(queued.read_bytes()).approver == "it.lead"
    process_spool(config)
    status = _run(["status", "--json", "--config", config, view["message_id"]])
    (fate,) = json.loads(status.stdout)["views"]
    assert (fate["state"], fate["released_by"]) == ("journalled", "it.lead")
    status = _run(["status", "--config", config, view["message_id"]])
    assert "submitted by m.ilic (Granična policija, Analysis), released by it.lead" in status.stdout
    export = ["audit", "s62-export", "--format", "json", "--config", config]
    lines = _run(export, officer="it.lead", token=admin).stdout.splitlines()
    (row,) = [json.loads(line) for line in lines if view["message_id"] in line]
    assert (row["officer"], row["released_by"]) == ("m.ilic", "it.lead")

    # the adapter is the one that enforces it: a submission that skipped held/ is refused
    ids = {PartnerCode("GB"): new_message_id()}
    write_submission(spool, network_report("RS-FOUR-EYES-2"), list(ids), ids=ids, officer="m.ilic")
    process_spool(config)
    status = _run(["status", "--json", "--config", config, ids[PartnerCode("GB")]])
    (fate,) = json.loads(status.stdout)["views"]
    assert (fate["state"], fate["refused"]["reason_code"]) == ("refused", "not_released")


def _four_eyes_config(federation: Federation, tmp_path: pathlib.Path, flows: list[str]) -> str:
    """RS's configuration with ``spool.four_eyes_flows`` set to ``flows``."""
    yaml = YAML(typ="safe")
    document = yaml.load(federation.config_path("RS").read_text(encoding="utf-8"))
    document["spool"]["four_eyes_flows"] = flows
    config = tmp_path / "rs-four-eyes.yaml"
    with config.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)
    return str(config)


def test_no_copy_text_or_misnamed_flow_gets_past_the_four_eyes_rule(
    federation: Federation, tmp_path: pathlib.Path, rs_officers: dict[str, str]
) -> None:
    """What the red team tried: a withdrawal that takes back nothing sent from here (free
    text on a four-eyes flow), a receipt or withdrawal handed to `broker send`, a copy of a
    submission (or a second release) choosing ids already sealed, and a flow name no accord
    has, which would switch the rule off unnoticed."""
    misnamed = _four_eyes_config(federation, tmp_path, ["rs-gb-ops"])
    with pytest.raises(errors.UsageError, match="names rs-gb-ops, which no accord in force has"):
        process_spool(misnamed)
    config = _four_eyes_config(federation, tmp_path, ["RS-GB-OPS"])
    spool = federation.spool_dir("RS")
    gb = PartnerCode("GB")

    # free text dressed as a withdrawal of a view never sent from here: held like the rest
    notice = withdrawal_for(
        labels_of(network_report("RS-FREE-TEXT")),
        case_id=None,
        withdraws=new_message_id(),
        reason="the boat is the Lady Example, leaving Durres on Friday",
    )
    ids = {gb: new_message_id()}
    write_submission(spool, notice, [gb], ids=ids)
    process_spool(config)
    status = _run(["status", "--json", "--config", config, ids[gb]])
    assert json.loads(status.stdout)["views"][0]["refused"]["reason_code"] == "not_released"

    for kind, document in (("withdrawal", notice), ("receipt", None)):
        path = tmp_path / f"{kind}.json"
        example = ROOT / "schemas" / "examples" / "receipt.json"
        path.write_bytes(message_bytes(document) if document else example.read_bytes())
        refused = _run(
            ["send", "--config", config, "--to", "GB", str(path)],
            officer="m.ilic",
            token=rs_officers["m.ilic"],
        )
        assert isinstance(refused.exception, errors.UsageError)
        assert f"is a {kind}" in str(refused.exception)

    # a submission choosing an id already sealed here (a copy, a second release): rejected
    # with the reason, the adapter carries on, nothing is sealed twice
    report = network_report("RS-COPY-1")
    ids = {gb: new_message_id()}
    first = write_submission(spool, report, [gb], ids=ids, officer=None)
    plain = str(federation.config_path("RS"))
    process_spool(plain)
    copy = write_submission(spool, report, [gb], ids=ids)
    again = write_submission(spool, report, [gb], ids=ids)  # twice in one chunk, too
    process_spool(plain)
    for path in (copy, again):
        reason = (spool / "rejected" / f"{path.name}.reason").read_text()
        assert f"a view under {ids[gb]} was already sealed" in reason
    assert not first.exists()


def test_a_release_names_one_held_submission_or_none(
    federation: Federation, tmp_path: pathlib.Path, rs_officers: dict[str, str]
) -> None:
    """Two held submissions chosen in the same millisecond share a long id prefix: a
    release by that prefix names both and releases neither; a prefix under 8 characters is
    refused."""
    config = _four_eyes_config(federation, tmp_path, ["RS-GB-OPS"])
    spool = federation.spool_dir("RS")
    gb = PartnerCode("GB")
    same_ms = [new_message_id(unix_ms=1_800_000_000_000) for _ in range(2)]
    for index, mid in enumerate(same_ms):
        message = network_report(f"RS-PREFIX-{index}")
        write_submission(spool, message, [gb], ids={gb: mid}, officer="m.ilic", held=True)
    token = rs_officers["it.lead"]
    for prefix, why in (
        (same_ms[0][:13], "views of more than one submission start so"),
        ("0", "at least its first 8 characters"),
    ):
        refused = _run(["release", "--config", config, prefix], officer="it.lead", token=token)
        assert isinstance(refused.exception, errors.UsageError), refused.output
        assert why in str(refused.exception)
    held = sorted((spool / "held").glob("*.json"))
    assert len(held) == 2  # neither was released
    for path in held:
        path.unlink()


def test_on_an_adapter_with_officers_only_a_sign_policy_officer_signs_with_its_policy_key(
    federation: Federation, tmp_path: pathlib.Path
) -> None:
    """Where officers share the policy key on the adapter's host, `--adapter-config` makes
    `policy sign` and the accord acts authenticate an officer with the sign-policy role before
    the key is opened."""
    config = str(federation.config_path("TR"))
    process_spool(config)
    add = ["officers", "add", "--config", config, "--agency", "EGM", "--unit", "Policy"]
    admin = _token(_run([*add, "--role", "admin", "t.admin"]))
    clerk = _token(_run([*add, "--role", "submit", "t.clerk"], officer="t.admin", token=admin))
    signer = _token(
        _run([*add, "--role", "sign-policy", "t.signer"], officer="t.admin", token=admin)
    )
    accord = tmp_path / "gb-tr.yaml"
    shutil.copy(federation.root / "accords" / "gb-tr.yaml", accord)
    key = ["--key", str(federation.root / "keys" / "TR" / "policy.pem")]
    passphrase = ["--passphrase-file", str(federation.root / "secrets" / "TR.passphrase")]
    sign = ["policy", "sign", str(accord), "--partner", "TR", *key, *passphrase,
            "--registry", str(federation.registry_path), "--adapter-config", config]  # fmt: skip
    suspend = ["policy", "suspend", str(accord), "--partner", "TR", *key, *passphrase,
               "--adapter-config", config]  # fmt: skip

    assert "has officers" in str(_run(sign).exception)
    for command in (sign, suspend):
        refused = _run(command, officer="t.clerk", token=clerk)
        assert isinstance(refused.exception, errors.AccessError)
        assert "does not hold the sign-policy role" in str(refused.exception)
    assert not (tmp_path / "gb-tr.yaml.sigs.json").exists()
    assert not list(tmp_path.glob("*.acts.json"))
    signed = _run(sign, officer="t.signer", token=signer)
    assert signed.exit_code == 0, signed.output
    assert "TR's signature by officer t.signer (EGM, Policy)" in signed.stdout
    assert (tmp_path / "gb-tr.yaml.sigs.json").exists()
