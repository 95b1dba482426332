"""deploy/monitoring: the alert rules pass ``promtool check rules`` and their own
``promtool test rules``; the Grafana dashboard is well formed and names only series the
daemons export; the PodMonitor scrapes the pods the manifests run.

promtool is Debian's ``prometheus`` package, installed by the README's test command when it
is missing; without it these tests fail (never skip): unchecked rules are exactly what they
exist to prevent. Which series exist is read from the code that registers them here, and from
running daemons in tests/e2e/test_status.py.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = pathlib.Path(__file__).resolve().parents[3]
MONITORING = ROOT / "deploy" / "monitoring"
#: series that Prometheus itself makes, not the daemons
PROMETHEUS_OWN = frozenset({"up"})
_SERIES = re.compile(r"\b((?:xb|process)_[a-z0-9_]+)\b")
_HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is missing: these tests need Debian's prometheus package, which the "
            "README's test command installs (apt-get install -y prometheus)"
        )
    return subprocess.run(
        [promtool, *args], cwd=MONITORING, capture_output=True, text=True, check=False
    )


def registered_series() -> frozenset[str]:
    """Every series name the project's code registers (``metrics.counter("xb_...")`` and its
    kin), with a histogram's ``_bucket``/``_sum``/``_count``, and the process series."""
    names: set[str] = {
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "xb_build_info",
    }
    # every metric name is a string literal in the call that registers it (some modules
    # alias ``metrics.counter`` first); histograms are registered by ``.histogram(``
    literal = re.compile(r"\"(xb_[a-z0-9_]+)\"")
    histogram = re.compile(r"\.histogram\(\s*\"(xb_[a-z0-9_]+)\"", re.MULTILINE)
    for path in (ROOT / "broker").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        names.update(literal.findall(text))
        for name in histogram.findall(text):
            names.update(name + part for part in _HISTOGRAM_PARTS)
    return frozenset(names)


def series_named(expressions: list[str]) -> set[str]:
    """The daemon series a list of PromQL expressions reads."""
    return {name for expr in expressions for name in _SERIES.findall(expr)}


def _dashboard() -> dict[str, Any]:
    document = json.loads((MONITORING / "dashboard.json").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _alert_expressions() -> list[str]:
    rules = YAML(typ="safe").load((MONITORING / "alerts.yaml").read_text(encoding="utf-8"))
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_the_alert_rules_pass_promtool() -> None:
    """``promtool check rules``: valid PromQL, valid templates, no duplicate groups."""
    done = _promtool("check", "rules", "alerts.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_alerts_fire_on_the_daemons_series_and_not_otherwise() -> None:
    """``promtool test rules alerts.test.yaml``: a bad signature pages, a policy refusal does
    not; the registry six days from expiry opens a ticket; a stale checkpoint pages."""
    done = _promtool("test", "rules", "alerts.test.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_series_the_alerts_read_is_one_the_daemons_export() -> None:
    """A renamed metric would leave an alert silent for ever: each name must be registered."""
    named = series_named(_alert_expressions())
    assert named, "the rules name no series"
    assert named - registered_series() == set()


def test_the_dashboard_is_well_formed() -> None:
    """A Grafana dashboard: uid, title, schema version, a datasource variable every target
    uses, unique panel ids, panels inside the 24-column grid, a query on every panel."""
    board = _dashboard()
    assert {"uid", "title", "schemaVersion", "panels", "templating"} <= set(board)
    assert isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = board["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets)
        for target in targets:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}"


def test_every_series_on_the_dashboard_is_one_the_daemons_export() -> None:
    """Every panel's query reads series that exist (so none is blank for ever)."""
    exprs = [t["expr"] for p in _dashboard()["panels"] if p["type"] != "row" for t in p["targets"]]
    named = series_named(exprs)
    assert named - registered_series() == set()
    for panel in _dashboard()["panels"]:
        if panel["type"] != "row":
            assert series_named([t["expr"] for t in panel["targets"]]), panel["title"]


def test_the_pod_monitor_scrapes_the_pods_the_manifests_run() -> None:
    """The PodMonitor selects the gateway and adapter pods of deploy/k8s by their name label,
    on a port named ``metrics``, and its NetworkPolicy opens that port to monitoring only."""
    documents = list(YAML(typ="safe").load_all((MONITORING / "podmonitor.yaml").read_text()))
    kinds = {d["kind"]: d for d in documents}
    monitor, policy = kinds["PodMonitor"], kinds["NetworkPolicy"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (selected,) = monitor["spec"]["selector"]["matchExpressions"]
    names = set(selected["values"])
    deployments = [
        d
        for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
        for d in YAML(typ="safe").load_all(path.read_text())
        if isinstance(d, dict) and d.get("kind") == "Deployment"
    ]
    running = {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] for d in deployments
    }
    assert names == running
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    assert policy["spec"]["podSelector"] == monitor["spec"]["selector"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9464}]
