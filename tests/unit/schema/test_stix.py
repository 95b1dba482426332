"""STIX 2.1 export: every example message makes a bundle the OASIS validator passes in strict
mode, marked with the message's TLP 2.0 level, and nothing of the message is lost."""

from __future__ import annotations

import datetime as dt
import json

from stix2validator import ValidationOptions, validate_instance

from broker.schema import Message, parse_message
from broker.schema.stix import TLP_MARKINGS, StixSource, stix_bundle
from broker.schema.wire import message_bytes

from .conftest import example_bytes

RECEIVED = dt.datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=dt.UTC)


def _source(
    message: Message, message_id: str = "0193f1a2-7b6c-7d8e-9f00-112233445566"
) -> StixSource:
    return StixSource(
        message_id=message_id,
        sender="GB",
        sender_name="United Kingdom",
        received_at=RECEIVED,
        message=message,
    )


def test_every_example_is_a_valid_stix_bundle(example: Message) -> None:
    bundle = stix_bundle([_source(example)])
    result = validate_instance(bundle, ValidationOptions(strict=True))
    assert result.is_valid, [str(e) for e in result.errors]
    assert not result.warnings, [str(w) for w in result.warnings]
    marking = TLP_MARKINGS[example.tlp]
    for obj in bundle["objects"]:
        if obj["type"] != "marking-definition":
            assert obj["object_marking_refs"] == [marking]
    (note,) = [o for o in bundle["objects"] if o["type"] == "note"]
    assert parse_message(note["content"].encode()) == example  # the whole message, kept


def test_a_network_report_names_its_people_places_and_the_network() -> None:
    report = parse_message(example_bytes("network.report"))
    objects = stix_bundle([_source(report)])["objects"]
    kinds = [o["type"] for o in objects]
    assert kinds.count("identity") == 1 + 2  # the sender, and the two members named
    assert kinds.count("location") == 3  # two hubs' places and where M1 is based
    (actor,) = [o for o in objects if o["type"] == "threat-actor"]
    assert actor["name"] == "OPERATION EXAMPLE LAKE"
    names = {o["name"] for o in objects if o.get("identity_class") == "individual"}
    assert "Fiktivni TESTOVIĆ" in names
    (report_object,) = [o for o in objects if o["type"] == "report"]
    assert report_object["published"] == "2026-11-28T12:00:00.123Z"
    assert set(report_object["object_refs"]) == {
        o["id"] for o in objects if o["type"] not in ("report", "marking-definition")
    }


def test_exporting_twice_gives_the_same_objects() -> None:
    """Derived identifiers: a tool importing both exports keeps one copy."""
    report = parse_message(example_bytes("vessel.sighting"))
    first = json.dumps(stix_bundle([_source(report)]), sort_keys=True)
    assert json.dumps(stix_bundle([_source(report)]), sort_keys=True) == first
    other = stix_bundle([_source(report, "0193f1a2-7b6c-7d8e-9f00-000000000000")])
    assert json.dumps(other, sort_keys=True) != first
    assert message_bytes(report)


def test_a_place_in_kosovo_is_located_by_region_not_an_iso_code() -> None:
    """XK is a code ISO 3166-1 leaves to its users: STIX gets the region, the code is said."""
    document = json.loads(example_bytes("network.report"))
    document["body"]["hubs"][1]["place"]["country"] = "XK"
    message = parse_message(json.dumps(document).encode())
    bundle = stix_bundle([_source(message)])
    assert validate_instance(bundle, ValidationOptions(strict=True)).is_valid
    (kosovo,) = [o for o in bundle["objects"] if o.get("description") == "country code XK"]
    assert (kosovo["type"], kosovo["region"], "country" in kosovo) == (
        "location",
        "southern-europe",
        False,
    )
