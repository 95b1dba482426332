"""Reading accords from YAML: strict parsing, validation and contradiction checks, with positions.

Every problem is reported as ``file:line:column: field.path: what is wrong; how to fix it``,
for example::

    policies/gb-rs.yaml:14:15: flows[0].max_tlp: 'AMBR' is not a TLP level; expected one of
    CLEAR, GREEN, AMBER, AMBER+STRICT, RED

:func:`lint_accord` returns every problem in a file; :func:`parse_accord` and
:func:`load_accord` raise :class:`~broker.errors.PolicyError` naming the first (and how many
more there are), so a daemon's log line stays one line.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Callable
from typing import Any, TypeVar

import pydantic
from pydantic_core import ErrorDetails

from broker.errors import PolicyError
from broker.policy._yaml import DEFAULT_MAX_BYTES, Path, YamlDocument, format_path, read_yaml
from broker.policy.model import PERSONAL_CATEGORIES, Accord, CategoryRules, Flow, FlowHandling

__all__ = [
    "Problem",
    "lint_accord",
    "lint_accord_file",
    "load_accord",
    "parse_accord",
    "read_yaml_model",
]

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

# What a bad value in a field should have been, by the field's name.
_NOUNS = {
    "max_tlp": "a TLP level",
    "max_classification": "a classification",
    "classification": "a classification",
    "tlp": "a TLP level",
    "handling_codes": "a handling code",
    "handling": "a handling code",
    "purposes": "a purpose",
    "types": "a message type",
    "message_type": "a message type",
    "allow": "a data category",
    "redact": "a data category",
    "deny": "a data category",
    "data_categories": "a data category",
    "suite": "an envelope suite",
    "tier": "a tier",
    "onward_sharing": "an onward-sharing rule",
    "outcome": "a decision outcome",
}
_PATTERN_HINTS = {
    "parties": "a partner code is two capital letters, e.g. GB or RS",
    "from": "a partner code is two capital letters, e.g. GB or RS",
    "to": "a partner code is two capital letters, e.g. GB or RS",
    "rate_limit": "write N/hour or N/day, e.g. 2000/hour",
    "accord": "an accord id is lowercase letters, digits and dashes, e.g. gb-rs",
    "id": "a rule id is letters, digits, '-' and '_', e.g. GB-RS-1",
}
_MODEL_AT: list[tuple[tuple[type | str, ...], type[pydantic.BaseModel]]] = [
    (("flows", int, "categories"), CategoryRules),
    (("flows", int, "handling"), FlowHandling),
    (("flows", int), Flow),
    ((), Accord),
]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, with where it is and how to fix it."""

    where: str
    path: Path
    message: str

    def __str__(self) -> str:
        if not self.path and self.message.startswith(self.where):
            return self.message  # a YAML-level refusal already names its position
        return f"{self.where}: {format_path(self.path)}: {self.message}"


