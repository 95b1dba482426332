"""The accord model: what a bilateral accord allows, flow by flow.

An accord is the machine-enforceable form of a signed agreement between the UK and a partner.
It opens *flows* (one direction, a set of message types); everything else is refused. Each
flow states its tier, purposes, ceilings, handling codes, what happens to each data category,
and the obligations the recipient accepts (onward sharing, retention). The model is strict and
frozen; :mod:`broker.policy.loader` reads it from YAML and adds the cross-field checks
(contradictions) with file positions.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_serializer,
)
from pydantic_core import PydanticCustomError

from broker.crypto import Suite
from broker.ids import AccordId, PartnerCode
from broker.schema.export import portable_patterns
from broker.schema.forms import DAY_PATTERN, NO_REPEATS, TIMESTAMP_PATTERN
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    MessageType,
    Purpose,
)

__all__ = [
    "PERSONAL_CATEGORIES",
    "Accord",
    "AccordTime",
    "CategoryRules",
    "Flow",
    "FlowHandling",
    "OnwardSharing",
    "RateLimit",
    "RateWindow",
    "Suite",
    "Tier",
    "accord_json_schema",
    "accord_time_text",
    "instant_of",
    "parse_accord_time",
]

#: every category except non-personal case facts is personal data (DPA 2018 Part 3)
PERSONAL_CATEGORIES = frozenset(DataCategory) - {DataCategory.OPERATIONAL}

_Partner = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
_RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")]
_RATE = re.compile(r"^([1-9][0-9]{0,6})/(hour|day)$")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# RFC 3339 date-time: the offset is captured separately so a missing one gets its own error.
_STAMP = re.compile(
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?)"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?$"
)


def parse_accord_time(value: object) -> dt.date:
    """``effective``/``expires`` as written: a ``YYYY-MM-DD`` date (midnight UTC), or an RFC 3339
    timestamp with an explicit offset, returned as an aware datetime in UTC.

    A timestamp without an offset is refused: an accord binds two states in different zones,
    so "18:00" alone names no instant. Errors are pydantic custom errors whose type starts with
    ``accord_time`` (the loader turns them into positioned messages).
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError("accord_time_offset", "timestamp without a UTC offset")
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise PydanticCustomError("accord_time_invalid", "not a valid timestamp") from None
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("accord_time_type", "expected a date or timestamp as text")
    if _DAY.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("accord_time_invalid", "not a calendar date") from None
    match = _STAMP.fullmatch(value)
    if match is None:
        raise PydanticCustomError("accord_time_invalid", "not a date or an RFC 3339 timestamp")
    if match.group(2) is None:
        raise PydanticCustomError("accord_time_offset", "timestamp without a UTC offset")
    try:
        stamp = dt.datetime.fromisoformat(match.group(1) + match.group(2).replace("Z", "+00:00"))
        return stamp.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # e.g. hour 25, or year 1 shifted out of range
        raise PydanticCustomError("accord_time_invalid", "not a valid timestamp") from None


def instant_of(value: dt.date) -> dt.datetime:
    """The instant an accord time names: a timestamp itself, a date at midnight UTC."""
    if isinstance(value, dt.datetime):  # before dt.date: a datetime is also a date
        return value.astimezone(dt.UTC)
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)


def accord_time_text(value: dt.date) -> str:
    """The canonical text of an accord time: ``2027-11-07`` or ``2027-11-07T18:00:00Z``.

    This is what co-signatures cover, so a date keeps exactly the form it always had, and a
    timestamp is always written in UTC with ``Z`` (two spellings of one instant sign alike).
    """
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    utc = value.astimezone(dt.UTC)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


#: a date (midnight UTC, as always) or an RFC 3339 timestamp with an offset (kept in UTC)
AccordTime = Annotated[
    dt.date,
    PlainValidator(parse_accord_time),
    PlainSerializer(accord_time_text, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", "pattern": DAY_PATTERN},
                {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN},
            ],
            "description": "YYYY-MM-DD (midnight UTC) or an RFC 3339 timestamp with its offset",
        }
    ),
]


# Two of the loader's contradiction checks, in the published schema's own terms (the others
# compare values across fields, which JSON Schema cannot: see tests/unit/schema/agreement.py).
_NOT_OPERATIONAL: dict[str, Any] = {"not": {"contains": {"const": DataCategory.OPERATIONAL.value}}}
_STRATEGIC_IS_NOT_PERSONAL: dict[str, Any] = {
    "if": {"properties": {"tier": {"const": "strategic"}}},
    "then": {
        "properties": {
            "categories": {
                "properties": {"allow": {"items": {"const": DataCategory.OPERATIONAL.value}}}
            }
        }
    },
}


