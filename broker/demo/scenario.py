"""What `broker demo` plays: the messages of one Western Balkans case, and the steps that send
them. Drawn from the accords' purpose (countering people smuggling): the UK shares a network
report, Serbia answers with a route assessment, North Macedonia reports a sighting on Lake
Dojran; a flow without an accord is refused, and two records put straight onto an outbox (one
tampered with, one the accord forbids) are stopped by the gateway.

The messages start from ``schemas/examples`` and are re-marked for the flows they travel on,
so that every field is one the schema defines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from pathlib import Path
from typing import Any, Final

from broker.ids import PartnerCode
from broker.policy import out_of_force
from broker.schema import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Message,
    Purpose,
    parse_message,
    redact,
)
from broker.trust import AccordBook

__all__ = [
    "RECIPIENTS",
    "RUNNING",
    "Route",
    "Step",
    "expected_outcome",
    "network_report",
    "route_assessment",
    "scenario",
    "vessel_sighting",
]

#: the partners whose adapters the scenario needs; TR and AL are in the registry, not running
RUNNING: Final = ("GB", "RS", "MK", "XK")
#: who receives the UK's network report
RECIPIENTS: Final = ("RS", "MK", "XK")
_EXAMPLES: Final = Path(__file__).resolve().parents[2] / "schemas" / "examples"


class Route(enum.StrEnum):
    """How a step's message reaches the exchange."""

    #: ``broker send`` into the sender's spool: the sender's adapter decides, seals, sends
    SEND = "broker send"
    #: sealed with the sender's key and written onto its outbox by a plain Kafka client,
    #: then one byte flipped: what an attacker on the transport could do
    TAMPERED = "tampered on the outbox"
    #: sealed with the sender's key past its adapter's policy check, written onto its outbox:
    #: what a compromised adapter could do
    AROUND_ADAPTER = "around the adapter"


@dataclasses.dataclass(frozen=True)
class Step:
    """One thing that happens: ``sender`` sends ``message`` to ``to`` by ``route``."""

    title: str
    sender: str
    to: tuple[str, ...]
    message: Message
    route: Route
    #: the outcome each recipient's row must reach while the accords it travels under are in
    #: force (:attr:`Row.outcome`); :func:`expected_outcome` adapts it to the accords of the day
    expected: str


def expected_outcome(step: Step, recipient: str, accords: AccordBook, *, now: dt.datetime) -> str:
    """The outcome the row of ``step`` to ``recipient`` must reach at ``now``.

    While the pair's accord is in force, :attr:`Step.expected`. Once it has lapsed (or before
    it takes effect) the view is refused by the sender's adapter (``broker send``) or
    quarantined by the gateway (written around the adapter) with the accord's own reason code.
    A tampered record is refused for its signature, which the gateway checks first; a pair with
    no accord at all stays ``no_accord``.
    """
    accord = accords.for_pair(PartnerCode(step.sender), PartnerCode(recipient))
    if step.route is Route.TAMPERED or accord is None:
        return step.expected
    lapsed = out_of_force(accord, now=now)
    if lapsed is None:
        return step.expected
    stopped = "refused" if step.route is Route.SEND else "quarantined"
    return f"{stopped}: {lapsed.reason_code}"


def _example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((_EXAMPLES / f"{name}.json").read_bytes())
    return document


def _parse(document: dict[str, Any]) -> Message:
    return parse_message(json.dumps(document, ensure_ascii=False).encode())


def network_report(case_id: str) -> Message:
    """The UK's report on the 'Example Lake' group (Belgrade, Preševo, Tabanovce), marked
    OFFICIAL, TLP:GREEN, H0 for people smuggling, without its source-identifying and financial
    fields (which the North Macedonian accord refuses outright)."""
    original = _parse(_example("network.report"))
    marked = original.model_copy(
        update={
            "classification": Classification.OFFICIAL,
            "tlp": TLP.GREEN,
            "handling": HandlingCode.H0,
            "handling_conditions": (),
            "purposes": frozenset({Purpose.PEOPLE_SMUGGLING}),
            "case_id": case_id,
            "expires": None,
        }
    )
    return redact(marked, [DataCategory.SOURCE_IDENTIFYING, DataCategory.FINANCIAL])


def _leg(origin: tuple[str, str], destination: tuple[str, str], **rest: Any) -> dict[str, Any]:
    return {
        "origin": {"name": origin[0], "country": origin[1]},
        "destination": {"name": destination[0], "country": destination[1]},
        **rest,
    }


