"""The strict base model every wire and message model derives from, and the officer
directory's name shapes as field types (a header or registry names what a directory holds)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from broker.ids import OFFICER_ID, is_unit_name

__all__ = ["OfficerIdText", "StrictModel", "UnitNameText"]


def _unit_name(value: str) -> str:
    if not is_unit_name(value):
        raise ValueError("not an agency or unit name")
    return value


def _officer_id(value: str) -> str:
    if not OFFICER_ID.fullmatch(value):
        raise ValueError("not an officer id")
    return value


#: an agency or unit name (:func:`broker.ids.is_unit_name`)
UnitNameText = Annotated[str, AfterValidator(_unit_name)]
#: an officer's id on its adapter (:data:`broker.ids.OFFICER_ID`)
OfficerIdText = Annotated[str, AfterValidator(_officer_id)]


class StrictModel(BaseModel):
    """Frozen, unknown fields forbidden, no NaN or Infinity, no silent coercion."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        str_max_length=65_536,
        validate_default=True,
    )
