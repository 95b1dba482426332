"""Replaying recorded traffic against a new accord version: what would it decide differently?

Traffic is JSON Lines, one recorded gateway decision per line::

    {"at": "2026-03-01T12:00:00Z", "from": "GB", "to": "RS", "labels": {...},
     "decision": "allow", "counters": {"GB-RS-1": 12}}

``counters`` is optional (the rate counters at that moment, as the gateway recorded them).
Each line is decided again at its recorded time, so expiry and rate limits apply as they did.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from typing import Annotated

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from broker.errors import PolicyError
from broker.ids import PartnerCode
from broker.policy.engine import Decision, Outcome, Request, evaluate
from broker.policy.model import Accord
from broker.schema.labels import Labels

__all__ = ["Difference", "SimulationReport", "TrafficRecord", "simulate"]

_MAX_LINE = 64 * 1024


class TrafficRecord(BaseModel):
    """One recorded decision."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=False)

    at: dt.datetime
    sender: Annotated[str, Field(alias="from", pattern=r"^[A-Z]{2}$")]
    recipient: Annotated[str, Field(alias="to", pattern=r"^[A-Z]{2}$")]
    labels: Labels
    decision: Outcome
    counters: dict[str, int] = Field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Difference:
    """A recorded message the new accord decides differently."""

    line: int
    record: TrafficRecord
    now: Decision


@dataclasses.dataclass(frozen=True)
class SimulationReport:
    """How many records were replayed and which came out differently."""

    total: int
    differences: tuple[Difference, ...]

    def count(self, was: Outcome, now: Outcome) -> int:
        """How many records went from ``was`` to ``now``."""
        return sum(1 for d in self.differences if d.record.decision is was and d.now.outcome is now)


def simulate(accord: Accord, traffic: pathlib.Path) -> SimulationReport:
    """Decide every recorded message again under ``accord`` and report the differences."""
    differences: list[Difference] = []
    total = 0
    try:
        with traffic.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if len(raw) > _MAX_LINE:
                    raise PolicyError(f"{traffic}:{number}: line over {_MAX_LINE} bytes")
                if not raw.strip():
                    continue
                record = _record(raw, traffic, number)
                total += 1
                request = Request(
                    labels=record.labels,
                    sender=PartnerCode(record.sender),
                    recipient=PartnerCode(record.recipient),
                )
                decision = evaluate(accord, request, now=record.at, counters=record.counters)
                if decision.outcome is not record.decision:
                    differences.append(Difference(line=number, record=record, now=decision))
    except OSError as exc:
        raise PolicyError(f"{traffic}: cannot read traffic: {exc.strerror or exc}") from exc
    return SimulationReport(total=total, differences=tuple(differences))


def _record(raw: bytes, traffic: pathlib.Path, number: int) -> TrafficRecord:
    try:
        record = TrafficRecord.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(line)"
        raise PolicyError(f"{traffic}:{number}: {where}: {first['msg']}") from exc
    if record.at.tzinfo is None:
        raise PolicyError(f"{traffic}:{number}: at: the time needs a timezone")
    return record
