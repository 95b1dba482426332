"""The generated ACLs give each principal exactly what DESIGN section 3 says, and nothing else.

Both renderings are parsed back (shell words for kafka-acls.sh, YAML for Strimzi) so the tests
check what an operator would apply, not our internal plan.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shlex
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from broker import errors
from broker.cli import cli
from broker.deployment import acl_plan, render_kafka_acls, render_strimzi
from broker.keys.testing import make_registry

PARTNERS = ["GB", "RS", "MK", "XK", "TR", "AL"]

# (principal, resource type, resource name, pattern type) -> operations
Grants = dict[tuple[str, str, str, str], frozenset[str]]


def parse_kafka_acls(script: str) -> Grants:
    grants: defaultdict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for line in script.splitlines():
        if not line.startswith("kafka-acls.sh"):
            continue
        words = shlex.split(line)
        options: defaultdict[str, list[str]] = defaultdict(list)
        for flag, value in itertools.pairwise(words):
            if flag.startswith("--") and not value.startswith("--"):
                options[flag].append(value)
        assert "--add" in words
        [pattern] = options["--resource-pattern-type"]
        assert "--deny-principal" not in options
        [principal] = options["--allow-principal"]
        flags = {"--topic": "topic", "--group": "group", "--transactional-id": "transactional_id"}
        kinds = [kind for flag, kind in flags.items() if flag in options]
        assert len(kinds) == 1, line
        assert "--cluster" not in words, "no principal is granted anything on the cluster"
        [name] = options[next(flag for flag, kind in flags.items() if kind == kinds[0])]
        assert "*" not in name
        grants[(principal, kinds[0], name, pattern)] |= set(options["--operation"])
    return {key: frozenset(ops) for key, ops in grants.items()}


def parse_strimzi(text: str) -> Grants:
    grants: defaultdict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for doc in YAML(typ="safe", pure=True).load_all(text):
        assert doc["apiVersion"] == "kafka.strimzi.io/v1"
        assert doc["kind"] == "KafkaUser"
        assert doc["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert doc["spec"]["authorization"]["type"] == "simple"
        principal = f"User:{doc['metadata']['name']}"
        for acl in doc["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            pattern = {"literal": "literal", "prefix": "prefixed"}[resource["patternType"]]
            assert "*" not in resource["name"]
            kind = {"transactionalId": "transactional_id"}.get(resource["type"], resource["type"])
            key = (principal, kind, resource["name"], pattern)
            grants[key] |= set(acl["operations"])
    return {key: frozenset(ops) for key, ops in grants.items()}


def expected_grants(partners: Iterable[str], prefix: str = "xb.") -> Grants:
    """DESIGN section 3, written out by hand, plus the groups of the throwaway readers."""
    grants: Grants = {}
    rw = frozenset({"Read", "Write", "Describe"})
    for p in partners:
        adapter = f"User:adapter-{p.lower()}"
        grants[(adapter, "topic", f"{prefix}outbox.{p}", "literal")] = frozenset(
            {"Write", "Describe"}
        )
        grants[(adapter, "topic", f"{prefix}inbox.{p}", "literal")] = frozenset(
            {"Read", "Describe"}
        )
        grants[(adapter, "group", f"{prefix}adapter.{p}", "literal")] = frozenset({"Read"})
        # Write for `broker quarantine release` (the original signed bytes, verified again)
        grants[("User:gateway", "topic", f"{prefix}outbox.{p}", "literal")] = rw
        grants[("User:gateway", "topic", f"{prefix}inbox.{p}", "literal")] = frozenset(
            {"Write", "Describe"}
        )
    gateway_groups = [
        (f"{prefix}gateway", "literal"),
        (f"{prefix}gateway.checkpointer.", "prefixed"),
        (f"{prefix}quarantine-reader.", "prefixed"),
    ]
    for group, pattern in gateway_groups:
        grants[("User:gateway", "group", group, pattern)] = frozenset({"Read"})
    grants[("User:gateway", "topic", f"{prefix}quarantine", "literal")] = rw
    grants[("User:gateway", "topic", f"{prefix}audit", "literal")] = rw
    # one transactional id per gateway instance, all under one prefix (Apache Kafka)
    grants[("User:gateway", "transactional_id", f"{prefix}gateway.tx.", "prefixed")] = frozenset(
        {"Write", "Describe"}
    )
    grants[("User:auditor", "topic", f"{prefix}audit", "literal")] = frozenset({"Read", "Describe"})
    grants[("User:auditor", "topic", f"{prefix}witness", "literal")] = frozenset(
        {"Read", "Describe"}
    )
    grants[("User:auditor", "group", "auditor-", "prefixed")] = frozenset({"Read"})
    # a witness reads the log it vouches for and writes only its cosignatures
    grants[("User:witness", "topic", f"{prefix}audit", "literal")] = frozenset({"Read", "Describe"})
    grants[("User:witness", "topic", f"{prefix}witness", "literal")] = frozenset(
        {"Write", "Describe"}
    )
    grants[("User:witness", "group", f"{prefix}witness.witness.", "prefixed")] = frozenset({"Read"})
    return grants


def allows(grants: Grants, principal: str, kind: str, name: str, operation: str) -> bool:
    """Kafka's matching: a literal pattern names the resource, a prefixed one starts it."""
    return any(
        operation in ops
        for (who, k, pattern_name, pattern), ops in grants.items()
        if who == principal
        and k == kind
        and (name == pattern_name if pattern == "literal" else name.startswith(pattern_name))
    )