def route_assessment(case_id: str) -> Message:
    """Serbia's answer: the route the group runs from the North Macedonian border north."""
    document = _example("route.assessment")
    document.update(purposes=["people-smuggling"], case_id=case_id)
    document["evaluation"] = {
        "scheme": "uk-3x5x2",
        "source": "2",
        "information": "B",
        "handling": "P",
    }
    document["body"] = {
        "route_name": "Western Balkans, central corridor: Tabanovce to the Hungarian border",
        "period_start": "2026-07-01",
        "period_end": "2026-09-30",
        "transit_countries": ["MK", "RS", "HU"],
        "legs": [
            _leg(
                ("Tabanovce", "MK"),
                ("Preševo", "RS"),
                modes=["on-foot"],
                border_crossing="Green border near Miratovac, at night",
                typical_days=1,
                price={"amount": "600", "currency": "EUR"},
            ),
            _leg(
                ("Preševo", "RS"),
                ("Belgrade", "RS"),
                modes=["van", "taxi"],
                typical_days=1,
                price={"amount": "400", "currency": "EUR"},
            ),
            _leg(
                ("Belgrade", "RS"),
                ("Subotica", "RS"),
                modes=["bus", "car"],
                typical_days=2,
                price={"amount": "300", "currency": "EUR"},
            ),
            _leg(
                ("Subotica", "RS"),
                ("Szeged", "HU"),
                modes=["on-foot", "lorry"],
                border_crossing="Fence near Horgoš, ladders and a waiting lorry",
                typical_days=1,
                price={"amount": "2500", "currency": "EUR"},
            ),
        ],
        "total_price_low": {"amount": "3200", "currency": "EUR"},
        "total_price_high": {"amount": "4500", "currency": "EUR"},
        "persons_per_month": 240,
        "trend": "stable",
        "assessment": (
            "The group uses the Preševo safe houses as its staging point; since the summer it "
            "sends smaller groups across near Horgoš more often rather than larger ones."
        ),
    }
    return _parse(document)


def vessel_sighting(case_id: str) -> Message:
    """North Macedonia's sighting of a crossing of Lake Dojran from the Greek shore."""
    document = _example("vessel.sighting")
    document.update(
        purposes=["people-smuggling"],
        case_id=case_id,
        evaluation={"scheme": "admiralty-6x6", "source": "B", "information": "2"},
    )
    document["body"] = {
        "observed_at": "2026-09-21T02:15:00Z",
        "observed_by": "shore-patrol",
        "position": {"lat": 41.205, "lon": 22.735},
        "sea_area": "Lake Dojran, 1 km south-east of Nov Dojran",
        "vessel": {"boat_type": "small-fishing-boat", "length_m": 6.0, "colour": "blue"},
        "launch_point": {"name": "Lake shore near Doirani", "country": "GR"},
        "launched_at": "2026-09-21T01:40:00Z",
        "heading_deg": 330,
        "speed_knots": 4.0,
        "persons_aboard": 14,
        "outcome": "returned-to-shore",
        "remarks": "Landed at Nov Dojran; the group walked north towards Valandovo.",
    }
    return _parse(document)


def scenario(*, now: dt.datetime) -> tuple[Step, ...]:
    """The steps in order, with case ids stamped from ``now``."""
    stamp = f"{now:%Y%m%d-%H%M%S}"
    report = network_report(f"GB-NCA-{stamp}")
    amber = report.model_copy(update={"tlp": TLP.AMBER})
    return (
        Step("UK network report", "GB", RECIPIENTS, report, Route.SEND, "receipt back"),
        Step("Serbian route assessment", "RS", ("GB",), route_assessment(f"RS-MUP-{stamp}"),
             Route.SEND, "receipt back"),
        Step("North Macedonian vessel sighting", "MK", ("GB",),
             vessel_sighting(f"MK-MVR-{stamp}"), Route.SEND, "receipt back"),
        Step("Serbia to North Macedonia: no accord", "RS", ("MK",),
             route_assessment(f"RS-MUP-{stamp}"), Route.SEND, "refused: no_accord"),
        Step("tampered copy of the UK report", "GB", ("RS",), report, Route.TAMPERED,
             "quarantined: bad_signature"),
        Step("TLP:AMBER to Kosovo (GREEN at most)", "GB", ("XK",), amber,
             Route.AROUND_ADAPTER, "quarantined: policy_denied"),
    )  # fmt: skip
