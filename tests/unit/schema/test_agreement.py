"""An outside validator and the project agree on every published schema.

Each table is a set of edge-case documents for one schema in ``schemas/``: ``jsonschema``
(Draft 2020-12, formats asserted) and the project's own parser (``broker schemas validate``'s
``parse_message``, the accord loader, ``load_config``) must both accept or both refuse each.
A document is a JSON value, so rules about how JSON text is spelled (a key twice, ``1.0`` for
an integer, ``NaN``) are below what a schema can see; :data:`LEXICAL` shows the parser refuses
them while the decoded value passes, and each message schema's ``$comment`` says so. The
accord loader's cross-field contradictions JSON Schema cannot state are in :data:`BEYOND_SCHEMA`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from broker import errors
from broker.config import load_config
from broker.policy import parse_accord
from broker.schema import parse_message

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "schemas"
FORMATS = Draft202012Validator.FORMAT_CHECKER


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


def test_the_outside_validator_checks_dates_and_timestamps() -> None:
    """Without its optional checker, jsonschema would pass any date-time silently."""
    assert {"date", "date-time"} <= set(FORMATS.checkers)
    assert not FORMATS.conforms("2026-02-30T00:00:00Z", "date-time")


# ---------------------------------------------------------------------------- messages


def _example(kind: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMAS / "examples" / f"{kind}.json").read_bytes())
    return document


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    target: Any = changed
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _ABSENT:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return changed


class _Absent:
    """A field left out of the document (its repr names it: test ids stay the same in every
    process, as pytest-xdist's workers need)."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()
_OK, _NO = True, False

#: (message type, field path, value, accepted?)
MESSAGE_CASES: list[tuple[str, str, Any, bool]] = [
    ("receipt", "body.received_at", "2026-10-05T09:14:07Z", _OK),
    ("receipt", "body.received_at", "2026-10-05T09:14:07.123456+02:00", _OK),
    ("receipt", "body.received_at", "2026-10-05T09:14:07.5-00:00", _OK),
    ("receipt", "body.received_at", "2026-10-05 09:14:07Z", _NO),  # space for T
    ("receipt", "body.received_at", "2026-10-05_09:14:07Z", _NO),  # _ for T
    ("receipt", "body.received_at", "2026-10-05t09:14:07z", _NO),  # lower case
    ("receipt", "body.received_at", "2026-10-05T09:14:07", _NO),  # no offset
    ("receipt", "body.received_at", "2026-10-05T09:14Z", _NO),  # no seconds
    ("receipt", "body.received_at", "2026-10-05T09:14:07+0100", _NO),
    ("receipt", "body.received_at", "2026-10-05T09:14:07,5Z", _NO),
    ("receipt", "body.received_at", "2026-10-05T09:14:07.1234567Z", _NO),
    ("receipt", "body.received_at", "2026-02-30T09:14:07Z", _NO),
    ("receipt", "body.received_at", "2026-10-05T24:00:00Z", _NO),
    ("receipt", "body.received_at", "2026-12-31T23:59:60Z", _NO),
    ("receipt", "body.received_at", "2026-10-05T09:14:07+24:00", _NO),
    ("receipt", "body.received_at", "2026-10-05T09:14:07Z\n", _NO),
    ("receipt", "body.received_at", 1_790_000_000, _NO),
    ("receipt", "purposes", ["people-smuggling", "safeguarding"], _OK),
    ("receipt", "purposes", ["people-smuggling", "people-smuggling"], _NO),
    ("receipt", "purposes", [], _NO),
    ("receipt", "purposes", "people-smuggling", _NO),
    ("receipt", "case_id", "GB-NCA-2026-0417\n", _NO),
    ("receipt", "handling_conditions", [{"kind": "restrict-to-units", "units": ["x"]}], _NO),
    ("receipt", "schema_version", 2, _NO),
    ("receipt", "schema_version", True, _NO),
    ("financial.flow", "body.total.amount", "12200.00", _OK),
    ("financial.flow", "body.total.amount", "0", _OK),
    ("financial.flow", "body.total.amount", "0.5", _OK),
    ("financial.flow", "body.total.amount", "12345678901234", _OK),
    ("financial.flow", "body.total.amount", "123456789012.34", _OK),
    ("financial.flow", "body.total.amount", "banana", _NO),
    ("financial.flow", "body.total.amount", "NaN", _NO),
    ("financial.flow", "body.total.amount", "Infinity", _NO),
    ("financial.flow", "body.total.amount", "1e3", _NO),
    ("financial.flow", "body.total.amount", "12.345", _NO),
    ("financial.flow", "body.total.amount", "0.001", _NO),
    ("financial.flow", "body.total.amount", "123456789012345", _NO),
    ("financial.flow", "body.total.amount", "1234567890123.45", _NO),
    ("financial.flow", "body.total.amount", "12345678901234.00", _NO),
    ("financial.flow", "body.total.amount", "00012.00", _NO),
    ("financial.flow", "body.total.amount", " 12.00", _NO),
    ("financial.flow", "body.total.amount", "-1", _NO),
    ("financial.flow", "body.total.amount", "12.", _NO),
    ("financial.flow", "body.total.amount", "12\n", _NO),
    ("financial.flow", "body.total.amount", 12.5, _NO),
    ("financial.flow", "body.total.amount", 12, _NO),
    ("financial.flow", "body.total.currency", "GBP\n", _NO),
    ("financial.flow", "body.period_start", "2026-05-01", _OK),
    ("financial.flow", "body.period_start", "2026-5-01", _NO),
    ("financial.flow", "body.period_start", "2026-05-01T00:00:00Z", _NO),
    ("financial.flow", "body.period_start", "2026-02-29", _NO),
    ("financial.flow", "body.period_start", "0000-01-01", _NO),
    ("financial.flow", "body.period_start", "2026-05-01\n", _NO),
    ("financial.flow", "handling", "H0", _NO),  # conditions without H3
    ("financial.flow", "handling_conditions", _ABSENT, _NO),  # H3 without conditions
    ("financial.flow", "handling_conditions", [], _NO),
    ("onward.request", "body.fields_requested", ["body.members[0].comms"], _OK),
    ("onward.request", "body.fields_requested", ["body.members[\u0663].comms"], _NO),
]


def _message_parser_accepts(document: dict[str, Any]) -> bool:
    try:
        parse_message(json.dumps(document).encode("utf-8"))
    except errors.SchemaError:
        return False
    return True


def _message_schema_accepts(document: dict[str, Any]) -> bool:
    return bool(_validator(f"{document['type']}.v1.schema.json").is_valid(document))


@pytest.mark.parametrize("kind", sorted({case[0] for case in MESSAGE_CASES} | {"network.report"}))
def test_every_example_is_valid_to_both(kind: str) -> None:
    """The shipped examples are the baseline each case changes one thing in."""
    document = _example(kind)
    assert _message_schema_accepts(document)
    assert _message_parser_accepts(document)


@pytest.mark.parametrize(("kind", "path", "value", "accepted"), MESSAGE_CASES, ids=repr)
def test_message_schemas_and_the_parser_agree(
    kind: str, path: str, value: Any, accepted: bool
) -> None:
    """jsonschema and ``broker schemas validate`` give the same answer, the expected one."""
    document = _set(_example(kind), path, value)
    assert (_message_schema_accepts(document), _message_parser_accepts(document)) == (
        accepted,
        accepted,
    )


_SPELLING = st.sampled_from(["T", " ", "_", "t"])
_ZONE = st.sampled_from(["Z", "z", "+01:00", "-00:00", "+0100", "+24:00", ""])


@given(
    day=st.dates(),
    hour=st.integers(0, 25),
    minute=st.integers(0, 60),
    second=st.integers(0, 61),
    fraction=st.sampled_from(["", ".5", ".123456", ".1234567", ","]),
    separator=_SPELLING,
    zone=_ZONE,
)
def test_any_timestamp_spelling_gets_one_answer(
    day: Any, hour: int, minute: int, second: int, fraction: str, separator: str, zone: str
) -> None:
    """Whatever the spelling, the schema and the parser agree on a message's timestamp."""
    text = f"{day.isoformat()}{separator}{hour:02d}:{minute:02d}:{second:02d}{fraction}{zone}"
    document = _set(_example("receipt"), "body.received_at", text)
    assert _message_schema_accepts(document) == _message_parser_accepts(document), text


@given(
    amount=st.one_of(
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.from_regex(r"\A[0-9]{1,16}(\.[0-9]{0,4})?\Z"),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    )
)
def test_any_amount_gets_one_answer(amount: Any) -> None:
    """Any amount, text or number: both accept it or both refuse it."""
    document = _set(_example("financial.flow"), "body.total.amount", amount)
    assert _message_schema_accepts(document) == _message_parser_accepts(document), amount


#: JSON text whose spelling the parser refuses, though the value it decodes to is valid:
#: JSON Schema sees values, so these are stated in the schemas' descriptions instead.
LEXICAL: dict[str, tuple[bytes, bytes]] = {
    "an integer written 1.0": (b'"schema_version": 1', b'"schema_version": 1.0'),
    "an integer written 1e0": (b'"schema_version": 1', b'"schema_version": 1e0'),
    "a key twice": (b'"tlp": "GREEN"', b'"tlp": "RED", "tlp": "GREEN"'),
}


@pytest.mark.parametrize("case", sorted(LEXICAL))
def test_spelling_rules_are_the_parsers_alone(case: str) -> None:
    """The decoded document is valid to the schema; the text is refused by the parser."""
    valid, spelled = LEXICAL[case]
    text = json.dumps(_example("receipt")).encode("utf-8")
    assert valid in text
    data = text.replace(valid, spelled, 1)
    assert _message_schema_accepts(json.loads(data))
    assert "1.0" in _validator("receipt.v1.schema.json").schema["$comment"]
    with pytest.raises(errors.SchemaError):
        parse_message(data)


LABELS = {
    "message_type": "receipt",
    "schema_version": 1,
    "classification": "OFFICIAL",
    "tlp": "GREEN",
    "handling": "H0",
    "purposes": ["people-smuggling"],
    "data_categories": ["operational"],
}


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("purposes", ["safeguarding", "people-smuggling"], _OK),
        ("purposes", ["safeguarding", "safeguarding"], _NO),
        ("data_categories", [], _OK),
        ("data_categories", ["identity", "identity"], _NO),
        ("schema_version", 0, _NO),
    ],
    ids=repr,
)
def test_the_labels_schema_and_model_agree(field: str, value: Any, accepted: bool) -> None:
    """labels.schema.json and the Labels model the envelope header is read into."""
    from broker.schema import Labels

    document = {**LABELS, field: value}
    try:
        Labels.model_validate_json(json.dumps(document))
        parsed = True
    except ValueError:
        parsed = False
    assert (_validator("labels.schema.json").is_valid(document), parsed) == (accepted, accepted)