class _Strict(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        str_max_length=4096,
        populate_by_name=False,
    )


class Tier(enum.StrEnum):
    """Europol-style agreement tiers: strategic flows carry no personal data at all."""

    STRATEGIC = "strategic"
    OPERATIONAL = "operational"


class OnwardSharing(enum.StrEnum):
    """What the recipient may pass on (DPA 2018 s.78: onward transfers need authorisation)."""

    NEVER = "never"
    WITH_ORIGINATOR_CONSENT = "with-originator-consent"
    WITHIN_RECIPIENT_AUTHORITIES = "within-recipient-authorities"

    @property
    def strictness(self) -> int:
        """Higher is stricter; obligations combine by taking the strictest."""
        return _STRICTNESS[self]

    @property
    def wording(self) -> str:
        """The condition in words an operator reads in an explanation."""
        return {
            "never": "no onward sharing at all",
            "with-originator-consent": "onward sharing only with the originator's written consent",
            "within-recipient-authorities": (
                "may be shared with other law-enforcement authorities of the recipient state, "
                "never with a third country"
            ),
        }[self.value]


_STRICTNESS = {
    OnwardSharing.NEVER: 2,
    OnwardSharing.WITH_ORIGINATOR_CONSENT: 1,
    OnwardSharing.WITHIN_RECIPIENT_AUTHORITIES: 0,
}


class RateWindow(enum.StrEnum):
    """The window a rate limit counts over."""

    HOUR = "hour"
    DAY = "day"


class RateLimit(BaseModel):
    """``count`` messages per ``window`` on one flow (parsed from ``2000/hour``)."""

    model_config = ConfigDict(frozen=True)

    count: int
    window: RateWindow

    def __str__(self) -> str:
        return f"{self.count}/{self.window}"


class CategoryRules(_Strict):
    """What happens to each data category on a flow; any category not listed is refused."""

    allow: Annotated[frozenset[DataCategory], Field(max_length=32), NO_REPEATS] = frozenset()
    redact: Annotated[
        frozenset[DataCategory],
        Field(max_length=32, json_schema_extra=_NOT_OPERATIONAL),
        NO_REPEATS,
    ] = frozenset()
    deny: Annotated[frozenset[DataCategory], Field(max_length=32), NO_REPEATS] = frozenset()

    @field_serializer("allow", "redact", "deny")
    def _sorted(self, values: frozenset[DataCategory]) -> list[str]:
        # Sets iterate in hash order; co-signed accord bytes need one stable order.
        return sorted(str(v) for v in values)

    def rule_for(self, category: DataCategory) -> str:
        """``deny``, ``redact``, ``allow`` or ``unlisted`` (deny wins if listed twice)."""
        return self.by_category[category]

    @functools.cached_property
    def by_category(self) -> Mapping[DataCategory, str]:
        """Every category's rule, computed once (the gateway looks these up per message)."""
        table = {}
        for category in DataCategory:
            table[category] = "unlisted"
            for name, members in (
                ("deny", self.deny),
                ("redact", self.redact),
                ("allow", self.allow),
            ):
                if category in members:
                    table[category] = name
                    break
        return MappingProxyType(table)


class FlowHandling(_Strict):
    """The recipient's obligations for everything that crosses the flow."""

    onward_sharing: OnwardSharing
    retention_days: Annotated[int, Field(ge=1, le=3650)]


