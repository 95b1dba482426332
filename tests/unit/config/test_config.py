"""The daemon configuration: strict YAML in, one frozen tree out, clear errors naming the place."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pydantic
import pytest

from broker import errors
from broker.config import (
    ROLES,
    AdapterConfig,
    GatewayConfig,
    LimitSettings,
    ObservabilitySettings,
    SecretSource,
    config_json_schema,
    load_config,
    read_secret,
)
from broker.runtime.watch import FileWatcher

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "deploy" / "examples"

MINIMAL = """\
registry: {path: registry.json, trusted_roots: roots.json}
keys:
  signing_key: keys/sign.pem
  passphrase: {env: KEY_PASSPHRASE}
store: {path: state.sqlite}
"""
"""The least a gateway needs: the registry, its key and its de-duplication store."""

ADAPTER = """\
partner: GB
registry: {path: registry.json, trusted_roots: roots.json}
keys:
  signing_key: keys/sign.pem
  decryption_keys: [keys/kem.pem]
  passphrase: {env: KEY_PASSPHRASE}
store: {path: inbox.sqlite}
"""
"""The least an adapter needs: its partner code, keys that open its inbox, and its store."""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_minimal_config_takes_documented_safe_defaults(tmp_path: Path) -> None:
    """A gateway needs only registry, keys and store; every default fails closed."""
    config = load_config(write(tmp_path, MINIMAL), GatewayConfig, env={})
    assert config.kafka.bootstrap == ("127.0.0.1:9092",)
    assert config.kafka.topic_prefix == "xb."
    assert config.kafka.security.protocol == "PLAINTEXT"
    assert config.accords.unsafe_allow_unsigned is False
    assert config.observability.port is None
    assert config.observability.log_format == "json"
    assert config.gateway_group_id == "xb.gateway"
    limits = config.limits
    assert limits.replay_window_seconds > limits.max_age_seconds + limits.max_clock_skew_seconds


def test_unsigned_accords_load_only_for_a_laptop_broker(tmp_path: Path) -> None:
    """unsafe_allow_unsigned with PLAINTEXT to loopback loads (a demo); with TLS, SASL or a
    remote broker the file is refused, as `deploy check-config` and the daemons read it."""
    unsigned = MINIMAL + "accords: {unsafe_allow_unsigned: true}\n"
    assert load_config(
        write(tmp_path, unsigned), GatewayConfig, env={}
    ).accords.unsafe_allow_unsigned
    secured = unsigned + textwrap.dedent("""\
        kafka:
          bootstrap: [kafka.example:9093]
          security:
            protocol: SASL_SSL
            username: gateway
            password: {env: KAFKA_PASSWORD}
            ca_file: ca.pem
        """)
    with pytest.raises(errors.SchemaError, match="only with PLAINTEXT to a loopback broker"):
        load_config(write(tmp_path, secured), GatewayConfig, env={})
    remote = unsigned + textwrap.dedent("""\
        kafka:
          bootstrap: [10.0.0.5:9092]
          security: {protocol: PLAINTEXT, unsafe_allow_remote: true}
        """)
    with pytest.raises(errors.SchemaError, match="only with PLAINTEXT to a loopback broker"):
        load_config(write(tmp_path, remote), GatewayConfig, env={})


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    """A unit file and a shell in another directory read the same files."""
    config = load_config(write(tmp_path, MINIMAL), env={})
    assert config.registry.path == tmp_path.resolve() / "registry.json"
    assert config.keys.signing_key == tmp_path.resolve() / "keys" / "sign.pem"


def test_config_is_frozen(tmp_path: Path) -> None:
    """Nothing can change the tree after loading."""
    config = load_config(write(tmp_path, MINIMAL), env={})
    with pytest.raises(pydantic.ValidationError):
        config.kafka.topic_prefix = "evil."  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "extra", "needle"),
    [
        ("unknown section", "colour: blue\n", "colour: not a setting of the adapter"),
        ("unknown field", "kafka: {bootstrapp: x:1}\n", "kafka.bootstrapp"),
        (
            "inline password",
            "kafka:\n  security: {protocol: SASL_SSL, username: u, "
            "password: hunter2, ca_file: ca.pem}\n",
            "kafka.security.password",
        ),
        ("bad partner", "partner: gb\n", "partner: Value error"),
        ("string number", "kafka: {session_timeout_ms: '10000'}\n", "kafka.session_timeout_ms"),
        ("bad prefix", "kafka: {topic_prefix: 'xb.*'}\n", "kafka.topic_prefix"),
        ("bad bootstrap", "kafka: {bootstrap: 'kafka'}\n", "kafka.bootstrap"),
        (
            "remote plaintext",
            "kafka: {bootstrap: 'kafka.example:9092'}\n",
            "PLAINTEXT to non-loopback",
        ),
        (
            "cert without key",
            "kafka:\n  security: {protocol: SSL, ca_file: ca.pem, cert_file: c.pem}\n",
            "go together",
        ),
        (
            "http webhook",
            "store: {path: s.db, webhook_url: 'http://intake.example/x'}\n",
            "store.webhook_url: Value error, plain http is allowed only to loopback",
        ),
        (
            "short replay window",
            "limits: {replay_window_seconds: 86400}\n",
            "replay_window_seconds",
        ),
        (
            "secret both ways",
            "kafka:\n  security: {protocol: SASL_SSL, username: u, "
            "password: {env: A, file: f}, ca_file: ca.pem}\n",
            "exactly one",
        ),
    ],
)
def test_invalid_settings_name_the_file_and_field(
    tmp_path: Path, name: str, extra: str, needle: str
) -> None:
    """Each invalid setting is refused with a SchemaError naming the file and field path."""
    # an adapter's file (it has the most sections), with the section under test replaced
    section = extra.split(":", 1)[0]
    base = "".join(
        line + "\n" for line in ADAPTER.splitlines() if not line.startswith(f"{section}:")
    )
    path = write(tmp_path, base + extra)
    with pytest.raises(errors.SchemaError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert str(path) in message, name
    assert needle in message, name
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("duplicate key", MINIMAL + "registry: {path: b, trusted_roots: c}\n", "duplicate key"),
        ("alias", MINIMAL + "accords: {paths: &p [a]}\nspool: {dir: *p}\n", "aliases"),
        ("python tag", MINIMAL + "spool: !!python/object:os.system {}\n", "line 6"),
        ("not a mapping", "- a\n- b\n", "mapping of sections"),
        ("broken yaml", "a: [\n", "broker.yaml"),
    ],
)
def test_unsafe_or_malformed_yaml_is_refused(
    tmp_path: Path, name: str, text: str, needle: str
) -> None:
    """Duplicate keys, aliases, tags and non-mappings never reach the model."""
    with pytest.raises(errors.SchemaError, match=r"broker\.yaml") as caught:
        load_config(write(tmp_path, text), env={})
    assert needle in str(caught.value), name


def test_oversized_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    """A huge file is refused before parsing; a missing one is a usage error."""
    big = write(tmp_path, MINIMAL + "#" * 300_000 + "\n")
    with pytest.raises(errors.SchemaError, match="larger than"):
        load_config(big, env={})
    with pytest.raises(errors.UsageError, match="cannot read"):
        load_config(tmp_path / "absent.yaml", env={})


def test_yaml_1_2_keeps_country_codes_as_strings(tmp_path: Path) -> None:
    """YAML 1.1 would read NO (Norway) as false; 1.2 keeps it a code."""
    text = ADAPTER.replace("partner: GB", "partner: NO")
    assert load_config(write(tmp_path, text), AdapterConfig, env={}).partner == "NO"


class TestEnvironmentOverrides:
    """BROKER_<SECTION>__<FIELD>: double underscore nests, values are YAML 1.2 flow values."""

    def test_overrides_win_over_the_file(self, tmp_path: Path) -> None:
        env = {
            "BROKER_KAFKA__BOOTSTRAP": "127.0.0.1:19092,127.0.0.2:19092",
            "BROKER_KAFKA__SESSION_TIMEOUT_MS": "15000",
            "BROKER_PARTNER": "RS",
        }
        config = load_config(write(tmp_path, ADAPTER), AdapterConfig, env=env)
        assert config.kafka.bootstrap == ("127.0.0.1:19092", "127.0.0.2:19092")
        assert config.kafka.session_timeout_ms == 15_000
        assert config.partner == "RS"

    @pytest.mark.parametrize(
        "name",
        ["BROKER_ACCORDS__UNSAFE_ALLOW_UNSIGNED", "BROKER_KAFKA__SECURITY__UNSAFE_ALLOW_REMOTE"],
    )
    def test_no_unsafe_setting_comes_from_the_environment(self, tmp_path: Path, name: str) -> None:
        """Whoever can set a daemon's environment must not switch off a safeguard unseen."""
        with pytest.raises(errors.UsageError, match="configuration file only"):
            load_config(write(tmp_path, ADAPTER), AdapterConfig, env={name: "true"})

    def test_nested_sections_are_created(self, tmp_path: Path) -> None:
        env = {
            "BROKER_KAFKA__SECURITY__PROTOCOL": "SASL_SSL",
            "BROKER_KAFKA__SECURITY__USERNAME": "adapter-gb",
            "BROKER_KAFKA__SECURITY__CA_FILE": "/etc/ca.pem",
            "BROKER_KAFKA__SECURITY__PASSWORD__ENV": "KAFKA_PASSWORD",
            "BROKER_KAFKA__BOOTSTRAP": "kafka.example:9093",
        }
        config = load_config(write(tmp_path, MINIMAL), env=env)
        assert config.kafka.security.protocol == "SASL_SSL"

    def test_unrelated_broker_variables_are_ignored(self, tmp_path: Path) -> None:
        env = {"BROKER_TEST_KAFKA": "embedded", "GB_KEY_PASSPHRASE": "x", "PATH": "/bin"}
        assert isinstance(load_config(write(tmp_path, MINIMAL), env=env), GatewayConfig)

    @pytest.mark.parametrize(
        ("env", "error", "needle"),
        [
            ({"BROKER_KAFKA__NOPE": "1"}, errors.SchemaError, "BROKER_KAFKA__NOPE: kafka.nope"),
            (
                {"BROKER_KAFKA__SESSION_TIMEOUT_MS": "soon"},
                errors.SchemaError,
                "BROKER_KAFKA__SESSION_TIMEOUT_MS",
            ),
            ({"BROKER_KAFKA_BOOTSTRAP": "h:1"}, errors.UsageError, "double underscore"),
            ({"BROKER_KAFKA__": "1"}, errors.UsageError, "empty name part"),
            ({"BROKER_PARTNER__X": "1"}, errors.UsageError, "not a section"),
        ],
    )
    def test_bad_overrides_name_the_variable(
        self, tmp_path: Path, env: dict[str, str], error: type[Exception], needle: str
    ) -> None:
        with pytest.raises(error, match=needle):
            load_config(write(tmp_path, ADAPTER), env=env)