# ---------------------------------------------------------------------------- accords


def _accord() -> dict[str, Any]:
    return {
        "accord": "gb-rs",
        "title": "GB and RS",
        "version": 1,
        "parties": ["GB", "RS"],
        "effective": "2026-01-01",
        "expires": "2028-01-01",
        "suite": "classic",
        "flows": [
            {
                "id": "GB-RS-1",
                "from": "GB",
                "to": "RS",
                "tier": "operational",
                "types": ["network.report"],
                "purposes": ["people-smuggling"],
                "max_classification": "OFFICIAL-SENSITIVE",
                "max_tlp": "AMBER",
                "handling_codes": ["H0", "H1"],
                "categories": {"allow": ["operational", "identity"], "deny": ["health"]},
                "handling": {"onward_sharing": "never", "retention_days": 365},
            }
        ],
    }


ACCORD_CASES: list[tuple[str, Any, bool]] = [
    ("version", 2, _OK),
    ("effective", "2026-01-01T09:00:00+02:00", _OK),
    ("effective", "2026-01-01T09:00:00", _NO),
    ("effective", "2026-01-01 09:00:00Z", _NO),
    ("effective", "2026-01-01t09:00:00z", _NO),
    ("effective", "2026-01-01T09:00:00.1234567Z", _NO),
    ("effective", "2026-02-30", _NO),
    ("effective", "2026-01-01\n", _NO),
    ("parties", ["GB", "RS", "GB"], _NO),
    ("parties", ["GB", "RS\n"], _NO),
    ("flows.0.types", ["network.report", "network.report"], _NO),
    ("flows.0.purposes", ["people-smuggling", "people-smuggling"], _NO),
    ("flows.0.handling_codes", ["H0", "H0"], _NO),
    ("flows.0.categories.allow", ["identity", "identity"], _NO),
    ("flows.0.categories.redact", ["operational"], _NO),
    ("flows.0.categories.redact", ["location"], _OK),
    ("flows.0.tier", "strategic", _NO),  # it allows identity, personal data
    ("flows.0.rate_limit", "2000/hour", _OK),
    ("flows.0.rate_limit", "2000/hour\n", _NO),
    ("flows.0.handling.retention_days", 0, _NO),
]

