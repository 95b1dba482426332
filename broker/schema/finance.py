"""``document.fraud`` and ``financial.flow``: the documents and the money behind a crossing."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from broker.schema.fields import (
    BIOMETRIC,
    FINANCIAL,
    IDENTITY,
    OPERATIONAL,
    TRAVEL_DOCUMENT,
    CountryCode,
    Line,
    Money,
    Place,
    Record,
    Reference,
    Text,
)
from broker.schema.forms import Day, Timestamp
from broker.schema.network import FinancialAccount, PaymentMethod
from broker.schema.people import BiometricReference, DocumentKind, PersonDetails

__all__ = [
    "DocumentFraud",
    "FinancialFlow",
    "FlowTypology",
    "FraudType",
    "Party",
    "PartyRole",
    "Transfer",
]


class FraudType(enum.StrEnum):
    """The Frontex/EU document-fraud categories."""

    COUNTERFEIT = "counterfeit"
    FORGED = "forged"
    FRAUDULENTLY_OBTAINED_GENUINE = "fraudulently-obtained-genuine"
    IMPOSTOR = "impostor"
    STOLEN_BLANK = "stolen-blank"
    PSEUDO_DOCUMENT = "pseudo-document"


class DocumentFraud(Record):
    """A fraudulent document detected at a border or inland check."""

    detected_at: Annotated[Timestamp, OPERATIONAL]
    detected_place: Annotated[Place, OPERATIONAL]
    document_kind: Annotated[DocumentKind, OPERATIONAL]
    claimed_issuing_country: Annotated[CountryCode, OPERATIONAL]
    fraud_type: Annotated[FraudType, OPERATIONAL]
    features_defeated: Annotated[tuple[Line, ...], OPERATIONAL, Field(max_length=20)] = ()
    document_number: Annotated[Reference | None, TRAVEL_DOCUMENT] = None
    document_expires: Annotated[Day | None, TRAVEL_DOCUMENT] = None
    holder: Annotated[PersonDetails | None, IDENTITY] = None
    holder_biometrics: Annotated[
        tuple[BiometricReference, ...], BIOMETRIC, Field(max_length=10)
    ] = ()
    price_paid: Annotated[Money | None, OPERATIONAL] = None
    supplier_indicators: Annotated[Text | None, OPERATIONAL] = None


class PartyRole(enum.StrEnum):
    """A party's part in a money flow."""

    PAYER = "payer"
    SMUGGLER = "smuggler"
    HAWALADAR = "hawaladar"
    MONEY_MULE = "money-mule"
    FRONT_COMPANY = "front-company"
    BENEFICIARY = "beneficiary"


class Party(Record):
    """One end of a transfer: the role is operational, who and which account are not."""

    role: Annotated[PartyRole, OPERATIONAL]
    country: Annotated[CountryCode | None, OPERATIONAL] = None
    name: Annotated[Line | None, IDENTITY] = None
    account: Annotated[FinancialAccount | None, FINANCIAL] = None


class Transfer(Record):
    """One movement of money."""

    on: Annotated[Day, OPERATIONAL]
    method: Annotated[PaymentMethod, OPERATIONAL]
    payer: Annotated[Party, OPERATIONAL]
    payee: Annotated[Party, OPERATIONAL]
    amount: Annotated[Money | None, FINANCIAL] = None
    reference: Annotated[Reference | None, FINANCIAL] = None


class FlowTypology(enum.StrEnum):
    """Money-laundering typologies seen in smuggling finance."""

    HAWALA_SETTLEMENT = "hawala-settlement"
    CASH_COURIERS = "cash-couriers"
    MONEY_MULE_ACCOUNTS = "money-mule-accounts"
    STRUCTURING = "structuring"
    TRADE_BASED = "trade-based"
    CRYPTOASSET_CONVERSION = "cryptoasset-conversion"


class FinancialFlow(Record):
    """Payments for smuggling services and how they are laundered."""

    summary: Annotated[Text, OPERATIONAL]
    typologies: Annotated[tuple[FlowTypology, ...], OPERATIONAL, Field(max_length=6)] = ()
    period_start: Annotated[Day | None, OPERATIONAL] = None
    period_end: Annotated[Day | None, OPERATIONAL] = None
    transfers: Annotated[tuple[Transfer, ...], OPERATIONAL, Field(min_length=1, max_length=500)]
    total: Annotated[Money | None, FINANCIAL] = None