class TestSecrets:
    """Secrets are read from the named place at start-up; errors never show the value."""

    def test_from_file_and_env(self, tmp_path: Path) -> None:
        secret = tmp_path / "s"
        secret.write_bytes(b"correct horse\n")
        assert read_secret(SecretSource(file=secret), env={}) == b"correct horse"
        assert read_secret(SecretSource(env="PW"), env={"PW": "battery"}) == b"battery"

    @pytest.mark.parametrize(
        ("source_env", "needle"),
        [("UNSET", "not set"), ("EMPTY", "empty")],
    )
    def test_missing_or_empty(self, source_env: str, needle: str) -> None:
        with pytest.raises(errors.UsageError, match=needle):
            read_secret(SecretSource(env=source_env), env={"EMPTY": ""})

    def test_unreadable_file(self, tmp_path: Path) -> None:
        with pytest.raises(errors.UsageError, match="cannot read secret"):
            read_secret(SecretSource(file=tmp_path / "absent"), env={})


@pytest.mark.parametrize("name", ["gateway", "adapter-gb", "adapter-rs"])
def test_annotated_examples_validate(name: str) -> None:
    """The shipped examples load as the configuration of the daemon they are for."""
    if name.startswith("adapter-"):
        adapter = load_config(EXAMPLES / f"{name}.yaml", AdapterConfig, env={})
        assert adapter.partner == name.removeprefix("adapter-").upper()
    else:
        load_config(EXAMPLES / f"{name}.yaml", GatewayConfig, env={})