RENDERINGS = {
    "kafka-acls": lambda rules: parse_kafka_acls(render_kafka_acls(rules)),
    "strimzi": lambda rules: parse_strimzi(render_strimzi(rules, cluster="broker")),
}


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
@pytest.mark.parametrize("prefix", ["xb.", "prod.xb."])
def test_rendered_acls_are_exactly_design_section_3(rendering: str, prefix: str) -> None:
    """The whole grant set, parsed back from the output, equals the hand-written table."""
    grants = RENDERINGS[rendering](acl_plan(PARTNERS, prefix=prefix))
    assert grants == expected_grants(PARTNERS, prefix)


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_each_partner_writes_only_its_outbox_and_reads_only_its_inbox(rendering: str) -> None:
    grants = RENDERINGS[rendering](acl_plan(PARTNERS, prefix="xb."))
    for p in PARTNERS:
        mine = {k: v for k, v in grants.items() if k[0] == f"User:adapter-{p.lower()}"}
        writes = {name for (_, _, name, _), ops in mine.items() if "Write" in ops}
        reads = {(kind, name) for (_, kind, name, _), ops in mine.items() if "Read" in ops}
        assert writes == {f"xb.outbox.{p}"}
        assert reads == {("topic", f"xb.inbox.{p}"), ("group", f"xb.adapter.{p}")}
        assert {pattern for (*_, pattern) in mine} == {"literal"}


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_only_the_gateway_writes_inboxes_quarantine_and_audit(rendering: str) -> None:
    grants = RENDERINGS[rendering](acl_plan(PARTNERS, prefix="xb."))
    for (principal, kind, name, _), ops in grants.items():
        if "Write" in ops and name == "xb.witness":
            assert principal == "User:witness", (principal, name)
        elif "Write" in ops and not name.startswith("xb.outbox."):
            assert principal == "User:gateway", (principal, name)
        if kind == "topic" and name.startswith("xb.outbox.") and "Read" in ops:
            assert principal == "User:gateway"


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_topics_are_always_literal_and_only_groups_are_prefixed(rendering: str) -> None:
    """No principal gets a topic by prefix; prefixes are for throwaway readers' groups and
    the gateway instances' transactional ids."""
    grants = RENDERINGS[rendering](acl_plan(PARTNERS, prefix="xb."))
    prefixed = {(who, name) for (who, kind, name, pattern) in grants if pattern == "prefixed"}
    kinds = {kind for (_, kind, _, pattern) in grants if pattern == "prefixed"}
    assert kinds == {"group", "transactional_id"}
    assert prefixed == {
        ("User:gateway", "xb.gateway.checkpointer."),
        ("User:gateway", "xb.quarantine-reader."),
        ("User:gateway", "xb.gateway.tx."),
        ("User:auditor", "auditor-"),
        ("User:witness", "xb.witness.witness."),
    }


# The clients the review found uncovered, with the names their code builds (random suffixes).
REAL_CLIENTS = {
    "checkpointer reads the audit topic": ("User:gateway", "topic", "xb.audit", "Read"),
    "checkpointer's fresh group": (
        "User:gateway",
        "group",
        "xb.gateway.checkpointer.0123456789abcdef0123456789abcdef",
        "Read",
    ),
    "checkpointer appends checkpoints": ("User:gateway", "topic", "xb.audit", "Write"),
    "quarantine list reads the topic": ("User:gateway", "topic", "xb.quarantine", "Read"),
    "quarantine reader's group": (
        "User:gateway",
        "group",
        "xb.quarantine-reader.0123456789ab",
        "Read",
    ),
    "quarantine release writes the outbox": ("User:gateway", "topic", "xb.outbox.GB", "Write"),
    "audit export reads the topic": ("User:auditor", "topic", "xb.audit", "Read"),
    "audit export's group": ("User:auditor", "group", "auditor-0123456789ab", "Read"),
    "audit export reads the cosignatures": ("User:auditor", "topic", "xb.witness", "Read"),
    "witness reads the audit topic": ("User:witness", "topic", "xb.audit", "Read"),
    "witness's fresh group": (
        "User:witness",
        "group",
        "xb.witness.witness.0123456789abcdef0123456789abcdef",
        "Read",
    ),
    "witness publishes cosignatures": ("User:witness", "topic", "xb.witness", "Write"),
}


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
@pytest.mark.parametrize("case", sorted(REAL_CLIENTS))
def test_real_clients_are_covered(rendering: str, case: str) -> None:
    """Every access the gateway's tools and the auditor's export make is granted."""
    grants = RENDERINGS[rendering](acl_plan(PARTNERS, prefix="xb."))
    assert allows(grants, *REAL_CLIENTS[case])


