"""Building blocks of message bodies: the data-category marker, bounded strings, shared parts.

Every field of a body model declares exactly one :class:`DataCategory`, once, in its type::

    name: Annotated[PersonName | None, IDENTITY] = None

That declaration is the only place a category is written down. Labelling, redaction and the
exported JSON Schema (``x-data-category``) all read it mechanically, so a new field cannot be
forgotten by the redaction code. :class:`Record` checks the rules when a model class is defined:
one category per field, and every field that is not operational can be emptied (it defaults to
``None`` or ``()``), because redaction must be able to remove it.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Any

from pydantic import Field, GetJsonSchemaHandler, StringConstraints
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from broker.schema._base import StrictModel
from broker.schema.forms import Amount, Day
from broker.schema.labels import DataCategory

__all__ = [
    "BIOMETRIC",
    "COMMUNICATIONS",
    "FINANCIAL",
    "HEALTH",
    "IDENTITY",
    "LOCATION",
    "OPERATIONAL",
    "SOURCE_IDENTIFYING",
    "TRAVEL_DOCUMENT",
    "VEHICLE",
    "Category",
    "CommsIdentifier",
    "CommsKind",
    "CountryCode",
    "GeoPoint",
    "Line",
    "Money",
    "PersonName",
    "Place",
    "Record",
    "Reference",
    "Text",
    "category_of",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Category:
    """Annotation metadata: the one data category of a model field."""

    category: DataCategory

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["x-data-category"] = self.category.value
        return schema


OPERATIONAL = Category(DataCategory.OPERATIONAL)
IDENTITY = Category(DataCategory.IDENTITY)
BIOMETRIC = Category(DataCategory.BIOMETRIC)
LOCATION = Category(DataCategory.LOCATION)
COMMUNICATIONS = Category(DataCategory.COMMUNICATIONS)
FINANCIAL = Category(DataCategory.FINANCIAL)
VEHICLE = Category(DataCategory.VEHICLE)
SOURCE_IDENTIFYING = Category(DataCategory.SOURCE_IDENTIFYING)
HEALTH = Category(DataCategory.HEALTH)
TRAVEL_DOCUMENT = Category(DataCategory.TRAVEL_DOCUMENT)


def category_of(info: FieldInfo) -> DataCategory:
    """The category a field declares; ``TypeError`` unless it declares exactly one."""
    found = [m.category for m in info.metadata if isinstance(m, Category)]
    if len(found) != 1:
        raise TypeError(f"a body field declares exactly one data category, found {len(found)}")
    return found[0]


class Record(StrictModel):
    """Base of every body model and body part: checks the category rules at class definition."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            try:
                category = category_of(info)
            except TypeError as exc:
                raise TypeError(f"{cls.__name__}.{name}: {exc}") from None
            if category is DataCategory.OPERATIONAL:
                continue
            default = info.get_default(call_default_factory=True)
            if info.is_required() or default not in (None, ()):
                raise TypeError(
                    f"{cls.__name__}.{name}: a {category} field must default to None or () "
                    "so that redaction can remove it"
                )

    def carried_categories(self) -> frozenset[DataCategory]:
        """Categories this record holds in a form its fields do not type (another partner's
        signed content, carried whole); none for an ordinary record."""
        return frozenset()


# Bounded strings. Lengths are generous for real content and small enough that no single
# field can carry a bulk payload.
Line = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=False)]
"""One line of text: a role, a place name, a model of engine."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
"""A paragraph: an analyst's summary or assessment."""

PersonName = Annotated[str, StringConstraints(min_length=1, max_length=120)]
"""A name as written in the source, in any script."""

Reference = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,79}$")]
"""An identifier from a partner's own system: a file number, a register entry."""

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
"""ISO 3166-1 alpha-2, plus XK for Kosovo as used by the EU and Europol."""

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class GeoPoint(Record):
    """A WGS84 position; the field that holds it says whether it is personal."""

    lat: Annotated[float, OPERATIONAL, Field(ge=-90, le=90)]
    lon: Annotated[float, OPERATIONAL, Field(ge=-180, le=180)]


class Place(Record):
    """A named place; the field that holds it says whether it is personal (LOCATION) or not."""

    name: Annotated[Line, OPERATIONAL]
    country: Annotated[CountryCode, OPERATIONAL]
    point: Annotated[GeoPoint | None, OPERATIONAL] = None


class Money(Record):
    """An amount in an ISO 4217 currency, as reported (no conversion)."""

    amount: Annotated[Amount, OPERATIONAL]
    currency: Annotated[CurrencyCode, OPERATIONAL]


class CommsKind(enum.StrEnum):
    """Kinds of communications identifier seen in smuggling investigations."""

    PHONE = "phone"
    IMEI = "imei"
    IMSI = "imsi"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    SIGNAL = "signal"
    VIBER = "viber"
    EMAIL = "email"
    SOCIAL_MEDIA = "social-media"


class CommsIdentifier(Record):
    """A phone number, handle or device identifier; held only in COMMUNICATIONS fields."""

    kind: Annotated[CommsKind, OPERATIONAL]
    value: Annotated[Line, OPERATIONAL]
    first_seen: Annotated[Day | None, OPERATIONAL] = None
