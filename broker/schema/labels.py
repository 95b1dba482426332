"""The law-enforcement labels every message carries, and that envelopes sign in the clear.

These are the only facts about a message the policy gateway ever sees: it decides on them
without decrypting. They are typed, not free text, so that an accord can be enforced by a
machine. Orderings (classification, TLP) are explicit ranks, never string comparison.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, field_serializer

from broker.schema._base import StrictModel
from broker.schema.forms import NO_REPEATS

__all__ = [
    "PROTOCOL_TYPES",
    "TLP",
    "Classification",
    "DataCategory",
    "HandlingCode",
    "Labels",
    "MessageType",
    "Purpose",
]


class Classification(enum.StrEnum):
    """UK Government Security Classifications, the reference scale for every accord.

    Partner national markings map onto this scale through per-partner equivalence tables.
    """

    OFFICIAL = "OFFICIAL"
    OFFICIAL_SENSITIVE = "OFFICIAL-SENSITIVE"
    SECRET = "SECRET"  # noqa: S105 - a classification marking, not a credential

    @property
    def rank(self) -> int:
        """Position on the scale: higher is more sensitive."""
        return _CLASSIFICATION_RANK[self]


_CLASSIFICATION_RANK = {
    Classification.OFFICIAL: 0,
    Classification.OFFICIAL_SENSITIVE: 1,
    Classification.SECRET: 2,
}


class TLP(enum.StrEnum):
    """FIRST Traffic Light Protocol 2.0."""

    CLEAR = "CLEAR"
    GREEN = "GREEN"
    AMBER = "AMBER"
    AMBER_STRICT = "AMBER+STRICT"
    RED = "RED"

    @property
    def rank(self) -> int:
        """Position on the scale: higher is more restricted."""
        return _TLP_RANK[self]


_TLP_RANK = {TLP.CLEAR: 0, TLP.GREEN: 1, TLP.AMBER: 2, TLP.AMBER_STRICT: 3, TLP.RED: 4}


class HandlingCode(enum.StrEnum):
    """Europol-style handling codes.

    H0: use for the stated purposes only. H1: no use in judicial proceedings without the
    originator's permission. H2: no onward dissemination without the originator's permission.
    H3: further restrictions, carried as structured conditions on the message.
    """

    H0 = "H0"
    H1 = "H1"
    H2 = "H2"
    H3 = "H3"


class Purpose(enum.StrEnum):
    """Why the information is shared; accords allow purposes per flow."""

    PEOPLE_SMUGGLING = "people-smuggling"
    HUMAN_TRAFFICKING = "human-trafficking"
    DOCUMENT_FRAUD = "document-fraud"
    MONEY_LAUNDERING = "money-laundering"
    BORDER_SECURITY = "border-security"
    SAFEGUARDING = "safeguarding"
    STRATEGIC_ANALYSIS = "strategic-analysis"


class DataCategory(enum.StrEnum):
    """What kind of data a field holds. Every message field declares exactly one."""

    OPERATIONAL = "operational"  # non-personal case facts: dates, routes, counts, assessments
    IDENTITY = "identity"  # names, dates of birth, nationalities, identity numbers
    BIOMETRIC = "biometric"  # fingerprints, facial images, DNA references
    LOCATION = "location"  # addresses, coordinates, places tied to a person or asset
    COMMUNICATIONS = "communications"  # phone numbers, messaging handles, e-mail addresses
    FINANCIAL = "financial"  # accounts, transfers, amounts tied to people
    VEHICLE = "vehicle"  # registrations, hull ids, engine numbers
    SOURCE_IDENTIFYING = "source-identifying"  # anything that could expose a human source
    HEALTH = "health"  # injuries, medical needs
    TRAVEL_DOCUMENT = "travel-document"  # passport and visa details


class MessageType(enum.StrEnum):
    """Every message type on the wire; the schema version travels beside it."""

    NETWORK_REPORT = "network.report"
    PERSON_ALERT = "person.alert"
    VESSEL_SIGHTING = "vessel.sighting"
    ROUTE_ASSESSMENT = "route.assessment"
    DOCUMENT_FRAUD = "document.fraud"
    FINANCIAL_FLOW = "financial.flow"
    RECEIPT = "receipt"
    ONWARD_REQUEST = "onward.request"
    ONWARD_GRANT = "onward.grant"
    WITHDRAWAL = "withdrawal"
    ONWARD_FORWARD = "onward.forward"


#: the types that speak about other messages (acknowledge, withdraw, ask, consent, forward)
#: rather than carry intelligence of their own: never withdrawn, asked about or passed on
PROTOCOL_TYPES: frozenset[MessageType] = frozenset(
    {
        MessageType.RECEIPT,
        MessageType.WITHDRAWAL,
        MessageType.ONWARD_REQUEST,
        MessageType.ONWARD_GRANT,
        MessageType.ONWARD_FORWARD,
    }
)


class Labels(StrictModel):
    """The signed, clear-text labels of one message view: what the gateway decides on.

    ``data_categories`` lists every category actually present in this view (after redaction);
    the receiving adapter checks the decrypted content against it, so under-declaring is caught.
    """

    message_type: MessageType
    schema_version: Annotated[int, Field(ge=1, le=1000)]
    classification: Classification
    tlp: TLP
    handling: HandlingCode
    purposes: Annotated[frozenset[Purpose], Field(min_length=1, max_length=16), NO_REPEATS]
    data_categories: Annotated[frozenset[DataCategory], Field(max_length=32), NO_REPEATS]

    @field_serializer("purposes", "data_categories")
    def _sorted(self, values: frozenset[enum.StrEnum]) -> list[str]:
        # Sets serialise in hash order; signed headers need one byte-stable form.
        return sorted(str(v) for v in values)