class Flow(_Strict):
    """One direction of exchange for a set of message types, with its ceilings and obligations."""

    model_config = ConfigDict(json_schema_extra=_STRATEGIC_IS_NOT_PERSONAL)

    id: _RuleId
    sender: _Partner = Field(alias="from")
    recipient: _Partner = Field(alias="to")
    tier: Tier
    types: Annotated[frozenset[MessageType], Field(min_length=1, max_length=16), NO_REPEATS]
    purposes: Annotated[frozenset[Purpose], Field(min_length=1, max_length=16), NO_REPEATS]
    max_classification: Classification
    max_tlp: TLP
    handling_codes: Annotated[
        frozenset[HandlingCode], Field(min_length=1, max_length=4), NO_REPEATS
    ]
    categories: CategoryRules
    handling: FlowHandling
    rate_limit: Annotated[str, Field(pattern=_RATE.pattern)] | None = None

    @field_serializer("types", "purposes", "handling_codes")
    def _sorted(self, values: frozenset[enum.StrEnum]) -> list[str]:
        # Sets iterate in hash order; co-signed accord bytes need one stable order.
        return sorted(str(v) for v in values)

    @functools.cached_property
    def direction(self) -> str:
        """``GB -> RS``."""
        return f"{self.sender} -> {self.recipient}"

    @functools.cached_property
    def allow_wording(self) -> Mapping[tuple[MessageType, OnwardSharing], tuple[str, str]]:
        """The two sentences of an allow decision, per message type and onward-sharing rule.

        Written once per flow: the gateway's allow path then formats nothing per message.
        """
        return MappingProxyType(
            {
                (message_type, onward): (
                    f"{message_type} from {self.direction} is allowed by {self.id} "
                    f"({self.tier} tier)",
                    f"recipient obligations: keep at most {self.handling.retention_days} days; "
                    f"{onward.wording}",
                )
                for message_type in self.types
                for onward in OnwardSharing
            }
        )

    @functools.cached_property
    def rate(self) -> RateLimit | None:
        """The parsed rate limit, or None when the flow has none."""
        if self.rate_limit is None:
            return None
        match = _RATE.fullmatch(self.rate_limit)
        if match is None:  # the field pattern makes this unreachable; fail closed regardless
            raise ValueError(f"bad rate limit {self.rate_limit!r}")
        return RateLimit(count=int(match.group(1)), window=RateWindow(match.group(2)))


class Accord(_Strict):
    """One bilateral accord, one version: the parsed, trusted form of ``policies/<id>.yaml``."""

    accord: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    version: Annotated[int, Field(ge=1)]
    parties: Annotated[
        tuple[_Partner, ...],
        Field(min_length=2, max_length=8, json_schema_extra={"uniqueItems": True}),
    ]
    effective: AccordTime
    expires: AccordTime
    suite: Suite
    flows: Annotated[tuple[Flow, ...], Field(min_length=1, max_length=64)]

    @property
    def accord_id(self) -> AccordId:
        """The accord's id as a typed identifier."""
        return AccordId(self.accord)

    @property
    def party_codes(self) -> frozenset[PartnerCode]:
        """The parties as typed partner codes."""
        return frozenset(PartnerCode(p) for p in self.parties)

    @functools.cached_property
    def routes(self) -> Mapping[tuple[str, str, MessageType], Flow]:
        """The flow for each (sender, recipient, message type); the loader makes it unique."""
        return MappingProxyType(
            {(f.sender, f.recipient, t): f for f in self.flows for t in f.types}
        )

    @functools.cached_property
    def directions(self) -> frozenset[tuple[str, str]]:
        """The (sender, recipient) pairs some flow opens."""
        return frozenset((f.sender, f.recipient) for f in self.flows)

    @functools.cached_property
    def in_force(self) -> tuple[dt.datetime, dt.datetime]:
        """``(effective_from(), expires_at())``, computed once."""
        return self.effective_from(), self.expires_at()

    def effective_from(self) -> dt.datetime:
        """The first instant the accord applies (``effective``; a date means midnight UTC)."""
        return instant_of(self.effective)

    def expires_at(self) -> dt.datetime:
        """The first instant the accord no longer applies (``expires``; a date means midnight
        UTC)."""
        return instant_of(self.expires)

    @property
    def effective_text(self) -> str:
        """``effective`` as written canonically (``2025-06-01`` or ``2025-06-01T09:00:00Z``)."""
        return accord_time_text(self.effective)

    @property
    def expires_text(self) -> str:
        """``expires`` as written canonically (``2028-06-01`` or ``2027-11-07T18:00:00Z``)."""
        return accord_time_text(self.expires)

    @property
    def expires_when(self) -> str:
        """``on 2028-06-01`` for a date, ``at 2027-11-07T18:00:00Z`` for a timestamp."""
        return f"{'at' if isinstance(self.expires, dt.datetime) else 'on'} {self.expires_text}"


def accord_json_schema() -> dict[str, Any]:
    """The JSON Schema published as ``schemas/accord.schema.json`` (field names as in YAML)."""
    schema = portable_patterns(Accord.model_json_schema(by_alias=True, mode="validation"))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://broker.invalid/schemas/accord.schema.json"
    return schema
