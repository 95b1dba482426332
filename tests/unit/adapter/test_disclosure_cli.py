"""``broker disclose`` writes a bundle from what the adapter kept; ``broker disclosure verify``
checks it with the registry alone and prints exactly what it discloses, or refuses it.

The registry is made for today (the commands check it against the wall clock), so nothing
here depends on the day the tests run.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import pathlib
import stat

import pytest
from click.testing import CliRunner, Result

from broker.cli import cli
from broker.clock import FixedClock
from broker.keys.testing import RegistryFixture, build_registry
from broker.pipeline.send import Outgoing

from .world import GB, RS, deliver, make_adapter, report

TODAY = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def today() -> RegistryFixture:
    return build_registry(now=TODAY)


@pytest.fixture
def received(tmp_path: pathlib.Path, today: RegistryFixture) -> tuple[pathlib.Path, str]:
    """Serbia's adapter configuration, after it stored one GB report; the report's id."""
    clock = FixedClock(TODAY)
    uk = make_adapter(GB, tmp_path / "gb", clock=clock, world=today)
    serbia = make_adapter(RS, tmp_path / "rs", clock=clock, world=today)
    (outgoing,) = uk.submit(report(), to=[RS])
    assert isinstance(outgoing, Outgoing)
    gateway_key = next(iter(today.gateways.values()))
    frame = deliver(outgoing.envelope, recipient=RS, at=clock.now(), gateway_key=gateway_key)
    assert serbia.receive(frame) == "stored"
    for adapter in (uk, serbia):
        adapter.journal.close()
        adapter.inbox.close()
    (tmp_path / "registry.json").write_bytes(today.data)
    config = tmp_path / "adapter.yaml"
    config.write_text(
        "partner: RS\n"
        f"registry: {{path: {tmp_path / 'registry.json'}, "
        f"trusted_roots: {tmp_path / 'registry.json'}}}\n"
        "keys: {signing_key: sign.pem, decryption_keys: [kem.pem], "
        "passphrase: {env: KEY_PASSPHRASE}}\n"
        f"store: {{path: {tmp_path / 'rs' / 'inbox.sqlite'}}}\n",
        encoding="utf-8",
    )
    return config, outgoing.message_id


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_disclose_then_verify_shows_exactly_what_was_disclosed(
    received: tuple[pathlib.Path, str], tmp_path: pathlib.Path
) -> None:
    config, message_id = received
    out = tmp_path / "bundle.json"
    made = _run(
        "disclose", message_id, "--config", str(config), "--fields", "case_id,body.summary",
        "--out", str(out),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert made.stdout == f"disclosed body.summary, case_id of {message_id} from GB to {out}\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    logged = _run("inbox", "reads", "--json", "--config", str(config), message_id).output
    assert [json.loads(line)["action"] for line in logged.splitlines()] == ["disclose"]
    registry = str(tmp_path / "registry.json")
    shown = _run("disclosure", "verify", str(out), "--registry", registry)
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith(f"verified: message {message_id} from GB to RS\n")
    assert "disclosed 2 of " in shown.output
    assert f"  case_id = {json.dumps(report().case_id)}\n" in shown.output
    assert "withheld (committed, not revealed): body.active_since" in shown.output
    document = json.loads(
        _run("disclosure", "verify", str(out), "--registry", registry, "--json").output
    )
    assert document["verified"] is True
    assert set(document["disclosed"]) == {"case_id", "body.summary"}
    assert "body.members" in document["withheld"]
    assert document["delivery"]["rule_ids"] == ["test"]
    frame = base64.b64decode(json.loads(out.read_bytes())["delivery"])
    assert document["delivery"]["envelope_sha256"] in frame.decode("latin-1")


def test_disclose_refuses_to_overwrite_and_unknown_fields(
    received: tuple[pathlib.Path, str], tmp_path: pathlib.Path
) -> None:
    config, message_id = received
    out = tmp_path / "bundle.json"
    out.write_text("mine")
    exists = _run(
        "disclose", message_id, "--config", str(config), "--fields", "case_id", "--out", str(out)
    )
    assert exists.exit_code == 2
    assert "exists" in exists.output
    assert out.read_text() == "mine"
    other = tmp_path / "other.json"
    unknown = _run(
        "disclose",
        message_id,
        "--config",
        str(config),
        "--fields",
        "body.nope",
        "--out",
        str(other),
    )
    assert unknown.exit_code == 2
    assert "no such committed field(s): body.nope; the message commits " in unknown.output
    assert not other.exists()


def test_a_tampered_bundle_fails_verification_with_one_line(
    received: tuple[pathlib.Path, str], tmp_path: pathlib.Path
) -> None:
    config, message_id = received
    out = tmp_path / "bundle.json"
    _run("disclose", message_id, "--config", str(config), "--fields", "case_id", "--out", str(out))
    document = json.loads(out.read_bytes())
    document["fields"]["case_id"]["value"] = "GB-NCA-2026-0001"
    lying = tmp_path / "lying.json"
    lying.write_text(json.dumps(document))
    refused = _run(
        "disclosure", "verify", str(lying), "--registry", str(tmp_path / "registry.json")
    )
    assert refused.exit_code == 6
    assert refused.output == "error: disclosure does not verify\n"
    frame = bytearray(base64.b64decode(document["delivery"]))
    frame[-1] ^= 1
    document["delivery"] = base64.b64encode(bytes(frame)).decode()
    lying.write_text(json.dumps(document))
    refused = _run(
        "disclosure", "verify", str(lying), "--registry", str(tmp_path / "registry.json")
    )
    assert refused.exit_code == 6, refused.output
    assert refused.output.startswith("error: ")
