"""``broker doctor``: a daemon's set-up checked without starting it, and what expires soon, on a
provisioned federation's real files (no Kafka is contacted). Each run is a process of its own,
as an operator runs it: its exit status and its lines are the interface."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import shutil
import subprocess
import sys

import pytest
from ruamel.yaml import YAML

from broker.demo.federation import Federation, current_accords, provision

pytestmark = pytest.mark.slow


def _provision(root: pathlib.Path) -> Federation:
    accords = current_accords(root / "accords-source", now=dt.datetime.now(dt.UTC))
    return provision(root / "federation", bootstrap="127.0.0.1:9", accords=accords)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    return _provision(tmp_path_factory.mktemp("doctor"))


def _doctor(*args: str, clock_ahead_days: int | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "broker", "doctor", *args]
    if clock_ahead_days is not None:
        faketime = shutil.which("faketime")
        if faketime is None:
            pytest.skip("Debian's faketime is not installed (README's test command installs it)")
        argv = [faketime, "-f", f"+{clock_ahead_days}d", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("daemon", ["GB", "gateway", "witness"])
def test_a_sound_set_up_passes_and_names_what_expires_within_the_window(
    federation: Federation, daemon: str
) -> None:
    """The provisioned registry expires in 30 days: inside the default window it is a warning
    (exit 0); with --days 7 nothing is listed."""
    config = str(federation.config_path(daemon))
    done = _doctor("--config", config)
    assert done.returncode == 0, done.stderr
    assert "warning: registry v1: expires in 30.0 days" in done.stdout
    assert done.stdout.splitlines()[-1].startswith(f"ok: {config}: ")
    quiet = _doctor("--config", config, "--days", "7", "--json")
    assert quiet.returncode == 0, quiet.stderr
    document = json.loads(quiet.stdout)
    assert (document["problems"], document["expiring"]) == ([], [])


def test_accords_and_keys_expiring_are_listed_with_the_daemons_own_keys_vital(
    federation: Federation,
) -> None:
    """Twenty days on, within 400 days: the registry, every owner's keys and every accord are
    listed; GB's own keys and the registry are the vital ones."""
    done = _doctor("--config", str(federation.config_path("GB")), "--days", "400", "--json",
                   clock_ahead_days=20)  # fmt: skip
    assert done.returncode == 0, done.stderr
    expiring = {e["name"]: e for e in json.loads(done.stdout)["expiring"]}
    assert expiring["registry v1"]["days_left"] == pytest.approx(10.0, abs=0.1)
    assert {"accord gb-rs", "accord gb-mk", "RS encryption keys"} <= set(expiring)
    vital = {name for name, e in expiring.items() if e["vital"]}
    assert vital == {"registry v1", "GB signing keys", "GB encryption keys"}


def test_a_year_ahead_the_expired_registry_is_a_problem_with_status_9(
    federation: Federation,
) -> None:
    """Under a clock a year ahead the registry has expired: one ``error:`` line naming it,
    exit 9 (the registry's status in docs/CLI.md)."""
    done = _doctor("--config", str(federation.config_path("GB")), clock_ahead_days=365)
    assert done.returncode == 9
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: registry: registry version 1 expired at ")
    assert line.endswith("; refusing a frozen registry")


def test_an_unsigned_accord_and_a_missing_spool_are_problems(tmp_path: pathlib.Path) -> None:
    """An accord whose co-signatures are gone is refused (exit 10) as the daemon would refuse
    it; a spool directory that does not exist comes first (exit 2)."""
    federation = _provision(tmp_path)
    (federation.accords_dir / "gb-rs.yaml.sigs.json").unlink()
    config = str(federation.config_path("GB"))
    done = _doctor("--config", config)
    assert done.returncode == 10
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: accord {federation.accords_dir / 'gb-rs.yaml'}: ")
    shutil.rmtree(federation.spool_dir("GB"))
    done = _doctor("--config", config)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        f"error: spool: {federation.spool_dir('GB')} is not a directory"
    )


def test_an_adapter_without_a_key_of_its_accords_suite_is_a_problem(tmp_path: pathlib.Path) -> None:
    """RS under gb-rs (pq-hybrid) with its hybrid signing key left out of the configuration
    would refuse every view and receipt to GB: doctor says so (exit 8); listed twice, the
    adapter would not start: doctor says that too."""
    federation = _provision(tmp_path)
    config = federation.config_path("RS")
    yaml = YAML(typ="safe")
    document = yaml.load(config.read_text())
    hybrid = document["keys"].pop("extra_signing_keys")
    with config.open("w") as handle:
        yaml.dump(document, handle)
    done = _doctor("--config", str(config))
    assert done.returncode == 8, done.stdout
    assert (
        "error: keys: accord gb-rs is sealed in the pq-hybrid suite and no signing key of it "
        "is configured" in done.stderr
    )
    document["keys"]["extra_signing_keys"] = hybrid * 2
    with config.open("w") as handle:
        yaml.dump(document, handle)
    done = _doctor("--config", str(config))
    assert "holds two keys of one suite" in done.stderr
    document["keys"]["extra_signing_keys"] = hybrid
    with config.open("w") as handle:
        yaml.dump(document, handle)
    assert _doctor("--config", str(config)).returncode == 0


def test_a_configuration_check_config_refuses_is_refused_the_same_way(
    tmp_path: pathlib.Path,
) -> None:
    """doctor reads the file as ``broker deploy check-config`` does: same line, status 4."""
    config = tmp_path / "gateway.yaml"
    config.write_text("registry: {path: r.json, trusted_roots: t.json}\nkeys: {}\n")
    doctor = _doctor("--config", str(config))
    check = subprocess.run(
        [sys.executable, "-m", "broker", "deploy", "check-config", str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (doctor.returncode, doctor.stderr) == (check.returncode, check.stderr)
    assert doctor.returncode == 4
