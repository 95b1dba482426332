"""The message document: typed law-enforcement metadata around one type-specific body.

One model per message type (``NetworkReportMessage``, ...) all derive from :class:`Message`;
``MESSAGE_MODELS`` maps each ``(type, schema_version)`` to its model, and :func:`parse_message`
picks the model from the document's ``type`` and ``schema_version`` before validating it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import ConfigDict, Field, StringConstraints, field_serializer, model_validator

from broker.schema._base import StrictModel
from broker.schema.evaluation import Evaluation
from broker.schema.fields import Record
from broker.schema.finance import DocumentFraud, FinancialFlow
from broker.schema.forms import NO_REPEATS, Timestamp
from broker.schema.handling import HandlingCondition
from broker.schema.labels import TLP, Classification, HandlingCode, MessageType, Purpose
from broker.schema.movement import RouteAssessment, VesselSighting
from broker.schema.network import NetworkReport, PersonAlert
from broker.schema.protocol import (
    OnwardForward,
    OnwardGrant,
    OnwardRequest,
    Receipt,
    ReceiptBatch,
    Withdrawal,
)

__all__ = [
    "MESSAGE_MODELS",
    "CaseIdText",
    "DocumentFraudMessage",
    "FieldPathText",
    "FinancialFlowMessage",
    "Message",
    "NetworkReportMessage",
    "OnwardForwardMessage",
    "OnwardGrantMessage",
    "OnwardRequestMessage",
    "PersonAlertMessage",
    "ReceiptBatchMessage",
    "ReceiptMessage",
    "RouteAssessmentMessage",
    "VesselSightingMessage",
    "WithdrawalMessage",
]

CaseIdText = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{2}-[A-Z0-9]{2,10}(-[A-Z0-9]{1,12}){1,4}$")
]
"""A case id: issuing partner, agency, then parts, e.g. ``GB-NCA-2026-0417``."""

FieldPathText = Annotated[str, StringConstraints(min_length=5, max_length=200)]


# What _consistent() checks of handling, in the published schema's own terms.
_HANDLING_CONDITIONS_RULE: dict[str, Any] = {
    "if": {"properties": {"handling": {"const": HandlingCode.H3.value}}},
    "then": {
        "required": ["handling_conditions"],
        "properties": {"handling_conditions": {"minItems": 1}},
    },
    "else": {"properties": {"handling_conditions": {"maxItems": 0}}},
}


class Message(StrictModel):
    """One message: metadata the gateway decides on, and the body only recipients see.

    Construct a concrete subclass, or use :func:`broker.schema.parse_message`.
    """

    model_config = ConfigDict(json_schema_extra=_HANDLING_CONDITIONS_RULE)

    type: MessageType
    schema_version: Annotated[int, Field(ge=1, le=1000)]
    classification: Classification
    tlp: TLP
    handling: HandlingCode
    handling_conditions: Annotated[tuple[HandlingCondition, ...], Field(max_length=10)] = ()
    purposes: Annotated[frozenset[Purpose], Field(min_length=1, max_length=7), NO_REPEATS]
    case_id: CaseIdText | None = None
    expires: Timestamp | None = None
    evaluation: Evaluation | None = None
    #: body paths removed by redaction; empty for an original
    redacted: Annotated[tuple[FieldPathText, ...], Field(max_length=2000)] = ()
    body: Record

    @field_serializer("purposes")
    def _sorted_purposes(self, purposes: frozenset[Purpose]) -> list[str]:
        # Sets iterate in hash order; the canonical bytes need one stable order.
        return sorted(str(p) for p in purposes)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if MESSAGE_MODELS.get((self.type, self.schema_version)) is not type(self):
            raise ValueError(
                f"{self.type} version {self.schema_version} is not carried by {type(self).__name__}"
            )
        if self.handling is HandlingCode.H3 and not self.handling_conditions:
            raise ValueError("handling H3 needs at least one structured handling condition")
        if self.handling is not HandlingCode.H3 and self.handling_conditions:
            raise ValueError(f"handling {self.handling} carries no handling conditions; use H3")
        return self


class NetworkReportMessage(Message):
    """``network.report`` version 1."""

    type: Literal[MessageType.NETWORK_REPORT]
    schema_version: Literal[1]
    body: NetworkReport


class PersonAlertMessage(Message):
    """``person.alert`` version 1."""

    type: Literal[MessageType.PERSON_ALERT]
    schema_version: Literal[1]
    body: PersonAlert


class VesselSightingMessage(Message):
    """``vessel.sighting`` version 1."""

    type: Literal[MessageType.VESSEL_SIGHTING]
    schema_version: Literal[1]
    body: VesselSighting


class RouteAssessmentMessage(Message):
    """``route.assessment`` version 1."""

    type: Literal[MessageType.ROUTE_ASSESSMENT]
    schema_version: Literal[1]
    body: RouteAssessment


class DocumentFraudMessage(Message):
    """``document.fraud`` version 1."""

    type: Literal[MessageType.DOCUMENT_FRAUD]
    schema_version: Literal[1]
    body: DocumentFraud


class FinancialFlowMessage(Message):
    """``financial.flow`` version 1."""

    type: Literal[MessageType.FINANCIAL_FLOW]
    schema_version: Literal[1]
    body: FinancialFlow


class ReceiptMessage(Message):
    """``receipt`` version 1."""

    type: Literal[MessageType.RECEIPT]
    schema_version: Literal[1]
    body: Receipt


class ReceiptBatchMessage(Message):
    """``receipt`` version 2: one receipt for many views (:class:`ReceiptBatch`)."""

    type: Literal[MessageType.RECEIPT]
    schema_version: Literal[2]
    body: ReceiptBatch


class OnwardRequestMessage(Message):
    """``onward.request`` version 1."""

    type: Literal[MessageType.ONWARD_REQUEST]
    schema_version: Literal[1]
    body: OnwardRequest


class OnwardGrantMessage(Message):
    """``onward.grant`` version 1."""

    type: Literal[MessageType.ONWARD_GRANT]
    schema_version: Literal[1]
    body: OnwardGrant


class WithdrawalMessage(Message):
    """``withdrawal`` version 1."""

    type: Literal[MessageType.WITHDRAWAL]
    schema_version: Literal[1]
    body: Withdrawal


class OnwardForwardMessage(Message):
    """``onward.forward`` version 1."""

    type: Literal[MessageType.ONWARD_FORWARD]
    schema_version: Literal[1]
    body: OnwardForward


MESSAGE_MODELS: dict[tuple[MessageType, int], type[Message]] = {
    (MessageType.NETWORK_REPORT, 1): NetworkReportMessage,
    (MessageType.PERSON_ALERT, 1): PersonAlertMessage,
    (MessageType.VESSEL_SIGHTING, 1): VesselSightingMessage,
    (MessageType.ROUTE_ASSESSMENT, 1): RouteAssessmentMessage,
    (MessageType.DOCUMENT_FRAUD, 1): DocumentFraudMessage,
    (MessageType.FINANCIAL_FLOW, 1): FinancialFlowMessage,
    (MessageType.RECEIPT, 1): ReceiptMessage,
    (MessageType.RECEIPT, 2): ReceiptBatchMessage,
    (MessageType.ONWARD_REQUEST, 1): OnwardRequestMessage,
    (MessageType.ONWARD_GRANT, 1): OnwardGrantMessage,
    (MessageType.WITHDRAWAL, 1): WithdrawalMessage,
    (MessageType.ONWARD_FORWARD, 1): OnwardForwardMessage,
}
"""Every (type, schema version) the system accepts, and its model."""
