"""Received messages as STIX 2.1, the form partners' analysis tools read.

Each message becomes a ``report`` whose ``object_refs`` hold what the message names: an
``identity`` (individual) for every person, a ``location`` for every place, a
``threat-actor`` (crime syndicate) for a smuggling network with ``attributed-to`` and
``located-at`` relationships to its members and hubs, and a ``note`` carrying the whole
message as received, so nothing the schema holds is lost in the mapping. The sending partner
is an ``identity`` (organization) every object is created by. Every object carries the
message's TLP 2.0 marking, as the OASIS TLP 2.0 marking definitions (the ``tlp_2_0``
property extension) name it.

Identifiers are derived from the message id and the object's place in the message (the first
16 bytes of a SHA-256, formed as the UUIDv4 STIX asks of domain objects), so exporting the
same message twice gives the same objects and a tool that imports both keeps one copy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Final

from pydantic import BaseModel

from broker.clock import format_instant
from broker.schema.fields import Place
from broker.schema.labels import TLP
from broker.schema.message import Message
from broker.schema.network import NetworkReport
from broker.schema.people import PersonDetails
from broker.schema.wire import message_bytes

__all__ = ["TLP_MARKINGS", "StixSource", "dumps", "stix_bundle"]

#: what every identifier this module derives is hashed under
_ID_DOMAIN: Final = b"broker/stix-id/v1\x00"
_TLP_EXTENSION: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
#: the OASIS TLP 2.0 marking definitions, by level
TLP_MARKINGS: Final = {
    TLP.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TLP.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TLP.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TLP.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TLP.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
_TLP_DEFINED: Final = "2022-10-01T00:00:00.000Z"


@dataclasses.dataclass(frozen=True, slots=True)
class StixSource:
    """One received message and what the receiver knows of it."""

    message_id: str
    sender: str
    sender_name: str
    received_at: dt.datetime
    message: Message


def stix_bundle(sources: Iterable[StixSource]) -> dict[str, Any]:
    """One STIX 2.1 bundle holding every message of ``sources``."""
    objects: dict[str, dict[str, Any]] = {}
    levels: set[TLP] = set()
    for source in sources:
        levels.add(source.message.tlp)
        for obj in _message_objects(source):
            objects.setdefault(obj["id"], obj)
    markings = [_marking(level) for level in sorted(levels, key=lambda t: t.rank)]
    ids = sorted(objects)
    return {
        "type": "bundle",
        "id": _id("bundle", ",".join(ids)),
        "objects": [*markings, *(objects[i] for i in ids)],
    }


def _marking(level: TLP) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP_MARKINGS[level],
        "created": _TLP_DEFINED,
        "name": f"TLP:{level}",
        "extensions": {
            _TLP_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level.lower()}
        },
    }


def _message_objects(source: StixSource) -> Iterator[dict[str, Any]]:
    message = source.message
    when = _timestamp(source.received_at)
    marking = [TLP_MARKINGS[message.tlp]]
    partner = _id("identity", f"partner:{source.sender}")

    def sdo(kind: str, path: str, **properties: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "spec_version": "2.1",
            "id": _id(kind, f"{source.message_id}:{path}"),
            "created": when,
            "modified": when,
            "created_by_ref": partner,
            "object_marking_refs": marking,
            **{k: v for k, v in properties.items() if v not in (None, "", [], ())},
        }

    yield {
        "type": "identity",
        "spec_version": "2.1",
        "id": partner,
        "created": when,
        "modified": when,
        "name": source.sender_name,
        "identity_class": "organization",
        "description": f"exchange partner {source.sender}",
        "object_marking_refs": marking,
    }
    refs: list[str] = []
    persons = {path: person for path, person in _walk(message.body, "body", PersonDetails)}
    places = {path: place for path, place in _walk(message.body, "body", Place)}
    for path, person in persons.items():
        obj = sdo(
            "identity",
            path,
            name=_person_name(person),
            identity_class="individual",
            description=_person_description(person),
        )
        refs.append(obj["id"])
        yield obj
    for path, place in list(places.items()):
        located = _location(sdo, path, place)
        if located is None:  # no ISO country, no point: the note keeps it
            del places[path]
            continue
        refs.append(located["id"])
        yield located
    body = message.body
    if isinstance(body, NetworkReport):
        actor = sdo(
            "threat-actor",
            "body",
            name=body.operation_name or f"network in {message.case_id or source.message_id}",
            description=body.summary,
            threat_actor_types=["crime-syndicate"],
        )
        refs.append(actor["id"])
        yield actor
        related = [(p, "attributed-to") for p in persons] + [(p, "located-at") for p in places]
        for path, kind in related:
            target_kind = "identity" if kind == "attributed-to" else "location"
            target = _id(target_kind, f"{source.message_id}:{path}")
            relationship = sdo(
                "relationship",
                f"{path}:{kind}",
                relationship_type=kind,
                source_ref=actor["id"],
                target_ref=target,
            )
            refs.append(relationship["id"])
            yield relationship
    report_id = _id("report", source.message_id)
    note = sdo(
        "note",
        "note",
        abstract=f"the {message.type} message {source.message_id} as received",
        content=message_bytes(message).decode("utf-8"),
        object_refs=[report_id],
    )
    refs.append(note["id"])
    yield note
    summary = getattr(body, "summary", None)
    yield {
        **sdo(
            "report",
            "report",
            name=f"{message.type} {message.case_id or source.message_id}",
            description=summary if isinstance(summary, str) else None,
            report_types=["threat-report"],
            published=when,
            labels=sorted(str(p) for p in message.purposes),
            object_refs=[partner, *refs],
            external_references=[
                {"source_name": "exchange message id", "external_id": source.message_id}
            ],
        ),
        "id": report_id,
    }


#: codes the exchange uses that ISO 3166-1 leaves to its users, with the UN M49 region STIX
#: names instead (STIX asks ``country`` to be an ISO 3166-1 code)
_USER_ASSIGNED_REGIONS: Final = {"XK": "southern-europe"}


def _location(sdo: Any, path: str, place: Place) -> dict[str, Any] | None:
    code = str(place.country)
    point = place.point
    region = _USER_ASSIGNED_REGIONS.get(code)
    user_assigned = code in _USER_ASSIGNED_REGIONS or code[0] in "XQ" or code in ("AA", "ZZ")
    if user_assigned and region is None and point is None:
        return None
    located: dict[str, Any] = sdo(
        "location",
        path,
        name=place.name,
        description=f"country code {code}" if user_assigned else None,
        country=None if user_assigned else code,
        region=region,
        latitude=None if point is None else point.lat,
        longitude=None if point is None else point.lon,
    )
    return located


def _walk(value: object, path: str, kind: type[BaseModel]) -> Iterator[tuple[str, Any]]:
    """Every instance of ``kind`` inside ``value``, with its JSON path."""
    if isinstance(value, kind):
        yield path, value
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name), f"{path}.{name}", kind)
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", kind)


def _person_name(person: PersonDetails) -> str:
    parts = [person.given_names, person.family_name]
    name = " ".join(p for p in parts if p)
    return name or (person.aliases[0] if person.aliases else "unnamed person")


def _person_description(person: PersonDetails) -> str:
    facts = []
    if person.aliases:
        facts.append(f"aliases: {', '.join(person.aliases)}")
    if person.date_of_birth is not None:
        facts.append(f"born {person.date_of_birth}")
    if person.nationalities:
        facts.append(f"nationalities: {', '.join(str(n) for n in person.nationalities)}")
    return "; ".join(facts)


def _id(kind: str, name: str) -> str:
    digest = hashlib.sha256(_ID_DOMAIN + f"{kind}:{name}".encode()).digest()
    return f"{kind}--{uuid.UUID(bytes=digest[:16], version=4)}"


def _timestamp(value: dt.datetime) -> str:
    """STIX's millisecond form of the one instant codec's (broker.clock)."""
    return f"{format_instant(value)[:-1]}.{value.microsecond // 1000:03d}Z"


def dumps(bundle: dict[str, Any]) -> str:
    """The bundle as JSON text, as written to a file."""
    return json.dumps(bundle, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