#: the loader's contradictions that compare values across fields: JSON Schema cannot say
#: them, so the schema accepts these documents and ``broker policy lint`` refuses them
BEYOND_SCHEMA: list[tuple[str, Any]] = [
    ("expires", "2025-01-01"),  # before effective
    ("flows.0.to", "GB"),  # a flow from a party to itself
    ("flows.0.to", "MK"),  # not a party
]


def _accord_parser_accepts(document: dict[str, Any]) -> bool:
    try:
        parse_accord(json.dumps(document).encode("utf-8"), source="accord.json")
    except errors.PolicyError:
        return False
    return True


@pytest.mark.parametrize(("path", "value", "accepted"), ACCORD_CASES, ids=repr)
def test_the_accord_schema_and_loader_agree(path: str, value: Any, accepted: bool) -> None:
    """accord.schema.json and the accord loader give the same, expected answer."""
    assert _validator("accord.schema.json").is_valid(_accord())
    document = _set(_accord(), path, value)
    schema_says = _validator("accord.schema.json").is_valid(document)
    assert (schema_says, _accord_parser_accepts(document)) == (accepted, accepted)


@pytest.mark.parametrize(("path", "value"), BEYOND_SCHEMA, ids=repr)
def test_cross_field_contradictions_are_the_loaders_alone(path: str, value: Any) -> None:
    """Named here so the gap is visible: the schema passes them, the loader refuses them."""
    document = _set(_accord(), path, value)
    assert _validator("accord.schema.json").is_valid(document)
    assert not _accord_parser_accepts(document)


