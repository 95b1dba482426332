"""Protocol messages on the same road as intelligence: receipts, withdrawals and corrections,
and onward sharing (DPA s.78)."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, JsonValue, StringConstraints

from broker import limits
from broker.schema.fields import OPERATIONAL, CountryCode, Line, Record, Text
from broker.schema.forms import Timestamp
from broker.schema.handling import HandlingCondition
from broker.schema.labels import DataCategory, Purpose

__all__ = [
    "Disclosed",
    "DisclosedField",
    "FieldPath",
    "GrantDecision",
    "MessageRef",
    "OnwardForward",
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


_Salt = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32,128}$")]
_Signature = Annotated[
    str, StringConstraints(pattern=rf"^[0-9a-f]{{2,{2 * limits.ENVELOPE_SIGNATURE_MAX_BYTES}}}$")
]
_CommittedPath = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63})?$")
]


class DisclosedField(Record):
    """One revealed field of a disclosure: its commitment salt and its value."""

    salt: Annotated[_Salt, OPERATIONAL]
    value: Annotated[JsonValue, OPERATIONAL]


class Disclosed(Record):
    """A selective disclosure of one envelope (docs/PROTOCOL.md section 9): the signed header
    as its exact text, the ciphertext digest and signature, and the revealed fields."""

    header: Annotated[
        str,
        OPERATIONAL,
        StringConstraints(min_length=2, max_length=limits.ENVELOPE_HEADER_MAX_BYTES),
    ]
    ciphertext_digest: Annotated[_Digest, OPERATIONAL]
    signature: Annotated[_Signature, OPERATIONAL]
    fields: Annotated[dict[_CommittedPath, DisclosedField], OPERATIONAL, Field(max_length=256)]


class OnwardForward(Record):
    """A holder passes fields of a view it received to a third party, with the originator's
    grant: both as disclosures the third party verifies against the registry alone.

    It carries the original's content whole, so it declares the original's signed data
    categories as its own: a flow that refuses a category refuses the forward that carries it.
    """

    original: Annotated[Disclosed, OPERATIONAL]
    grant: Annotated[Disclosed, OPERATIONAL]

    def carried_categories(self) -> frozenset[DataCategory]:
        """The data categories of the original's fields this forward reveals, read from the
        original type's own model (every category when they cannot be read: fail closed)."""
        # the categories module reads the message models, which are defined after this one
        from broker.schema.categories import disclosed_categories

        return disclosed_categories(self.original)
