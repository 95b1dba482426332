"""The strict accord loader: every bad input is a PolicyError naming file:line:column and a fix."""

from __future__ import annotations

import json
import pathlib

import pytest

from broker.errors import PolicyError
from broker.policy import Accord, accord_json_schema, lint_accord, load_accord, parse_accord

from .conftest import POLICIES, SMALL_ACCORD

ROOT = POLICIES.parent


def _error(text: str, *, max_bytes: int = 256 * 1024) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_accord(text.encode(), source="a.yaml", max_bytes=max_bytes)
    return str(caught.value)


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_accord_loads(path: pathlib.Path) -> None:
    """The accords in policies/ are valid and named ``<id>.yaml``, or ``<id>.v<N>.yaml`` for
    version N of an accord with several versions on file (a renewal beside the one in force)."""
    accord = load_accord(path)
    stem, _, version = path.stem.partition(".v")
    assert stem == accord.accord
    assert version in ("", str(accord.version))


def test_small_accord_parses_with_its_fields(small_accord: Accord) -> None:
    """Fields arrive typed: dates, enums, the parsed rate limit."""
    flow = small_accord.flows[0]
    assert (flow.sender, flow.recipient) == ("GB", "ZZ")
    assert str(small_accord.effective) == "2026-01-01"
    assert flow.rate is not None
    assert (flow.rate.count, str(flow.rate.window)) == (10, "hour")


def test_malformed_yaml_names_the_position() -> None:
    """Broken YAML syntax is reported with file:line:column, not a parser traceback."""
    assert _error("accord: gb-zz\nparties: [GB, ZZ\n").startswith("a.yaml:3:1: malformed YAML")


def test_duplicate_keys_are_refused() -> None:
    """A key given twice is an error at the second occurrence (no silent last-wins)."""
    text = SMALL_ACCORD.replace("version: 2\n", "version: 2\nversion: 3\n")
    assert _error(text).startswith("a.yaml:4:1: version: duplicate key 'version'")


def test_unknown_keys_name_the_field_and_the_expected_ones() -> None:
    """A misspelt field is refused with the list of fields that exist there."""
    text = SMALL_ACCORD.replace(
        "    tier: operational\n", "    tier: operational\n    colour: red\n"
    )
    message = _error(text)
    assert message.startswith("a.yaml:13:5: flows[0].colour: unknown field 'colour'")
    assert "max_tlp" in message


@pytest.mark.parametrize(
    "tagged",
    [
        "title: !!python/object/apply:os.system ['true']\n",
        "title: !custom text\n",
        "title: !!str text\n",
    ],
    ids=["python-object", "custom-tag", "core-tag"],
)
def test_tags_are_refused(tagged: str) -> None:
    """Any explicit YAML tag is refused, even a harmless one: accords are plain data."""
    text = SMALL_ACCORD.replace("title: A small accord for tests\n", tagged)
    assert "YAML tags" in _error(text)


def test_anchors_and_aliases_are_refused_before_expansion() -> None:
    """A billion-laughs document fails at its first anchor, without expanding anything."""
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [{', '.join(['*' + previous] * 9)}]\n"
    assert _error(bomb).startswith("a.yaml:1:4: anchors ('&a') are not allowed")


def test_an_alias_without_anchor_syntax_is_refused() -> None:
    """Aliases are refused on their own too (a parser error or an alias refusal, never data)."""
    assert "a.yaml:" in _error("a: 1\nb: *a\n")


def test_oversized_file_is_refused_before_parsing() -> None:
    """The size limit applies to the raw bytes; even a malformed huge file gets the size error."""
    assert "over the 100-byte limit" in _error("[" * 101, max_bytes=100)


def test_yaml_1_1_directive_is_refused() -> None:
    """A %YAML 1.1 header would turn NO into false; directives are refused outright."""
    assert "directives are not allowed" in _error("%YAML 1.1\n---\n" + SMALL_ACCORD)


def test_multiple_documents_are_refused() -> None:
    """One accord per file."""
    assert "more than one YAML document" in _error(SMALL_ACCORD + "---\naccord: x\n")