# ---------------------------------------------------------------------------- configuration


_GATEWAY = {
    "registry": {"path": "registry.json", "trusted_roots": "roots.json"},
    "keys": {"signing_key": "sign.pem", "passphrase": {"env": "KEY_PASSPHRASE"}},
    "store": {"path": "dedup.sqlite"},
}
_TLS = {"protocol": "SSL", "ca_file": "ca.pem"}

CONFIG_CASES: list[tuple[str, Any, bool]] = [
    ("kafka", {"bootstrap": "127.0.0.1:9092,127.0.0.2:9092"}, _OK),
    ("kafka", {"bootstrap": ["127.0.0.1:9092", "[::1]:9092"]}, _OK),
    ("kafka", {"bootstrap": "127.0.0.1:9092, 127.0.0.2:9092"}, _NO),
    ("kafka", {"bootstrap": "127.0.0.1:9092,,127.0.0.2:9092"}, _NO),
    ("kafka", {"bootstrap": "127.0.0.1:9092,"}, _NO),
    ("kafka", {"bootstrap": ["127.0.0.1:09092"]}, _NO),
    ("kafka", {"bootstrap": ["127.0.0.1:65536"]}, _NO),
    ("kafka", {"bootstrap": ["127.0.0.1:0"]}, _NO),
    ("kafka", {"bootstrap": ["127.0.0.1:\u0669\u0660\u0669\u0662"]}, _NO),  # Arabic digits
    ("kafka", {"bootstrap": []}, _NO),
    ("kafka", {"bootstrap": ["127.0.0.1:9092\n"]}, _NO),
    ("kafka", {"topic_prefix": "xb.team."}, _OK),
    ("kafka", {"topic_prefix": "XB."}, _NO),
    ("kafka", {"topic_prefix": "xb"}, _NO),
    ("kafka", {"session_timeout_ms": 2_999}, _NO),
    ("kafka", {"security": {**_TLS, "cert_file": "c.pem", "key_file": "k.pem"}}, _OK),
    ("kafka", {"security": {**_TLS, "cert_file": "c.pem"}}, _NO),
    ("kafka", {"security": {**_TLS, "cert_file": "c.pem", "key_file": None}}, _NO),
    ("kafka", {"security": {**_TLS, "cert_file": None, "key_file": None}}, _OK),
    ("keys", {"signing_key": "s.pem", "passphrase": {"file": "p"}}, _OK),
    ("keys", {"signing_key": "s.pem", "passphrase": {"file": "p", "env": None}}, _OK),
    ("keys", {"signing_key": "s.pem", "passphrase": {"file": "p", "env": "X"}}, _NO),
    ("keys", {"signing_key": "s.pem", "passphrase": {}}, _NO),
    ("keys", {"signing_key": "s.pem", "passphrase": {"env": "lower"}}, _NO),
    ("keys", {"signing_key": "", "passphrase": {"env": "X"}}, _NO),
    ("keys", {"signing_key": "a\x00b", "passphrase": {"env": "X"}}, _NO),
    ("keys", {"signing_key": "k" * 4097, "passphrase": {"env": "X"}}, _NO),
    ("keys", {"signing_key": "s.pem", "passphrase": {"env": "X"}, "decryption_keys": []}, _NO),
    ("store", {"path": "dedup.sqlite", "retention_days": 30}, _NO),  # an adapter's setting
    ("partner", "GB", _NO),  # an adapter's file then, without its KEM keys
]


def _config_parser_accepts(document: dict[str, Any], tmp_path: Path) -> bool:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML 1.2
    try:
        load_config(path, env={})
    except errors.SchemaError:
        return False
    return True


@pytest.mark.parametrize(("section", "value", "accepted"), CONFIG_CASES, ids=repr)
def test_the_config_schema_and_loader_agree(
    section: str, value: Any, accepted: bool, tmp_path: Path
) -> None:
    """config.schema.json and ``broker deploy check-config`` give the same, expected answer."""
    assert _validator("config.schema.json").is_valid(_GATEWAY)
    document = {**_GATEWAY, section: value}
    schema_says = _validator("config.schema.json").is_valid(document)
    assert (schema_says, _config_parser_accepts(document, tmp_path)) == (accepted, accepted)
