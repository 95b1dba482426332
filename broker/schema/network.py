"""``network.report`` and ``person.alert``: the people behind a smuggling operation."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from broker.schema.fields import (
    BIOMETRIC,
    COMMUNICATIONS,
    FINANCIAL,
    HEALTH,
    IDENTITY,
    LOCATION,
    OPERATIONAL,
    SOURCE_IDENTIFYING,
    TRAVEL_DOCUMENT,
    VEHICLE,
    CommsIdentifier,
    CountryCode,
    Line,
    Money,
    Place,
    Record,
    Reference,
    Text,
)
from broker.schema.forms import Day, Timestamp
from broker.schema.people import BiometricReference, PersonDetails, TravelDocument, Vehicle

__all__ = [
    "AlertReason",
    "FinancialAccount",
    "Hub",
    "HubFunction",
    "MemberStatus",
    "NetworkFinance",
    "NetworkMember",
    "NetworkReport",
    "NetworkRole",
    "NetworkService",
    "PaymentMethod",
    "PersonAlert",
    "RequestedAction",
    "SubjectRisk",
]


class NetworkRole(enum.StrEnum):
    """Roles investigators distinguish in a smuggling network."""

    ORGANISER = "organiser"
    RECRUITER = "recruiter"
    COORDINATOR = "coordinator"
    DRIVER = "driver"
    GUIDE = "guide"
    BOAT_PILOT = "boat-pilot"
    SAFE_HOUSE_KEEPER = "safe-house-keeper"
    DOCUMENT_SUPPLIER = "document-supplier"
    EQUIPMENT_SUPPLIER = "equipment-supplier"
    MONEY_HANDLER = "money-handler"
    LOOKOUT = "lookout"
    ENFORCER = "enforcer"


class MemberStatus(enum.StrEnum):
    """Where the member stands with the authorities."""

    AT_LARGE = "at-large"
    WANTED = "wanted"
    DETAINED = "detained"
    CONVICTED = "convicted"
    UNKNOWN = "unknown"


class NetworkService(enum.StrEnum):
    """What the network sells to the people it moves."""

    RECRUITMENT = "recruitment"
    OVERLAND_TRANSPORT = "overland-transport"
    GUIDED_BORDER_CROSSING = "guided-border-crossing"
    CONCEALMENT_IN_VEHICLES = "concealment-in-vehicles"
    ACCOMMODATION = "accommodation"
    FALSE_DOCUMENTS = "false-documents"
    BOAT_CROSSING = "boat-crossing"
    BOAT_AND_ENGINE_SUPPLY = "boat-and-engine-supply"
    PAYMENT_GUARANTEE = "payment-guarantee"


class HubFunction(enum.StrEnum):
    """What happens at a hub."""

    STAGING = "staging"
    SAFE_HOUSE = "safe-house"
    BORDER_CROSSING = "border-crossing"
    EQUIPMENT_STORAGE = "equipment-storage"
    EMBARKATION = "embarkation"
    MONEY_OFFICE = "money-office"


class PaymentMethod(enum.StrEnum):
    """How people pay their smugglers."""

    CASH = "cash"
    HAWALA = "hawala"
    MONEY_TRANSFER_OPERATOR = "money-transfer-operator"
    BANK_TRANSFER = "bank-transfer"
    CRYPTOASSET = "cryptoasset"
    GUARANTOR = "guarantor"


class NetworkMember(Record):
    """One member; ``ref`` (e.g. ``M1``) links the member to hubs within this report."""

    ref: Annotated[Reference, OPERATIONAL]
    roles: Annotated[tuple[NetworkRole, ...], OPERATIONAL, Field(min_length=1, max_length=8)]
    status: Annotated[MemberStatus, OPERATIONAL] = MemberStatus.UNKNOWN
    person: Annotated[PersonDetails | None, IDENTITY] = None
    based_in: Annotated[Place | None, LOCATION] = None
    comms: Annotated[tuple[CommsIdentifier, ...], COMMUNICATIONS, Field(max_length=20)] = ()
    vehicles: Annotated[tuple[Vehicle, ...], VEHICLE, Field(max_length=10)] = ()
    documents: Annotated[tuple[TravelDocument, ...], TRAVEL_DOCUMENT, Field(max_length=10)] = ()
    biometrics: Annotated[tuple[BiometricReference, ...], BIOMETRIC, Field(max_length=10)] = ()


class Hub(Record):
    """A place the network uses; the country is operational, the exact place is not."""

    ref: Annotated[Reference, OPERATIONAL]
    function: Annotated[HubFunction, OPERATIONAL]
    country: Annotated[CountryCode, OPERATIONAL]
    place: Annotated[Place | None, LOCATION] = None
    member_refs: Annotated[tuple[Reference, ...], OPERATIONAL, Field(max_length=50)] = ()


class FinancialAccount(Record):
    """An account, wallet or money-transfer reference; held only in FINANCIAL fields."""

    method: Annotated[PaymentMethod, OPERATIONAL]
    identifier: Annotated[Line, OPERATIONAL]
    institution: Annotated[Line | None, OPERATIONAL] = None
    country: Annotated[CountryCode | None, OPERATIONAL] = None
    holder_ref: Annotated[Reference | None, OPERATIONAL] = None


class NetworkFinance(Record):
    """What the network charges and how the money moves."""

    price_per_person: Annotated[Money | None, OPERATIONAL] = None
    payment_methods: Annotated[tuple[PaymentMethod, ...], OPERATIONAL, Field(max_length=6)] = ()
    accounts: Annotated[tuple[FinancialAccount, ...], FINANCIAL, Field(max_length=50)] = ()


class NetworkReport(Record):
    """A smuggling network: members and roles, hubs, communications, finance."""

    summary: Annotated[Text, OPERATIONAL]
    operation_name: Annotated[Line | None, OPERATIONAL] = None
    active_since: Annotated[Day | None, OPERATIONAL] = None
    services: Annotated[tuple[NetworkService, ...], OPERATIONAL, Field(max_length=9)] = ()
    transit_countries: Annotated[tuple[CountryCode, ...], OPERATIONAL, Field(max_length=20)] = ()
    persons_moved_per_month: Annotated[int | None, OPERATIONAL, Field(ge=0, le=100_000)] = None
    members: Annotated[tuple[NetworkMember, ...], OPERATIONAL, Field(max_length=200)] = ()
    hubs: Annotated[tuple[Hub, ...], OPERATIONAL, Field(max_length=100)] = ()
    finance: Annotated[NetworkFinance | None, OPERATIONAL] = None
    source_reference: Annotated[Reference | None, SOURCE_IDENTIFYING] = None
    source_access: Annotated[Line | None, SOURCE_IDENTIFYING] = None


class AlertReason(enum.StrEnum):
    """Why a person is the subject of an alert."""

    WANTED_FOR_ARREST = "wanted-for-arrest"
    SUSPECTED_FACILITATOR = "suspected-facilitator"
    MISSING_VULNERABLE_PERSON = "missing-vulnerable-person"
    POTENTIAL_TRAFFICKING_VICTIM = "potential-trafficking-victim"
    DOCUMENT_MISUSE = "document-misuse"


class RequestedAction(enum.StrEnum):
    """What the originator asks the recipient to do on a match."""

    REPORT_SIGHTING = "report-sighting"
    LOCATE_AND_REPORT = "locate-and-report"
    DETAIN = "detain"
    SAFEGUARD = "safeguard"
    DO_NOT_APPROACH = "do-not-approach"


class SubjectRisk(enum.StrEnum):
    """Warnings for officers who encounter the subject."""

    VIOLENT = "violent"
    WEAPONS = "weapons"
    ESCAPE_RISK = "escape-risk"
    SELF_HARM = "self-harm"


class PersonAlert(Record):
    """An alert on one person: a facilitator to find, or a vulnerable person to protect."""

    reason: Annotated[AlertReason, OPERATIONAL]
    requested_action: Annotated[RequestedAction, OPERATIONAL]
    summary: Annotated[Text, OPERATIONAL]
    subject: Annotated[PersonDetails | None, IDENTITY] = None
    warrant_reference: Annotated[Reference | None, OPERATIONAL] = None
    risks: Annotated[tuple[SubjectRisk, ...], OPERATIONAL, Field(max_length=4)] = ()
    last_seen_at: Annotated[Timestamp | None, OPERATIONAL] = None
    last_seen_place: Annotated[Place | None, LOCATION] = None
    comms: Annotated[tuple[CommsIdentifier, ...], COMMUNICATIONS, Field(max_length=20)] = ()
    documents: Annotated[tuple[TravelDocument, ...], TRAVEL_DOCUMENT, Field(max_length=10)] = ()
    biometrics: Annotated[tuple[BiometricReference, ...], BIOMETRIC, Field(max_length=10)] = ()
    vehicles: Annotated[tuple[Vehicle, ...], VEHICLE, Field(max_length=10)] = ()
    medical_needs: Annotated[Line | None, HEALTH] = None
    valid_until: Annotated[Timestamp | None, OPERATIONAL] = None