def test_norway_stays_the_string_no() -> None:
    """YAML 1.2 core schema: the country code NO is the string 'NO', never false."""
    text = SMALL_ACCORD.replace("ZZ", "NO")
    accord = parse_accord(text.encode(), source="gb-no.yaml")
    assert accord.parties == ("GB", "NO")
    assert accord.flows[0].recipient == "NO"


def test_bad_enum_value_names_position_path_and_choices() -> None:
    """The canonical example: a mistyped TLP level."""
    message = _error(SMALL_ACCORD.replace("max_tlp: AMBER", "max_tlp: AMBR"))
    assert message == (
        "a.yaml:16:14: flows[0].max_tlp: 'AMBR' is not a TLP level; "
        "expected one of CLEAR, GREEN, AMBER, AMBER+STRICT, RED"
    )


def test_bad_date_is_a_positioned_error() -> None:
    """An impossible date is reported at its place with the expected format."""
    message = _error(SMALL_ACCORD.replace("expires: 2027-01-01", "expires: 2027-02-30"))
    assert message.startswith("a.yaml:6:10: expires: '2027-02-30' is not a valid date")


def test_bad_rate_limit_says_the_format() -> None:
    """A rate limit is N/hour or N/day."""
    message = _error(SMALL_ACCORD.replace("10/hour", "10 per hour"))
    assert "flows[0].rate_limit" in message
    assert "N/hour or N/day" in message


CONTRADICTIONS = {
    "expires-before-effective": (
        ("expires: 2027-01-01", "expires: 2025-01-01"),
        "expires: 2025-01-01 is not after effective 2026-01-01",
    ),
    "flow-to-a-non-party": (("    to: ZZ", "    to: RS"), "flows[0].to: RS is not a party"),
    "category-allowed-and-denied": (
        ("deny: [source-identifying]", "deny: [source-identifying, identity]"),
        "data category identity is both in allow and deny",
    ),
    "personal-data-on-a-strategic-flow": (
        ("tier: operational", "tier: strategic"),
        "identity is personal data, but the flow is strategic",
    ),
    "party-listed-twice": (("parties: [GB, ZZ]", "parties: [GB, ZZ, GB]"), "listed twice"),
}


@pytest.mark.parametrize(("edit", "expected"), CONTRADICTIONS.values(), ids=CONTRADICTIONS.keys())
def test_contradictions_are_errors(edit: tuple[str, str], expected: str) -> None:
    """Rules that cannot all hold are refused, with the field path of the contradiction."""
    assert edit[0] in SMALL_ACCORD
    assert expected in _error(SMALL_ACCORD.replace(*edit))


def test_duplicate_flow_ids_and_overlapping_flows_are_errors() -> None:
    """Two flows may not share an id, nor cover the same type in the same direction."""
    flow = SMALL_ACCORD[SMALL_ACCORD.index("  - id: GB-ZZ") :]
    problems = [str(p) for p in lint_accord((SMALL_ACCORD + flow).encode(), source="a.yaml")]
    assert any("flows[1].id: rule id 'GB-ZZ' is already used by flows[0]" in p for p in problems)
    assert any("flows[1].types:" in p and "already covered by flows[0]" in p for p in problems)


def test_lint_reports_every_problem_while_load_names_the_first() -> None:
    """lint lists all problems; the loader's one-line error counts the rest."""
    text = SMALL_ACCORD.replace("max_tlp: AMBER", "max_tlp: AMBR").replace(
        "tier: operational", "tier: tactical"
    )
    assert len(lint_accord(text.encode(), source="a.yaml")) == 2
    assert "(and 1 more; run 'broker policy lint')" in _error(text)


def test_unreadable_file_is_a_policy_error(tmp_path: pathlib.Path) -> None:
    """A missing file is our error, not an OSError traceback."""
    with pytest.raises(PolicyError, match="cannot read accord"):
        load_accord(tmp_path / "missing.yaml")


def test_published_json_schema_matches_the_model() -> None:
    """schemas/accord.schema.json is generated from the model (`broker policy schema`)."""
    published = json.loads((ROOT / "schemas" / "accord.schema.json").read_text(encoding="utf-8"))
    assert published == accord_json_schema(), "regenerate: broker policy schema > schemas/..."
