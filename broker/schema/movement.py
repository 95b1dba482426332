"""``vessel.sighting`` and ``route.assessment``: how people are moved."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from broker.schema.fields import (
    HEALTH,
    OPERATIONAL,
    SOURCE_IDENTIFYING,
    VEHICLE,
    CountryCode,
    GeoPoint,
    Line,
    Money,
    Place,
    Record,
    Reference,
    Text,
)
from broker.schema.forms import Day, Timestamp

__all__ = [
    "BoatType",
    "Engine",
    "ObservedBy",
    "RouteAssessment",
    "RouteLeg",
    "SightingOutcome",
    "TransportMode",
    "Trend",
    "Vessel",
    "VesselSighting",
]


class BoatType(enum.StrEnum):
    """Craft used for irregular crossings."""

    INFLATABLE_DINGHY = "inflatable-dinghy"
    RIGID_HULL_INFLATABLE = "rigid-hull-inflatable"
    SMALL_FISHING_BOAT = "small-fishing-boat"
    SAILING_YACHT = "sailing-yacht"
    KAYAK = "kayak"
    OTHER = "other"


class Engine(Record):
    """An outboard engine: the serial number is traceable to a buyer, so it is VEHICLE data."""

    make: Annotated[Line | None, OPERATIONAL] = None
    horsepower: Annotated[int | None, OPERATIONAL, Field(ge=1, le=1000)] = None
    serial_number: Annotated[Line | None, VEHICLE] = None


class Vessel(Record):
    """The craft as observed."""

    boat_type: Annotated[BoatType, OPERATIONAL]
    length_m: Annotated[float | None, OPERATIONAL, Field(gt=0, le=100)] = None
    colour: Annotated[Line | None, OPERATIONAL] = None
    engines: Annotated[tuple[Engine, ...], OPERATIONAL, Field(max_length=4)] = ()
    hull_markings: Annotated[Line | None, VEHICLE] = None


class ObservedBy(enum.StrEnum):
    """Who or what saw the craft."""

    COASTGUARD_VESSEL = "coastguard-vessel"
    AERIAL_PATROL = "aerial-patrol"
    SHORE_PATROL = "shore-patrol"
    COASTAL_RADAR = "coastal-radar"
    CIVILIAN_REPORT = "civilian-report"


class SightingOutcome(enum.StrEnum):
    """What became of the crossing, as far as known at the time of the report."""

    UNDER_WAY = "under-way"
    INTERCEPTED_AT_SEA = "intercepted-at-sea"
    RESCUED = "rescued"
    RETURNED_TO_SHORE = "returned-to-shore"
    ARRIVED = "arrived"
    UNKNOWN = "unknown"


class VesselSighting(Record):
    """A small boat seen at sea or on launch: craft, engine, launch point, time, people aboard."""

    observed_at: Annotated[Timestamp, OPERATIONAL]
    observed_by: Annotated[ObservedBy, OPERATIONAL]
    position: Annotated[GeoPoint, OPERATIONAL]
    sea_area: Annotated[Line | None, OPERATIONAL] = None
    vessel: Annotated[Vessel, OPERATIONAL]
    launch_point: Annotated[Place | None, OPERATIONAL] = None
    launched_at: Annotated[Timestamp | None, OPERATIONAL] = None
    heading_deg: Annotated[int | None, OPERATIONAL, Field(ge=0, le=359)] = None
    speed_knots: Annotated[float | None, OPERATIONAL, Field(ge=0, le=60)] = None
    persons_aboard: Annotated[int | None, OPERATIONAL, Field(ge=0, le=500)] = None
    children_aboard: Annotated[int | None, OPERATIONAL, Field(ge=0, le=500)] = None
    outcome: Annotated[SightingOutcome, OPERATIONAL] = SightingOutcome.UNKNOWN
    medical_notes: Annotated[Line | None, HEALTH] = None
    remarks: Annotated[Text | None, OPERATIONAL] = None


class TransportMode(enum.StrEnum):
    """How a leg is travelled."""

    ON_FOOT = "on-foot"
    CAR = "car"
    VAN = "van"
    LORRY = "lorry"
    BUS = "bus"
    TRAIN = "train"
    TAXI = "taxi"
    BOAT = "boat"
    AIR = "air"


class RouteLeg(Record):
    """One stage of a route, between two places, at a typical price."""

    origin: Annotated[Place, OPERATIONAL]
    destination: Annotated[Place, OPERATIONAL]
    modes: Annotated[tuple[TransportMode, ...], OPERATIONAL, Field(min_length=1, max_length=4)]
    border_crossing: Annotated[Line | None, OPERATIONAL] = None
    facilitated: Annotated[bool, OPERATIONAL] = True
    typical_days: Annotated[int | None, OPERATIONAL, Field(ge=0, le=365)] = None
    price: Annotated[Money | None, OPERATIONAL] = None


class Trend(enum.StrEnum):
    """Direction of use of a route over the assessed period."""

    RISING = "rising"
    STABLE = "stable"
    FALLING = "falling"
    UNKNOWN = "unknown"


class RouteAssessment(Record):
    """An assessed route: legs, transit countries, prices, volume and trend over a period."""

    route_name: Annotated[Line, OPERATIONAL]
    period_start: Annotated[Day, OPERATIONAL]
    period_end: Annotated[Day, OPERATIONAL]
    transit_countries: Annotated[
        tuple[CountryCode, ...], OPERATIONAL, Field(min_length=1, max_length=20)
    ]
    legs: Annotated[tuple[RouteLeg, ...], OPERATIONAL, Field(min_length=1, max_length=30)]
    total_price_low: Annotated[Money | None, OPERATIONAL] = None
    total_price_high: Annotated[Money | None, OPERATIONAL] = None
    persons_per_month: Annotated[int | None, OPERATIONAL, Field(ge=0, le=1_000_000)] = None
    trend: Annotated[Trend, OPERATIONAL] = Trend.UNKNOWN
    assessment: Annotated[Text, OPERATIONAL]
    source_reference: Annotated[Reference | None, SOURCE_IDENTIFYING] = None