def test_published_json_schema_matches_the_model() -> None:
    """schemas/config.schema.json is regenerated whenever the model changes.

    Regenerate with: broker deploy config-schema > schemas/config.schema.json
    """
    published = json.loads((REPO / "schemas" / "config.schema.json").read_text("utf-8"))
    assert published == config_json_schema()


def test_every_field_is_documented() -> None:
    """Every setting in the schema carries a description (its meaning and why its default);
    a role's section may instead refer to a section model, which is described itself."""
    schema = config_json_schema()
    roles = {role.__name__ for role in ROLES.values()}

    def is_section(spec: dict[str, Any]) -> bool:
        refs = [spec, *spec.get("anyOf", [])]
        return any("$ref" in r for r in refs)

    undocumented = [
        f"{model}.{field}"
        for model, definition in schema["$defs"].items()
        for field, spec in definition.get("properties", {}).items()
        if "description" not in spec
        and field != "protocol"
        and not (model in roles and is_section(spec))
    ]
    assert undocumented == []
    assert all("description" in schema["$defs"][name] for name in schema["$defs"])


def test_limits_reject_a_window_shorter_than_acceptance() -> None:
    """A replay remembered for less than max age plus skew could be accepted twice."""
    with pytest.raises(pydantic.ValidationError, match="must exceed"):
        LimitSettings(
            max_age_seconds=3_600, max_clock_skew_seconds=300, replay_window_seconds=3_900
        )


