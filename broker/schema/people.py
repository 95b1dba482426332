"""Parts describing people, documents and vehicles, shared by the intelligence bodies.

Each field declares its own category, so a redacted copy can keep a network member's role and
drop the name, or keep the name and drop the phone numbers, as the accord requires.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from broker.schema.fields import (
    IDENTITY,
    OPERATIONAL,
    CountryCode,
    Line,
    PersonName,
    Record,
    Reference,
)
from broker.schema.forms import Day

__all__ = [
    "BiometricKind",
    "BiometricReference",
    "DocumentKind",
    "PersonDetails",
    "Sex",
    "TravelDocument",
    "Vehicle",
    "VehicleKind",
]


class Sex(enum.StrEnum):
    """As recorded on the person's documents (ICAO 9303)."""

    FEMALE = "F"
    MALE = "M"
    UNSPECIFIED = "X"


class PersonDetails(Record):
    """Who a person is, as far as the originator knows; every field personal and optional."""

    family_name: Annotated[PersonName | None, IDENTITY] = None
    given_names: Annotated[PersonName | None, IDENTITY] = None
    aliases: Annotated[tuple[PersonName, ...], IDENTITY, Field(max_length=20)] = ()
    date_of_birth: Annotated[Day | None, IDENTITY] = None
    place_of_birth: Annotated[Line | None, IDENTITY] = None
    sex: Annotated[Sex | None, IDENTITY] = None
    nationalities: Annotated[tuple[CountryCode, ...], IDENTITY, Field(max_length=4)] = ()


class DocumentKind(enum.StrEnum):
    """Kinds of identity and travel document."""

    PASSPORT = "passport"
    IDENTITY_CARD = "identity-card"
    RESIDENCE_PERMIT = "residence-permit"
    VISA = "visa"
    REFUGEE_TRAVEL_DOCUMENT = "refugee-travel-document"
    DRIVING_LICENCE = "driving-licence"


class TravelDocument(Record):
    """A document a person holds or used; held only in TRAVEL_DOCUMENT fields."""

    kind: Annotated[DocumentKind, OPERATIONAL]
    issuing_country: Annotated[CountryCode, OPERATIONAL]
    number: Annotated[Reference, OPERATIONAL]
    expires: Annotated[Day | None, OPERATIONAL] = None


class BiometricKind(enum.StrEnum):
    """Biometrics are never carried inline, only as references to the originator's holdings."""

    FACIAL_IMAGE = "facial-image"
    FINGERPRINTS = "fingerprints"
    DNA_PROFILE = "dna-profile"


class BiometricReference(Record):
    """A pointer to a biometric record the originator can disclose on a hit (Prüm style)."""

    kind: Annotated[BiometricKind, OPERATIONAL]
    reference: Annotated[Reference, OPERATIONAL]


class VehicleKind(enum.StrEnum):
    """Vehicles used along the route."""

    CAR = "car"
    VAN = "van"
    LORRY = "lorry"
    MINIBUS = "minibus"
    TRAILER = "trailer"


class Vehicle(Record):
    """A road vehicle; held only in VEHICLE fields."""

    kind: Annotated[VehicleKind, OPERATIONAL]
    registration: Annotated[Line, OPERATIONAL]
    registration_country: Annotated[CountryCode, OPERATIONAL]
    make_model: Annotated[Line | None, OPERATIONAL] = None
    colour: Annotated[Line | None, OPERATIONAL] = None
