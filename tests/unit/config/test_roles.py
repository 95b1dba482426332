"""Each daemon's configuration is one type, so ``broker deploy check-config --role R`` and the
daemon of role R accept exactly the same files and refuse the others with the same one line.

The daemons are the real CLI commands (``adapter run``, ``gateway run``) with only their serve
function replaced by a fake that records the configuration it was given. The witness daemon is
not in this tree yet: for it the table compares ``check-config --role witness`` with
``load_config(path, WitnessConfig)``, the call its ``witness run`` makes.
"""

from __future__ import annotations

import logging
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from broker import errors
from broker.cli import _app, cli
from broker.cli import adapter as adapter_cli
from broker.cli import gateway as gateway_cli
from broker.config import (
    ROLES,
    BaseDaemonConfig,
    Role,
    WitnessConfig,
    config_json_schema,
    load_config,
    role_of,
)
from broker.runtime import StopSignal

_REGISTRY = "registry: {path: registry.json, trusted_roots: roots.json}\n"
_SIGNING = "  signing_key: sign.pem\n  passphrase: {env: KEY_PASSPHRASE}\n"
_KEM = "  decryption_keys: [kem.pem]\n"

#: configuration files by name; each differs from a valid one in one respect
FILES = {
    "adapter": f"partner: GB\n{_REGISTRY}keys:\n{_SIGNING}{_KEM}store: {{path: inbox.db}}\n",
    "adapter with spool": (
        f"partner: GB\n{_REGISTRY}keys:\n{_SIGNING}{_KEM}store: {{path: inbox.db}}\n"
        "spool: {dir: spool}\n"
    ),
    "adapter without store": f"partner: GB\n{_REGISTRY}keys:\n{_SIGNING}{_KEM}",
    "adapter without KEM keys": f"partner: GB\n{_REGISTRY}keys:\n{_SIGNING}store: {{path: i.db}}\n",
    "adapter with no KEM key": (
        f"partner: GB\n{_REGISTRY}keys:\n{_SIGNING}  decryption_keys: []\nstore: {{path: i.db}}\n"
    ),
    "adapter without partner": f"{_REGISTRY}keys:\n{_SIGNING}{_KEM}store: {{path: inbox.db}}\n",
    "gateway": f"{_REGISTRY}keys:\n{_SIGNING}store: {{path: dedup.db}}\ngateway: {{}}\n",
    "gateway without store": f"{_REGISTRY}keys:\n{_SIGNING}",
    "gateway with a KEM key": f"{_REGISTRY}keys:\n{_SIGNING}{_KEM}store: {{path: dedup.db}}\n",
    "gateway with a spool": (
        f"{_REGISTRY}keys:\n{_SIGNING}store: {{path: dedup.db}}\nspool: {{dir: spool}}\n"
    ),
    "gateway with a webhook": (
        f"{_REGISTRY}keys:\n{_SIGNING}store: {{path: d.db, webhook_url: 'https://x.example'}}\n"
    ),
    "witness": f"{_REGISTRY}keys:\n{_SIGNING}witness: {{state_dir: state, name: witness-rs}}\n",
    "witness without state": f"{_REGISTRY}keys:\n{_SIGNING}witness: {{name: witness-rs}}\n",
    "witness with accords": (
        f"{_REGISTRY}keys:\n{_SIGNING}witness: {{state_dir: s}}\naccords: {{dir: accords}}\n"
    ),
    "witness with a store": (
        f"{_REGISTRY}keys:\n{_SIGNING}witness: {{state_dir: s}}\nstore: {{path: w.db}}\n"
    ),
}

OK = "ok"
#: (file, role, "ok" or what the one-line refusal says after "error: <path>: ")
TABLE: list[tuple[str, Role, str]] = [
    ("adapter", "adapter", OK),
    ("adapter with spool", "adapter", OK),
    ("adapter without store", "adapter", "store: required for the adapter"),
    ("adapter without KEM keys", "adapter", "keys.decryption_keys: Field required"),
    ("adapter with no KEM key", "adapter", "keys.decryption_keys: Tuple should have at least 1"),
    ("adapter without partner", "adapter", "partner: required for the adapter"),
    ("gateway", "adapter", "partner: required for the adapter"),
    ("witness", "adapter", "witness: not a setting of the adapter"),
    ("gateway", "gateway", OK),
    ("gateway without store", "gateway", "store: required for the gateway"),
    ("gateway with a KEM key", "gateway", "keys.decryption_keys: Extra inputs are not permitted"),
    ("gateway with a spool", "gateway", "spool: not a setting of the gateway"),
    ("gateway with a webhook", "gateway", "store.webhook_url: Extra inputs are not permitted"),
    ("adapter", "gateway", "partner: not a setting of the gateway"),
    ("witness", "gateway", "witness: not a setting of the gateway"),
    ("witness", "witness", OK),
    ("witness without state", "witness", "witness.state_dir: Field required"),
    ("witness with accords", "witness", "accords: not a setting of the witness"),
    ("witness with a store", "witness", "store: not a setting of the witness"),
    ("gateway", "witness", "witness: required for the witness"),
    ("adapter", "witness", "partner: not a setting of the witness"),
]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for index, (name, text) in enumerate(FILES.items()):
        path = tmp_path / f"config-{index}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        paths[name] = path
    return paths