def load_accord(path: pathlib.Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Accord:
    """Read, validate and check ``path``; raise :class:`PolicyError` on the first problem."""
    return parse_accord(_read(path, max_bytes=max_bytes), source=str(path), max_bytes=max_bytes)


def parse_accord(data: bytes, *, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Accord:
    """Parse accord bytes (``source`` names them in errors); raise :class:`PolicyError`."""
    document = read_yaml(data, source=source, max_bytes=max_bytes)
    accord = _validate(document, Accord)
    _raise_first(contradictions(accord, document))
    return accord


def lint_accord(data: bytes, *, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Problem]:
    """Every problem in an accord file (empty when it is fine)."""
    try:
        document = read_yaml(data, source=source, max_bytes=max_bytes)
    except PolicyError as exc:
        return [Problem(where=source, path=(), message=str(exc))]
    try:
        accord = Accord.model_validate_json(_json(document))
    except pydantic.ValidationError as exc:
        return _problems(document, exc.errors(), Accord)
    return contradictions(accord, document)


def lint_accord_file(path: pathlib.Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Problem]:
    """Every problem in the accord file at ``path`` (an unreadable file is one problem)."""
    try:
        data = _read(path, max_bytes=max_bytes)
    except PolicyError as exc:
        return [Problem(where=str(path), path=(), message=str(exc))]
    return lint_accord(data, source=str(path), max_bytes=max_bytes)


def read_yaml_model(
    data: bytes, model: type[ModelT], *, source: str, max_bytes: int = DEFAULT_MAX_BYTES
) -> ModelT:
    """Read any strict YAML document into ``model``, with positioned errors (fixtures, traffic)."""
    return _validate(read_yaml(data, source=source, max_bytes=max_bytes), model)


def _read(path: pathlib.Path, *, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            # Read one byte past the limit so oversize is detected without reading it all.
            return handle.read(max_bytes + 1)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read accord: {exc.strerror or exc}") from exc


def _json(document: YamlDocument) -> str:
    return json.dumps(document.data, ensure_ascii=False)


def _validate(document: YamlDocument, model: type[ModelT]) -> ModelT:
    # Every model read here is strict by its own configuration. strict=True at the call would
    # also override the fields that check their text first and then parse lax on purpose
    # (broker.schema.forms), and refuse every set written as a list.
    try:
        return model.model_validate_json(_json(document))
    except pydantic.ValidationError as exc:
        _raise_first(_problems(document, exc.errors(), model))
        raise AssertionError("unreachable") from exc  # pragma: no cover


def _raise_first(problems: list[Problem]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more; run 'broker policy lint')" if problems[1:] else ""
        raise PolicyError(f"{problems[0]}{more}")


def _problems(
    document: YamlDocument, errors: list[ErrorDetails], root: type[pydantic.BaseModel]
) -> list[Problem]:
    paths = [_path(error) for error in errors]
    problems = []
    for error, path in zip(errors, paths, strict=True):
        # A list whose every item failed is also reported as "too short": say it once, deeper.
        if error["type"] == "too_short" and any(
            other[: len(path)] == path and len(other) > len(path) for other in paths
        ):
            continue
        key = error["type"] == "extra_forbidden" or "[key]" in error["loc"]
        problems.append(
            Problem(
                where=document.where(path, key=key), path=path, message=_message(error, path, root)
            )
        )
    return problems


def _path(error: ErrorDetails) -> Path:
    # Dict-key errors carry a '[key]' marker in the location; drop it, the path already says it.
    return tuple(p for p in error["loc"] if p != "[key]")


def _message(error: ErrorDetails, path: Path, root: type[pydantic.BaseModel]) -> str:
    kind = error["type"]
    value = error.get("input")
    names = [p for p in path if isinstance(p, str)]
    leaf = names[-1] if names else ""
    if kind == "enum":
        noun = _NOUNS.get(leaf, "an allowed value")
        expected = str(error.get("ctx", {}).get("expected", "")).replace("'", "")
        expected = expected.replace(" or ", ", ")
        return f"{value!r} is not {noun}; expected one of {expected}"
    if kind == "extra_forbidden":
        known = _known_fields(path[:-1], root)
        hint = f"; expected one of: {', '.join(known)}" if known else ""
        return f"unknown field {path[-1]!r}{hint}"
    if kind == "missing":
        return f"required field {leaf!r} is missing; add it"
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get(leaf, "see docs/ACCORDS.md for the format")
        return f"{value!r} is not valid; {hint}"
    if kind == "accord_time_offset":
        return (
            f"{value!r} is a timestamp without a UTC offset, so it names no single instant; "
            f"add Z for UTC or the offset, e.g. {_with_offset(value)}"
        )
    if kind in ("accord_time_invalid", "accord_time_type"):
        return (
            f"{value!r} is not a valid date or timestamp; write YYYY-MM-DD (midnight UTC), "
            "e.g. 2027-11-07, or an RFC 3339 timestamp with its offset, e.g. 2027-11-07T18:00:00Z"
        )
    if kind in ("date_from_datetime_parsing", "date_parsing", "date_type", "datetime_parsing"):
        return f"{value!r} is not a valid date; write YYYY-MM-DD, e.g. 2027-11-07"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{value!r} is not a whole number"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "expected a mapping of fields (name: value)"
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{error['msg']} (got {shown})"


def _with_offset(value: object) -> str:
    # The refused text with a Z added, when that is all it lacks (else a generic example).
    text = str(value)
    return f"{text}Z" if len(text) <= 40 and "T" in text else "2027-11-07T18:00:00Z"


def _known_fields(path: Path, root: type[pydantic.BaseModel]) -> list[str]:
    if root is not Accord:
        model: type[pydantic.BaseModel] | None = root if not path else None
    else:
        model = None
        for shape, candidate in _MODEL_AT:
            if len(shape) == len(path) and all(
                (s is int and isinstance(p, int)) or s == p
                for s, p in zip(shape, path, strict=True)
            ):
                model = candidate
                break
    if model is None:
        return []
    return sorted(field.alias or name for name, field in model.model_fields.items())


def contradictions(accord: Accord, document: YamlDocument | None = None) -> list[Problem]:
    """Rules that cannot all hold, or that refer to things the accord does not define."""
    problems: list[Problem] = []

    def add(path: Path, message: str) -> None:
        where = document.where(path) if document else accord.accord
        problems.append(Problem(where=where, path=path, message=message))

    if accord.expires_at() <= accord.effective_from():
        add(
            ("expires",),
            f"{accord.expires_text} is not after effective {accord.effective_text}; "
            "an accord must expire after it takes effect",
        )
    seen_parties: set[str] = set()
    for index, party in enumerate(accord.parties):
        if party in seen_parties:
            add(("parties", index), f"party {party} is listed twice; list each party once")
        seen_parties.add(party)
    flow_ids: dict[str, int] = {}
    for index, flow in enumerate(accord.flows):
        _check_flow(accord, index, flow, flow_ids, seen_parties, add)
    return problems


def _check_flow(
    accord: Accord,
    index: int,
    flow: Flow,
    flow_ids: dict[str, int],
    parties: set[str],
    add: Callable[[Path, str], None],
) -> None:
    here: Path = ("flows", index)
    if flow.id in flow_ids:
        add(
            (*here, "id"),
            f"rule id {flow.id!r} is already used by flows[{flow_ids[flow.id]}]; "
            "rule ids must be unique",
        )
    flow_ids.setdefault(flow.id, index)
    for end, partner in (("from", flow.sender), ("to", flow.recipient)):
        if partner not in parties:
            add(
                (*here, end),
                f"{partner} is not a party to this accord; parties are {_list(accord.parties)}",
            )
    if flow.sender == flow.recipient:
        add((*here, "to"), f"a flow goes between two parties, not from {flow.sender} to itself")
    lists = {
        "allow": flow.categories.allow,
        "redact": flow.categories.redact,
        "deny": flow.categories.deny,
    }
    for first, second in (("allow", "deny"), ("allow", "redact"), ("redact", "deny")):
        for category in sorted(lists[first] & lists[second]):
            add(
                (*here, "categories", second),
                f"data category {category} is both in {first} and {second}; keep it in one list",
            )
    if "operational" in flow.categories.redact:
        add(
            (*here, "categories", "redact"),
            "operational data is the message itself and cannot be redacted; allow or deny it",
        )
    if flow.tier == "strategic":
        for category in sorted(flow.categories.allow & PERSONAL_CATEGORIES):
            add(
                (*here, "categories", "allow"),
                f"{category} is personal data, but the flow is strategic (no personal data); "
                "move it to redact or deny, or make the flow operational",
            )
    for other_index, other in enumerate(accord.flows[:index]):
        overlap = (other.sender, other.recipient) == (flow.sender, flow.recipient) and (
            other.types & flow.types
        )
        if overlap:
            add(
                (*here, "types"),
                f"{_list(sorted(overlap))} on {flow.direction} is already covered by "
                f"flows[{other_index}] ({other.id}); each message type may match one flow only",
            )


def _list(items: Any) -> str:
    return ", ".join(str(i) for i in items)
