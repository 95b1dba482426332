"""Structured H3 handling conditions: the originator's further restrictions, as data.

Europol's H3 is "other restrictions", usually free text. Free text cannot be enforced by a
machine or compared by an auditor, so each condition here is one typed restriction. A message
with handling code H3 carries at least one; a message with any other code carries none.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from broker.schema._base import StrictModel
from broker.schema.forms import Timestamp

__all__ = [
    "ConditionKind",
    "DestroyBy",
    "HandlingCondition",
    "NoDisseminationTo",
    "NoJudicialUseBefore",
    "PriorConsultation",
    "RestrictToUnits",
    "duty",
]

_Partner = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
_Unit = Annotated[str, StringConstraints(min_length=1, max_length=120)]


class ConditionKind(enum.StrEnum):
    """The kinds of H3 condition."""

    NO_DISSEMINATION_TO = "no-dissemination-to"
    PRIOR_CONSULTATION = "prior-consultation"
    RESTRICT_TO_UNITS = "restrict-to-units"
    NO_JUDICIAL_USE_BEFORE = "no-judicial-use-before"
    DESTROY_BY = "destroy-by"


class NoDisseminationTo(StrictModel):
    """Never pass the information, even with permission, to these partners."""

    kind: Literal[ConditionKind.NO_DISSEMINATION_TO]
    partners: Annotated[tuple[_Partner, ...], Field(min_length=1, max_length=16)]


class PriorConsultation(StrictModel):
    """Take no executive action (arrest, search, approach) before consulting the originator."""

    kind: Literal[ConditionKind.PRIOR_CONSULTATION]
    contact_point: _Unit
    response_hours: Annotated[int, Field(ge=1, le=720)]


class RestrictToUnits(StrictModel):
    """Only these named units of the recipient may see the information."""

    kind: Literal[ConditionKind.RESTRICT_TO_UNITS]
    units: Annotated[tuple[_Unit, ...], Field(min_length=1, max_length=16)]


class NoJudicialUseBefore(StrictModel):
    """Not to be used in judicial proceedings before this time (e.g. while an operation runs)."""

    kind: Literal[ConditionKind.NO_JUDICIAL_USE_BEFORE]
    not_before: Timestamp


class DestroyBy(StrictModel):
    """Delete every copy by this time, whatever the recipient's own retention rules."""

    kind: Literal[ConditionKind.DESTROY_BY]
    deadline: Timestamp


HandlingCondition = Annotated[
    NoDisseminationTo | PriorConsultation | RestrictToUnits | NoJudicialUseBefore | DestroyBy,
    Field(discriminator="kind"),
]


def duty(condition: HandlingCondition) -> str:
    """What ``condition`` obliges its recipient to do, in one sentence for an operator."""
    match condition:
        case NoDisseminationTo(partners=partners):
            return f"never pass it on to {', '.join(partners)}, even with permission"
        case PriorConsultation(contact_point=contact, response_hours=hours):
            return f"no executive action before consulting {contact} (answer within {hours} h)"
        case RestrictToUnits(units=units):
            return f"only {', '.join(units)} may see it; it is never passed on to another partner"
        case NoJudicialUseBefore(not_before=not_before):
            return f"no judicial use before {_utc(not_before)}"
        case DestroyBy(deadline=deadline):
            return f"destroyed by {_utc(deadline)}, whatever the retention"


def _utc(at: dt.datetime) -> str:
    # a condition may carry any offset: the operator reads one clock
    return f"{at.astimezone(dt.UTC):%Y-%m-%d %H:%M}Z"