def test_an_acts_file_beside_an_accord_named_by_path_is_noticed(tmp_path: Path) -> None:
    """`accords.paths` names the accord file only; the signed acts file appears beside it under
    the accord's id. Writing it must wake the reload, or a suspension would wait for the next
    restart."""
    folder = tmp_path / "accords"
    folder.mkdir()
    (folder / "gb-rs.yaml").write_text("accord: gb-rs\n", encoding="utf-8")
    text = MINIMAL + "accords: {paths: [accords/gb-rs.yaml]}\n"
    config = load_config(write(tmp_path, text), GatewayConfig, env={})
    watcher = FileWatcher(config.accords.watched())
    assert watcher.poll() == ()
    (folder / "gb-rs.acts.json").write_text("{}", encoding="utf-8")
    assert folder.resolve() in watcher.poll()


@pytest.mark.parametrize(
    ("host", "kept"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("::1", "::1"), ("fe80::0:1", "fe80::1")],  # noqa: S104 - an address written in a file, bound nowhere here
)
def test_observability_listens_on_an_ip_address(host: str, kept: str) -> None:
    """The metrics address is an IP address, the loopback by default."""
    assert ObservabilitySettings().host == "127.0.0.1"
    assert ObservabilitySettings(host=host).host == kept


def test_observability_refuses_a_host_name() -> None:
    """A name could resolve to any interface: only an address is taken."""
    with pytest.raises(pydantic.ValidationError, match="not an IP address"):
        ObservabilitySettings(host="metrics.example")
