"""Protocol messages on the same road as intelligence: receipts, withdrawals and corrections,
and onward sharing (DPA s.78)."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, StringConstraints

from broker.schema.fields import OPERATIONAL, CountryCode, Line, Record, Text
from broker.schema.forms import Timestamp
from broker.schema.handling import HandlingCondition
from broker.schema.labels import Purpose

__all__ = [
    "FieldPath",
    "GrantDecision",
    "MessageRef",
    "OnwardGrant",
    "OnwardRequest",
    "Receipt",
    "ReceiptStatus",
    "Withdrawal",
]

MessageRef = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    ),
]
"""A message id (UUIDv7, lowercase)."""

FieldPath = Annotated[
    str, StringConstraints(pattern=r"^body(\.[a-z_]{1,40}(\[[0-9]{1,4}\])?){1,8}$")
]
"""A path into a message body, as redaction records it: ``body.members[0].comms``."""

_Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class ReceiptStatus(enum.StrEnum):
    """What the recipient did with a message."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Receipt(Record):
    """The recipient's signed acknowledgement of one message."""

    receipt_for: Annotated[MessageRef, OPERATIONAL]
    status: Annotated[ReceiptStatus, OPERATIONAL]
    received_at: Annotated[Timestamp, OPERATIONAL]
    content_sha256: Annotated[_Digest, OPERATIONAL]
    reason: Annotated[Line | None, OPERATIONAL] = None


class OnwardRequest(Record):
    """A recipient asks the originator's permission to pass information to a third party."""

    original_message: Annotated[MessageRef, OPERATIONAL]
    third_party_country: Annotated[CountryCode, OPERATIONAL]
    third_party_authority: Annotated[Line, OPERATIONAL]
    purposes: Annotated[tuple[Purpose, ...], OPERATIONAL, Field(min_length=1, max_length=7)]
    fields_requested: Annotated[tuple[FieldPath, ...], OPERATIONAL, Field(max_length=100)] = ()
    justification: Annotated[Text, OPERATIONAL]
    urgent: Annotated[bool, OPERATIONAL] = False
    respond_by: Annotated[Timestamp | None, OPERATIONAL] = None


class GrantDecision(enum.StrEnum):
    """The originator's answer."""

    GRANTED = "granted"
    GRANTED_WITH_CONDITIONS = "granted-with-conditions"
    REFUSED = "refused"


class OnwardGrant(Record):
    """The originator's answer to an onward request; conditions bind the third party."""

    request: Annotated[MessageRef, OPERATIONAL]
    original_message: Annotated[MessageRef, OPERATIONAL]
    decision: Annotated[GrantDecision, OPERATIONAL]
    third_party_country: Annotated[CountryCode, OPERATIONAL]
    fields_granted: Annotated[tuple[FieldPath, ...], OPERATIONAL, Field(max_length=100)] = ()
    conditions: Annotated[tuple[HandlingCondition, ...], OPERATIONAL, Field(max_length=10)] = ()
    valid_until: Annotated[Timestamp | None, OPERATIONAL] = None
    reason: Annotated[Line | None, OPERATIONAL] = None


class Withdrawal(Record):
    """The originator takes back one view it sent: the recipient destroys its content.

    With ``replaced_by`` it is a correction: the view of that id, sent to the same recipient,
    carries the corrected content. Only the view's own sender can withdraw it; the recipient
    checks that against what it stored, and honours a withdrawal that arrives before the view.
    """

    withdraws: Annotated[MessageRef, OPERATIONAL]
    reason: Annotated[Line, OPERATIONAL]
    replaced_by: Annotated[MessageRef | None, OPERATIONAL] = None