@pytest.fixture(autouse=True)
def _isolated_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No BROKER_* variable of the test machine reaches the files; the logging a daemon
    command configures is put back afterwards."""
    for name in [n for n in os.environ if n.startswith("BROKER_")]:
        monkeypatch.delenv(name)
    structlog_config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**structlog_config)
    root.handlers[:], root.level = handlers, level


def _broker(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``broker ARGS`` as the console script does: exit status and the output line."""
    try:
        status = _app.run(cli, list(args))
    except SystemExit as exc:  # the daemon commands exit with their service's status
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, (out + err).strip()


class _Daemons:
    """The daemon commands' serve functions replaced by one that records the configuration."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.served: list[BaseDaemonConfig] = []

        async def serve(config: BaseDaemonConfig, stop: StopSignal) -> None:
            self.served.append(config)

        monkeypatch.setattr(adapter_cli, "serve_config", serve)
        monkeypatch.setattr(gateway_cli, "serve_gateway", serve)

    def load(self, capsys: pytest.CaptureFixture[str], role: Role, path: Path) -> tuple[int, str]:
        """The daemon of ``role`` started on ``path``: 0 and "ok" if it got to serving."""
        if role == "witness":
            try:
                load_config(path, WitnessConfig)
            except errors.BrokerError as exc:
                return exc.exit_code, f"error: {exc.diagnostics()}"
            return 0, OK
        status, output = _broker(capsys, role, "run", "--config", str(path))
        if status == 0:
            (config,) = self.served
            assert type(config) is ROLES[role]
            self.served.clear()
            return 0, OK
        return status, output


@pytest.mark.parametrize(("name", "role", "expected"), TABLE, ids=lambda v: str(v)[:40])
def test_check_config_and_the_daemon_agree(
    files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    role: Role,
    expected: str,
) -> None:
    """Both accept the file, or both refuse it with the same one line (exit 4) naming the
    file and the field that is missing or must not be there."""
    path = files[name]
    daemon_status, daemon_says = _Daemons(monkeypatch).load(capsys, role, path)
    status, says = _broker(capsys, "deploy", "check-config", str(path), "--role", role)
    if expected == OK:
        assert (status, daemon_status, daemon_says) == (0, 0, OK)
        assert says.startswith(f"ok: {path}: {role}")
    else:
        assert (status, daemon_status) == (errors.SchemaError.exit_code,) * 2
        assert says == daemon_says
        assert says.startswith(f"error: {path}: ")
        assert expected in says
        assert "\n" not in says


@pytest.mark.parametrize(
    ("name", "role"), [("adapter", "adapter"), ("gateway", "gateway"), ("witness", "witness")]
)
def test_without_role_the_shape_of_the_file_names_it(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], name: str, role: Role
) -> None:
    """``partner`` makes an adapter, a ``witness`` section a witness, anything else a gateway;
    check-config without --role says which it checked."""
    assert isinstance(load_config(files[name], env={}), ROLES[role])
    status, says = _broker(capsys, "deploy", "check-config", str(files[name]))
    assert status == 0
    assert says.startswith(f"ok: {files[name]}: {role}")


def test_the_gateway_of_the_issue_is_refused_before_it_starts(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A gateway file without a store was "ok" for check-config and then failed at start;
    now check-config without --role refuses it too, naming the store."""
    status, says = _broker(capsys, "deploy", "check-config", str(files["gateway without store"]))
    assert status == errors.SchemaError.exit_code
    assert says.endswith("store: required for the gateway")


def test_the_published_schema_is_one_of_the_roles() -> None:
    """schemas/config.schema.json offers exactly the three role types, each requiring what
    its daemon needs: the sections the table above refuses when missing."""
    schema = config_json_schema()
    assert schema["oneOf"] == [{"$ref": f"#/$defs/{cls.__name__}"} for cls in ROLES.values()]
    required = {role: set(schema["$defs"][cls.__name__]["required"]) for role, cls in ROLES.items()}
    assert required == {
        "adapter": {"partner", "registry", "keys", "store"},
        "gateway": {"registry", "keys", "store"},
        "witness": {"registry", "keys", "witness"},
    }
    assert "decryption_keys" in schema["$defs"]["AdapterKeySettings"]["required"]


def test_role_of_reads_the_shape() -> None:
    """The one rule that names a file's role, for data and for loaded configurations."""
    assert role_of({"partner": "GB"}) == "adapter"
    assert role_of({"witness": {}}) == "witness"
    assert role_of({"store": {}}) == "gateway"
    assert role_of([]) == "gateway"
