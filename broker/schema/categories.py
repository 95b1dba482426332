"""Data categories, read from the models: what a message holds, its labels, redacted copies.

Nothing here knows any message type. Each body field declares its category once (see
:mod:`broker.schema.fields`); these functions walk whatever body they are given. A field counts
as present when it holds something: not ``None`` and not an empty list.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

import pydantic
from pydantic.fields import FieldInfo

from broker import errors
from broker.schema.fields import Record, category_of
from broker.schema.labels import PROTOCOL_TYPES, DataCategory, Labels, MessageType
from broker.schema.message import MESSAGE_MODELS, Message
from broker.schema.protocol import Disclosed

__all__ = [
    "categories_present",
    "disclosed_categories",
    "field_categories",
    "labels_of",
    "redact",
]


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, tuple) and not value)


@functools.cache
def _plan(model: type[Record]) -> tuple[tuple[str, DataCategory, FieldInfo], ...]:
    """Each field of ``model`` with its declared category, read from the metadata once per
    class: messages are labelled on every send and receive, and the walk is the hot part."""
    return tuple((name, category_of(info), info) for name, info in model.model_fields.items())


def _children(value: object, path: str) -> Iterator[tuple[str, Record]]:
    if isinstance(value, Record):
        yield path, value
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            if isinstance(item, Record):
                yield f"{path}[{index}]", item


def field_categories(record: Record, path: str = "body") -> Iterator[tuple[str, DataCategory]]:
    """Every present field under ``record``, depth first, as ``(path, category)``."""
    for name, category, _ in _plan(type(record)):
        value = getattr(record, name)
        if not _present(value):
            continue
        field_path = f"{path}.{name}"
        yield field_path, category
        for child_path, child in _children(value, field_path):
            yield from field_categories(child, child_path)


def categories_present(message: Message) -> frozenset[DataCategory]:
    """The categories of the fields this message actually holds."""
    found: set[DataCategory] = set()
    _collect(message.body, found)
    return frozenset(found)


def _collect(record: Record, found: set[DataCategory]) -> None:
    # field_categories without the paths: the same walk, for labelling at volume
    found.update(record.carried_categories())
    for name, category, _ in _plan(type(record)):
        value = getattr(record, name)
        if not _present(value):
            continue
        found.add(category)
        if isinstance(value, Record):
            _collect(value, found)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Record):
                    _collect(item, found)


def disclosed_categories(disclosed: Disclosed) -> frozenset[DataCategory]:
    """The categories of the body fields a disclosure reveals (its markings are operational),
    read from the disclosed message type's model; every category when the disclosure names a
    type, field or value the models do not know: nothing can be judged on less."""
    try:
        labels = json.loads(disclosed.header)["labels"]
        kind = MessageType(labels["message_type"])
        if kind in PROTOCOL_TYPES:
            # a protocol message's body may carry other messages whole (a forward's): its
            # fields' own categories say nothing of what is inside
            return frozenset(DataCategory)
        model = MESSAGE_MODELS[(kind, labels["schema_version"])]
        found = {DataCategory.OPERATIONAL}
        for path, item in disclosed.fields.items():
            if path.startswith("body."):
                category, reader = _body_field(model, path.removeprefix("body."))
                found.add(category)
                value = reader.validate_json(json.dumps(item.value))
                for child in value if isinstance(value, tuple) else (value,):
                    if isinstance(child, Record):
                        _collect(child, found)
        return frozenset(found)
    except (KeyError, TypeError, ValueError, pydantic.ValidationError):
        return frozenset(DataCategory)


@functools.cache
def _body_field(model: type[Message], name: str) -> tuple[DataCategory, pydantic.TypeAdapter[Any]]:
    """A body field's category and a reader for its value (``KeyError`` for no such field)."""
    body = model.model_fields["body"].annotation
    if not (isinstance(body, type) and issubclass(body, Record)):
        raise TypeError(f"{model.__name__} has no body model")
    info = body.model_fields[name]
    if info.annotation is None:
        raise TypeError(f"{body.__name__}.{name} has no type")
    return category_of(info), pydantic.TypeAdapter(info.annotation)


def labels_of(message: Message) -> Labels:
    """The clear labels of ``message``, with the data categories it actually holds."""
    return Labels(
        message_type=message.type,
        schema_version=message.schema_version,
        classification=message.classification,
        tlp=message.tlp,
        handling=message.handling,
        purposes=message.purposes,
        data_categories=categories_present(message),
    )


def _redact_record(
    record: Record, path: str, drop: frozenset[DataCategory], removed: list[str]
) -> Record:
    update: dict[str, Any] = {}
    for name, category, info in _plan(type(record)):
        value = getattr(record, name)
        if not _present(value):
            continue
        field_path = f"{path}.{name}"
        if category in drop:
            # Record rules guarantee every non-operational default is None or ().
            update[name] = info.get_default(call_default_factory=True)
            removed.append(field_path)
        elif isinstance(value, Record):
            update[name] = _redact_record(value, field_path, drop, removed)
        elif isinstance(value, tuple) and any(isinstance(item, Record) for item in value):
            update[name] = tuple(
                _redact_record(item, f"{field_path}[{i}]", drop, removed)
                if isinstance(item, Record)
                else item
                for i, item in enumerate(value)
            )
    # The copy keeps the validated types of everything it does not empty; validators of
    # operational fields cannot be affected, because operational fields are never removed.
    return record.model_copy(update=update) if update else record


def redact(message: Message, categories: Iterable[DataCategory]) -> Message:
    """A copy of ``message`` without any field of ``categories``, and the removed paths recorded.

    A category the message does not hold is simply absent from the result. Operational data is
    the message itself and cannot be redacted: a flow that may not carry it must drop the
    message (``UsageError``).
    """
    drop = frozenset(categories)
    if DataCategory.OPERATIONAL in drop:
        raise errors.UsageError(
            "operational data cannot be redacted; drop the message instead of redacting it"
        )
    removed: list[str] = []
    body = _redact_record(message.body, "body", drop, removed)
    if not removed:
        return message
    return message.model_copy(
        update={"body": body, "redacted": tuple(sorted({*message.redacted, *removed}))}
    )
