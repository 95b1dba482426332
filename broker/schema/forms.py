"""The one written form of each value the parser takes, stated so the JSON Schema says it too.

pydantic's own parsers are more forgiving than the published schemas: a timestamp with a space
or ``_`` for its ``T``, a list with an item twice where the model keeps a set, a money amount
as a float or as ``"1e3"``. Each type here holds the text to one form first, and publishes the
same rule (a ``pattern``, ``uniqueItems``) in its JSON Schema, so an outside validator and
``broker schemas validate`` accept the same documents (tests/unit/schema/test_agreement.py).
Patterns use ``[0-9]``, never ``\\d``: the Rust, Python and ECMA-262 engines disagree on which
digits ``\\d`` means.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import GroupedMetadata
from pydantic import (
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

__all__ = [
    "AMOUNT_PATTERN",
    "DAY_PATTERN",
    "NO_REPEATS",
    "TIMESTAMP_PATTERN",
    "Amount",
    "Day",
    "Timestamp",
]

TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
"""RFC 3339 with an upper-case ``T`` and ``Z``, seconds always, at most microseconds."""
DAY_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
"""An ISO 8601 calendar date, ``YYYY-MM-DD``."""
AMOUNT_PATTERN = (
    r"^(?:(0|[1-9][0-9]{0,13})|(0|[1-9][0-9]{0,12})\.[0-9]|(0|[1-9][0-9]{0,11})\.[0-9]{2})$"
)
"""A non-negative decimal as text: at most two decimal places and 14 digits in all, no sign,
exponent, leading zero or space."""

_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_AMOUNT = re.compile(AMOUNT_PATTERN)


def _timestamp_text(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise ValueError(
            "a timestamp is written YYYY-MM-DDTHH:MM:SS[.ffffff] then Z or +HH:MM (RFC 3339)"
        )
    return value


# A before-validator hands the inner one Python values, which strict mode would refuse as text;
# the text is already held to its one form here, so the inner parse may be lax (and numbers,
# which lax mode would take as Unix times, never reach it).
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_text),
    Field(strict=False),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
"""An instant with its offset, in the one RFC 3339 form the schemas publish."""

Day = Annotated[
    dt.date, WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN})
]
"""A calendar date (pydantic's strict date parser already takes only ``YYYY-MM-DD``)."""


def _amount(value: Any) -> Decimal:
    # Text only: a JSON number would reach us as a float, already rounded in binary.
    text = str(value) if isinstance(value, Decimal) else value
    if not isinstance(text, str) or not _AMOUNT.fullmatch(text):
        raise ValueError(
            "an amount is a decimal string with at most 14 digits and 2 decimal places, "
            'e.g. "2800.00"'
        )
    return Decimal(text)


Amount = Annotated[
    Decimal,
    PlainValidator(_amount),
    PlainSerializer(str, return_type=str, when_used="json"),  # the text it was given
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN}),
]
"""A money amount: a finite, non-negative decimal of at most 14 digits, 2 after the point,
written as a JSON string (``"2800.00"``), never a float."""


def _no_repeats(value: object) -> object:
    if not isinstance(value, list | tuple | set | frozenset):
        # nothing else may reach the lax set parser below; pydantic wants ValueError
        raise ValueError("expected a list")  # noqa: TRY004
    if isinstance(value, list | tuple):
        # type with value: JSON's 1 and true are different items, as uniqueItems counts them
        try:
            distinct = {(type(item), item) for item in value}
        except TypeError:  # an unhashable item: the item validator refuses it by name
            return value
        if len(distinct) != len(value):
            raise ValueError("an item is listed twice; list each once")
    return value


class _NoRepeats(GroupedMetadata):
    """See :data:`NO_REPEATS`."""

    def __iter__(self) -> Iterator[Any]:
        # the before-validator hands Python values on, which strict mode would refuse as a set
        yield BeforeValidator(_no_repeats)
        yield Field(strict=False)


NO_REPEATS = _NoRepeats()
"""For a set written as a JSON array: the array may not list an item twice (the schema's
``uniqueItems``), rather than the set quietly keeping one. Put it after the field's ``Field``
constraints, so they stay the set's own (``minItems``, ``maxItems``) in the schema."""