@pytest.mark.parametrize(
    ("principal", "kind", "name", "operation"),
    [
        ("User:adapter-gb", "group", "xb.gateway.checkpointer.x", "Read"),
        ("User:adapter-gb", "group", "auditor-x", "Read"),
        ("User:adapter-gb", "topic", "xb.audit", "Read"),
        ("User:adapter-gb", "topic", "xb.quarantine", "Read"),
        ("User:auditor", "topic", "xb.audit", "Write"),
        ("User:auditor", "group", "xb.quarantine-reader.x", "Read"),
        ("User:auditor", "topic", "xb.quarantine", "Read"),
        ("User:gateway", "group", "xb.adapter.GB", "Read"),
        ("User:gateway", "topic", "xb.outbox.ZZ", "Write"),
        # a witness can add nothing to the log it vouches for, nor join another's groups
        ("User:witness", "topic", "xb.audit", "Write"),
        ("User:witness", "group", "xb.witness.other.x", "Read"),
        ("User:witness", "group", "auditor-x", "Read"),
        ("User:auditor", "topic", "xb.witness", "Write"),
        ("User:gateway", "topic", "xb.witness", "Write"),
    ],
)
def test_the_new_grants_open_nothing_else(
    principal: str, kind: str, name: str, operation: str
) -> None:
    """Prefixes and the release write stay with their principal and their resources."""
    grants = parse_kafka_acls(render_kafka_acls(acl_plan(PARTNERS, prefix="xb.")))
    assert not allows(grants, principal, kind, name, operation)


def test_partner_list_is_deduplicated_and_validated() -> None:
    assert acl_plan(["GB", "GB", "RS"], prefix="xb.") == acl_plan(["RS", "GB"], prefix="xb.")
    with pytest.raises(errors.UsageError, match="two capital letters"):
        acl_plan(["GB", "*"], prefix="xb.")
    with pytest.raises(errors.UsageError, match="at least one partner"):
        acl_plan([], prefix="xb.")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"auditors": ["gateway"]}, "auditor user"),
        ({"auditors": ["adapter-gb"]}, "auditor user"),
        ({"auditors": ["Auditor"]}, "auditor user"),
        ({"witnesses": ["gateway"]}, "witness user"),
        ({"witnesses": ["auditor"]}, "witness user"),
        ({"witnesses": ["adapter-rs"]}, "witness user"),
        ({"gateway_group": "*"}, "consumer group"),
        ({"prefix": "*."}, "topic prefix"),
    ],
)
def test_no_option_can_widen_or_alias_a_grant(kwargs: dict[str, object], needle: str) -> None:
    """An auditor cannot borrow another principal's name; groups and prefixes stay literal."""
    options: dict[str, object] = {"prefix": "xb.", **kwargs}
    with pytest.raises(errors.UsageError, match=needle):
        acl_plan(["GB"], **options)  # type: ignore[arg-type]


def test_strimzi_name_must_be_a_kubernetes_name() -> None:
    with pytest.raises(errors.UsageError, match="Kubernetes"):
        render_strimzi(acl_plan(["GB"], prefix="xb."), cluster="My Cluster")


def test_cli_prints_both_formats() -> None:
    """`broker deploy acls --partners ...` prints what the renderers produce."""
    runner = CliRunner()
    result = runner.invoke(cli, ["deploy", "acls", "--partners", "GB,RS"])
    assert result.exit_code == 0, result.output
    assert parse_kafka_acls(result.output) == expected_grants(["GB", "RS"])
    result = runner.invoke(cli, ["deploy", "acls", "--partners", "GB", "--format", "strimzi"])
    assert result.exit_code == 0, result.output
    assert parse_strimzi(result.output) == expected_grants(["GB"])


def test_cli_needs_exactly_one_source() -> None:
    result = CliRunner().invoke(cli, ["deploy", "acls"])
    assert isinstance(result.exception, errors.UsageError)


def test_cli_reads_partners_from_the_verified_registry(tmp_path: Path) -> None:
    """--registry verifies the document now and grants exactly its partners."""
    _, data, _ = make_registry(now=dt.datetime.now(dt.UTC), partners=["GB", "RS", "XK"])
    document = tmp_path / "registry.json"
    document.write_bytes(data)
    result = CliRunner().invoke(cli, ["deploy", "acls", "--registry", str(document)])
    assert result.exit_code == 0, result.output
    assert parse_kafka_acls(result.output) == expected_grants(["GB", "RS", "XK"])


def test_cli_refuses_a_tampered_registry(tmp_path: Path) -> None:
    _, data, _ = make_registry(now=dt.datetime.now(dt.UTC), partners=["GB", "RS"])
    document = tmp_path / "registry.json"
    document.write_bytes(data.replace(b'"RS"', b'"MK"', 1))
    result = CliRunner().invoke(cli, ["deploy", "acls", "--registry", str(document)])
    assert isinstance(result.exception, errors.RegistryError)
