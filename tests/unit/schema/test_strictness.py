"""Hostile or malformed documents are refused with one line per problem naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from broker import errors
from broker.schema import MAX_DEPTH, parse_message

from .conftest import example_bytes


def _vessel() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(example_bytes("vessel.sighting"))
    return document


def _network() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(example_bytes("network.report"))
    return document


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def _with(document: dict[str, Any], path: str, value: Any) -> bytes:
    target: Any = document
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return _encode(document)


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


REJECTED = {
    "unknown top-level field": (_with(_vessel(), "priority", "high"), "priority: unknown field"),
    "unknown nested field": (
        _with(_network(), "body.members.0.shoe_size", 44),
        "body.members[0].shoe_size: unknown field",
    ),
    "NaN literal": (
        _encode(_vessel()).replace(b'"speed_knots": 5.5', b'"speed_knots": NaN'),
        "NaN is not a finite number",
    ),
    "Infinity literal": (
        _encode(_vessel()).replace(b'"speed_knots": 5.5', b'"speed_knots": -Infinity'),
        "-Infinity is not a finite number",
    ),
    "overflowing float": (
        _encode(_vessel()).replace(b'"speed_knots": 5.5', b'"speed_knots": 1e999'),
        "1e999 is not a finite number",
    ),
    "duplicate key in body": (
        _encode(_vessel()).replace(
            b'"persons_aboard": 58', b'"persons_aboard": 58, "persons_aboard": 3'
        ),
        "body.persons_aboard: duplicate key",
    ),
    "duplicate key deep inside": (
        _encode(_network()).replace(b'"ref": "M2"', b'"ref": "M2", "ref": "M9"'),
        "body.members[1].ref: duplicate key",
    ),
    "over-deep nesting": (
        _with(_vessel(), "body.remarks", _deep(MAX_DEPTH)),
        f"body.remarks[0][0][0][0][0][0][0][0]: nesting deeper than {MAX_DEPTH} levels",
    ),
    "string over its field bound": (
        _with(_vessel(), "body.sea_area", "x" * 201),
        "body.sea_area: String should have at most 200 characters",
    ),
    "list over its bound": (
        _with(_vessel(), "body.vessel.engines", [{"horsepower": 40}] * 5),
        "body.vessel.engines: Tuple should have at most 4 items",
    ),
    "wrong type, no coercion": (
        _with(_vessel(), "body.persons_aboard", "58"),
        "body.persons_aboard: Input should be a valid integer",
    ),
    "unknown message type": (_with(_vessel(), "type", "vessel.rumour"), "type: 'vessel.rumour'"),
    "unsupported schema version": (
        _with(_vessel(), "schema_version", 2),
        "schema_version: vessel.sighting version 2 is not supported (supported: 1)",
    ),
    "bad evaluation grade inside a union": (
        _with(
            _vessel(), "evaluation", {"scheme": "admiralty-6x6", "source": "G", "information": "1"}
        ),
        "evaluation.source: Input should be",
    ),
    "H3 without conditions": (
        _with(_vessel(), "handling", "H3"),
        "H3 needs at least one structured handling condition",
    ),
    "naive timestamp": (
        _with(_vessel(), "body.observed_at", "2026-09-14T04:52:00"),
        "body.observed_at: Value error, a timestamp is written YYYY-MM-DDTHH:MM:SS[.ffffff] then Z",
    ),
    "not JSON": (b"{type: network.report}", "$: not JSON"),
    "not an object": (b"[1, 2]", "$: a message is a JSON object"),
    "not UTF-8": (b'{"type": "\xff"}', "$: not UTF-8"),
}


@pytest.mark.parametrize(("data", "expected"), REJECTED.values(), ids=REJECTED.keys())
def test_bad_documents_are_rejected_naming_the_field(data: bytes, expected: str) -> None:
    """Each bad document raises SchemaError whose text names the field and the reason."""
    with pytest.raises(errors.SchemaError) as caught:
        parse_message(data)
    assert expected in str(caught.value)


def test_a_ten_megabyte_string_is_refused_by_size_before_parsing() -> None:
    """A 10 MB document is refused on its size alone, naming the limit."""
    data = _with(_vessel(), "body.remarks", "A" * 10_000_000)
    with pytest.raises(errors.SchemaError, match=r"^\$: message is \d+ bytes, over the 1048576"):
        parse_message(data)


def test_a_ten_megabyte_string_under_a_raised_limit_fails_on_its_field() -> None:
    """Even with a larger size limit, the string's own bound names the field."""
    data = _with(_vessel(), "body.remarks", "A" * 10_000_000)
    with pytest.raises(errors.SchemaError, match=r"body\.remarks: String should have at most"):
        parse_message(data, max_bytes=20_000_000)


def test_pathological_nesting_is_refused_without_a_crash() -> None:
    """Nesting deep enough to exhaust the decoder's recursion still gives a SchemaError."""
    data = b'{"body":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(errors.SchemaError, match="nesting deeper than"):
        parse_message(data)


def test_every_problem_is_one_line() -> None:
    """Several problems give several lines, each with its own path."""
    document = _vessel()
    document["body"]["heading_deg"] = 400
    document["body"]["colour_of_sky"] = "grey"
    with pytest.raises(errors.SchemaError) as caught:
        parse_message(_encode(document))
    lines = str(caught.value).splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [
        "body.colour_of_sky",
        "body.heading_deg",
    ]
