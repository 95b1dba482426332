"""Every Strimzi manifest in deploy/k8s is accepted by the CRD schemas of the Strimzi release it
is written for (vendored in deploy/k8s/crds/, with their source), and names a Kafka version
that release supports: the same release the local cluster and compose run.

The API server's strict field validation is modelled by refusing unknown fields wherever a
schema lists its properties and does not say it keeps unknown ones
(``x-kubernetes-preserve-unknown-fields``), so a misspelt or removed field fails here as it
would at ``kubectl apply``.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from broker.transport.apache.distribution import KAFKA_VERSION
from broker.transport.apache.settings import CLUSTER_SETTINGS

from ._deploy import K8S, k8s_documents, load_yaml_documents

STRIMZI_RELEASE = "1.2.0"
CRDS = K8S / "crds" / f"strimzi-{STRIMZI_RELEASE}"
STRIMZI_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}


@functools.cache
def _crds() -> dict[str, dict[str, Any]]:
    by_kind: dict[str, dict[str, Any]] = {}
    for path in sorted(CRDS.glob("04*-Crd-*.yaml")):
        (crd,) = load_yaml_documents(path)
        by_kind[crd["spec"]["names"]["kind"]] = crd
    return by_kind


def _strict(schema: Any) -> Any:
    """The schema with unknown properties refused where the API server would refuse them."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def _validator(kind: str, api_version: str) -> jsonschema.Draft7Validator:
    crd = _crds()[kind]
    group, _, version = api_version.partition("/")
    assert group == crd["spec"]["group"], api_version
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    assert version in served, (
        f"Strimzi {STRIMZI_RELEASE} serves {crd['spec']['names']['kind']} only as "
        f"{sorted(served)}, not {version}"
    )
    schema = copy.deepcopy(served[version]["schema"]["openAPIV3Schema"])
    # metadata is validated by the API server itself, not by the CRD
    schema.get("properties", {}).pop("metadata", None)
    return jsonschema.Draft7Validator(_strict(schema))


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p, d in k8s_documents() if d.get("kind") in STRIMZI_KINDS]


def test_the_vendored_crds_say_where_they_come_from() -> None:
    """The CRDs are Strimzi's own, of the release the test names, and say so beside them."""
    readme = (CRDS / "README.md").read_text(encoding="utf-8")
    assert f"Version: **{STRIMZI_RELEASE}**" in readme
    assert "github.com/strimzi/strimzi-kafka-operator" in readme
    assert set(_crds()) == STRIMZI_KINDS


@pytest.mark.parametrize(
    ("path", "manifest"),
    _manifests(),
    ids=[f"{p.name}:{d['kind']}/{d['metadata']['name']}" for p, d in _manifests()],
)
def test_each_manifest_validates_against_the_strimzi_crd_schema(
    path: Path, manifest: dict[str, Any]
) -> None:
    """Its apiVersion is served by the release and its body validates against the schema."""
    validator = _validator(manifest["kind"], manifest["apiVersion"])
    body = {key: value for key, value in manifest.items() if key != "metadata"}
    problems = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not problems, "\n".join(
        f"{path.name} {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in problems
    )


def test_the_kafka_version_is_the_pinned_release_and_strimzi_supports_it() -> None:
    """spec.kafka.version is the release every test runs on, supported by this Strimzi,
    with the metadata version Strimzi pairs with it."""
    ((_, kafka),) = list(k8s_documents("Kafka"))
    versions = load_yaml_documents(CRDS / "kafka-versions.yaml")[0]
    supported = {v["version"]: v for v in versions if v.get("supported")}
    assert kafka["spec"]["kafka"]["version"] == KAFKA_VERSION
    assert KAFKA_VERSION in supported
    assert kafka["spec"]["kafka"]["metadataVersion"] == supported[KAFKA_VERSION]["metadata"]


def test_the_strimzi_broker_config_is_the_shared_settings_table() -> None:
    """spec.kafka.config holds exactly the settings every cluster shares
    (broker.transport.apache.settings.CLUSTER_SETTINGS), as Strimzi would pass them on."""
    ((_, kafka),) = list(k8s_documents("Kafka"))
    config = kafka["spec"]["kafka"]["config"]
    as_text = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in config.items()
    }
    assert as_text == dict(CLUSTER_SETTINGS)


def test_an_unknown_or_misplaced_field_is_refused() -> None:
    """The check has teeth: a field the schema does not know fails, as kubectl would."""
    ((_, kafka),) = list(k8s_documents("Kafka"))
    altered = copy.deepcopy(kafka)
    altered["spec"]["kafka"]["zookeeper"] = {"replicas": 3}
    body = {key: value for key, value in altered.items() if key != "metadata"}
    assert list(_validator("Kafka", altered["apiVersion"]).iter_errors(body))
