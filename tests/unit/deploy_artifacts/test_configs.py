"""Every daemon configuration the deployments reference exists, validates, and agrees with
the deployment around it: the right partner, the generated Kafka principal, and secrets that
are files the deployment actually mounts (never environment variables, which leak into
``/proc/<pid>/environ`` and ``docker inspect``).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from broker.config import (
    AdapterConfig,
    DaemonConfig,
    GatewayConfig,
    SaslSslSecurity,
    WitnessConfig,
    load_config,
)

from ._deploy import (
    COMPOSE,
    DEPLOY,
    PARTNERS,
    SYSTEMD,
    compose,
    k8s_documents,
    load_yaml_documents,
    systemd_directives,
)

CONFIG_IN_CONTAINER = "/etc/broker/config.yaml"
_NO_OVERRIDES: dict[str, str] = {}  # BROKER_* variables of the test machine must not leak in


def _daemon_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return {name: svc for name, svc in services.items() if svc.get("image") == "broker:dev"}


def _compose_config_file(service: dict[str, Any]) -> Path:
    sources: list[str] = [
        volume.split(":")[0]
        for volume in service["volumes"]
        if volume.split(":")[1] == CONFIG_IN_CONTAINER
    ]
    assert len(sources) == 1, "one configuration file is mounted"
    return (COMPOSE.parent / sources[0]).resolve()


def _secret_files(config: DaemonConfig) -> list[PurePosixPath]:
    sources = [config.keys.passphrase]
    if isinstance(config.kafka.security, SaslSslSecurity):
        sources.append(config.kafka.security.password)
    assert all(source.env is None for source in sources), "secrets come from files"
    return [PurePosixPath(str(source.file)) for source in sources]


def _load_witness(path: Path) -> WitnessConfig:
    """A witness's file, read as the witness reads it: it holds no decryption key."""
    config = load_config(path, WitnessConfig, env=_NO_OVERRIDES)
    assert isinstance(config.kafka.security, SaslSslSecurity), "deployments use SASL_SSL"
    assert config.kafka.security.username == config.witness.name == "witness"
    return config  # its key section has no decryption_keys: the type refuses them


def _load_for_role(path: Path, *, partner: str | None) -> AdapterConfig | GatewayConfig:
    """The file read as its daemon reads it: an adapter's as an adapter's, else the gateway's
    (the role types make both keep a durable store, and the gateway hold no decryption key)."""
    config: AdapterConfig | GatewayConfig
    if partner:
        config = load_config(path, AdapterConfig, env=_NO_OVERRIDES)
        assert config.partner == partner
    else:
        config = load_config(path, GatewayConfig, env=_NO_OVERRIDES)
    assert isinstance(config.kafka.security, SaslSslSecurity), "deployments use SASL_SSL"
    expected_user = f"adapter-{partner.lower()}" if partner else "gateway"
    assert config.kafka.security.username == expected_user
    assert config.accords.unsafe_allow_unsigned is False
    return config


def test_compose_runs_the_gateway_a_witness_and_one_adapter_per_partner() -> None:
    """Compose starts exactly the gateway, a witness and an adapter for each partner."""
    expected = {"gateway", "witness"} | {f"adapter-{code.lower()}" for code in PARTNERS}
    assert set(_daemon_services()) == expected


@pytest.mark.parametrize("name", sorted(_daemon_services()))
def test_compose_daemon_config_validates_and_matches_its_service(name: str) -> None:
    """Each compose daemon's configuration exists, validates, names the service's partner and
    principal, and reads its secrets from files compose mounts into that service."""
    service = _daemon_services()[name]
    path = _compose_config_file(service)
    assert path.is_file(), f"{path} is referenced by compose but missing"
    assert CONFIG_IN_CONTAINER in service["command"]
    partner = name.removeprefix("adapter-").upper() if name.startswith("adapter-") else None
    config: DaemonConfig = (
        _load_witness(path) if name == "witness" else _load_for_role(path, partner=partner)
    )
    mounted = {f"/run/secrets/{secret}" for secret in service["secrets"]}
    assert {str(file) for file in _secret_files(config)} <= mounted
    for secret in service["secrets"]:
        assert secret in compose()["secrets"], f"secret {secret} is declared"


