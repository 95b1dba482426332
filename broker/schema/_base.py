"""The strict base model every wire and message model derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel"]


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
