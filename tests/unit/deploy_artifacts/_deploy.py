"""Readers for the committed deployment artefacts under ``deploy/``, shared by the tests here.

They parse the files the way their consumers do (YAML 1.2 safe loading, systemd's key=value
lines, Dockerfile instructions) so the tests check what an operator would actually apply.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

__all__ = [
    "COMPOSE",
    "DEPLOY",
    "K8S",
    "PARTNERS",
    "SYSTEMD",
    "compose",
    "k8s_documents",
    "load_yaml_documents",
    "systemd_directives",
]

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
PARTNERS = ("GB", "RS", "MK", "XK", "TR", "AL")


def load_yaml_documents(path: Path) -> list[Any]:
    """Every non-empty document of the YAML file at ``path``, read with a safe loader."""
    yaml = YAML(typ="safe", pure=True)
    with path.open(encoding="utf-8") as handle:
        return [document for document in yaml.load_all(handle) if document is not None]


def compose() -> dict[str, Any]:
    """The compose file as one mapping."""
    (document,) = load_yaml_documents(COMPOSE)
    assert isinstance(document, dict)
    return document


def k8s_documents(kind: str | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(file, manifest) for every Kubernetes manifest under deploy/k8s, optionally of one kind."""
    for path in sorted(K8S.glob("*.yaml")):
        for document in load_yaml_documents(path):
            if kind is None or document.get("kind") == kind:
                yield path, document


_DIRECTIVE_RE = re.compile(r"^(?P<key>[A-Za-z]+)=(?P<value>.*)$")


def systemd_directives(path: Path) -> dict[str, list[str]]:
    """Each directive of a unit file mapped to its values, in order (comments dropped)."""
    directives: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _DIRECTIVE_RE.match(line.strip())
        if match:
            directives.setdefault(match["key"], []).append(match["value"])
    return directives