def test_every_compose_secret_names_a_file_under_deploy_dev() -> None:
    """Compose reads every secret from a generated file, none inline or from the environment."""
    for name, secret in compose()["secrets"].items():
        assert set(secret) == {"file"}, name
        assert secret["file"] == f"./dev/secrets/{name}"


def _config_maps() -> list[tuple[str, str]]:
    return [
        (document["metadata"]["name"], document["data"]["config.yaml"])
        for _, document in k8s_documents("ConfigMap")
    ]


def _deployment_mounts(config_map: str) -> list[str]:
    for _, document in k8s_documents("Deployment"):
        volumes = document["spec"]["template"]["spec"]["volumes"]
        names = [v["name"] for v in volumes if v.get("configMap", {}).get("name") == config_map]
        if names:
            (container,) = document["spec"]["template"]["spec"]["containers"]
            return [m["mountPath"] for m in container["volumeMounts"]]
    raise AssertionError(f"no Deployment mounts ConfigMap {config_map}")


def test_kubernetes_has_a_config_map_for_the_gateway_and_an_adapter() -> None:
    """The Kubernetes manifests configure the gateway and one adapter."""
    names = {name for name, _ in _config_maps()}
    assert names == {"broker-gateway-config", "broker-adapter-gb-config"}


@pytest.mark.parametrize(("name", "text"), _config_maps(), ids=lambda value: str(value)[:30])
def test_kubernetes_config_map_validates(name: str, text: str, tmp_path: Path) -> None:
    """Each ConfigMap's config.yaml validates and reads secrets from mounted volumes."""
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    partner = re.fullmatch(r"broker-adapter-([a-z]{2})-config", name)
    config = _load_for_role(path, partner=partner[1].upper() if partner else None)
    mounts = _deployment_mounts(name)
    for file in [*_secret_files(config), PurePosixPath(str(config.keys.signing_key))]:
        assert any(file.is_relative_to(mount) for mount in mounts), f"{file} is not mounted"


def _unit_configs() -> list[tuple[Path, Path, str | None]]:
    """(unit, the shipped config file it reads, partner) for each unit in deploy/systemd."""
    found = []
    for unit in sorted(SYSTEMD.glob("*.service")):
        (exec_start,) = systemd_directives(unit)["ExecStart"]
        argv = shlex.split(exec_start.replace("%i", "gb"))
        installed = PurePosixPath(argv[argv.index("--config") + 1])
        assert installed.parent == PurePosixPath("/etc/broker")
        partner = "GB" if "%i" in exec_start else None
        found.append((unit, SYSTEMD / "config" / installed.name, partner))
    return found


def test_systemd_ships_both_units() -> None:
    """A gateway unit and a templated adapter unit are shipped."""
    assert {unit.name for unit, _, _ in _unit_configs()} == {
        "broker-gateway.service",
        "broker-adapter@.service",
    }


@pytest.mark.parametrize(("unit", "config_file", "partner"), _unit_configs(), ids=str)
def test_systemd_config_validates_and_uses_the_units_credentials(
    unit: Path, config_file: Path, partner: str | None
) -> None:
    """The unit's configuration ships, validates, and reads its secrets and keys from the
    unit's own credentials directory, each one a credential the unit loads."""
    assert config_file.is_file(), f"{config_file} is referenced by {unit.name} but missing"
    config = _load_for_role(config_file, partner=partner)
    unit_name = unit.name.replace("@.", f"@{(partner or '').lower()}.")
    credentials = PurePosixPath("/run/credentials") / unit_name
    loaded = {value.split(":")[0] for value in systemd_directives(unit)["LoadCredential"]}
    files = [*_secret_files(config), PurePosixPath(str(config.keys.signing_key))]
    if isinstance(config, AdapterConfig):
        files += [PurePosixPath(str(key)) for key in config.keys.decryption_keys]
    for file in files:
        assert file.parent == credentials, file
        assert file.name in loaded, f"{file.name} is not a credential of {unit.name}"


def test_every_yaml_file_under_deploy_is_safe_yaml() -> None:
    """Compose, every manifest and every configuration parse with a YAML 1.2 safe loader."""
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert COMPOSE in files
    for path in files:
        if "dev" in path.relative_to(DEPLOY).parts:
            continue  # generated development material, not committed
        assert load_yaml_documents(path), f"{path} is empty"
