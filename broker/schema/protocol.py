"""Protocol messages on the same road as intelligence: receipts, withdrawals and corrections,
and onward sharing (DPA s.78)."""

from __future__ import annotations

import enum
from typing import Annotated, Self

from pydantic import Field, JsonValue, StringConstraints, model_validator

from broker import limits
from broker.schema.fields import OPERATIONAL, CountryCode, Line, Record, Text
from broker.schema.forms import Timestamp
from broker.schema.handling import HandlingCondition
from broker.schema.labels import DataCategory, Purpose

__all__ = [
    "MAX_RECEIPT_ITEMS",
    "Disclosed",
    "DisclosedBatch",
    "DisclosedField",
    "FieldPath",
    "GrantDecision",
    "MessageRef",
    "OnwardForward",
    "OnwardGrant",
    "OnwardRequest",
    "Receipt",
    "ReceiptBatch",
    "ReceiptItem",
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


#: lines in one batch receipt: bounded so that the lines it shows the gateway (revealed.py)
#: fit one Kafka header, whatever the reasons say
MAX_RECEIPT_ITEMS = 100


class ReceiptItem(Record):
    """One view acknowledged by a batch receipt: the fields of a ``receipt`` version 1, and the
    digest of the envelope as it was delivered (the gateway's audit record of that delivery
    names the same digest)."""

    receipt_for: Annotated[MessageRef, OPERATIONAL]
    status: Annotated[ReceiptStatus, OPERATIONAL]
    content_sha256: Annotated[_Digest, OPERATIONAL]
    envelope_sha256: Annotated[_Digest, OPERATIONAL]
    reason: Annotated[Line | None, OPERATIONAL] = None


class ReceiptBatch(Record):
    """``receipt`` version 2: the recipient's signed acknowledgement of every view of one
    delivered batch from one sender (with the same markings), one line each."""

    received_at: Annotated[Timestamp, OPERATIONAL]
    items: Annotated[
        tuple[ReceiptItem, ...], OPERATIONAL, Field(min_length=1, max_length=MAX_RECEIPT_ITEMS)
    ]

    @model_validator(mode="after")
    def _one_line_per_view(self) -> Self:
        ids = [item.receipt_for for item in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("a batch receipt acknowledges each view once")
        return self


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


class DisclosedBatch(Record):
    """Where a disclosed envelope sits in the batch its signature covers (docs/PROTOCOL.md
    section 5): leaf ``index`` of ``size``, and the inclusion path to the signed head."""

    size: Annotated[int, OPERATIONAL, Field(ge=2, le=4096)]
    index: Annotated[int, OPERATIONAL, Field(ge=0, lt=4096)]
    path: Annotated[tuple[_Digest, ...], OPERATIONAL, Field(max_length=12)]


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
    #: the envelope's place in the batch its signature covers, if it was signed in one
    batch: Annotated[DisclosedBatch | None, OPERATIONAL] = None


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
