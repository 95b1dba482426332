"""The committed examples are valid, cover every message type, and round-trip canonically."""

from __future__ import annotations

import json

from broker.schema import MESSAGE_MODELS, Message, MessageType, message_bytes, parse_message

from .conftest import EXAMPLE_FILES


def test_every_message_type_has_an_example() -> None:
    """There is at least one example for each message type."""
    covered = {json.loads(p.read_bytes())["type"] for p in EXAMPLE_FILES}
    assert covered == {t.value for t in MessageType}


def test_every_example_validates(example: Message) -> None:
    """Each example parses into the model registered for its type and version."""
    assert type(example) is MESSAGE_MODELS[(example.type, example.schema_version)]


def test_canonical_bytes_round_trip(example: Message) -> None:
    """Parsing the canonical bytes gives an equal message, whose bytes are the same again."""
    encoded = message_bytes(example)
    again = parse_message(encoded)
    assert again == example
    assert message_bytes(again) == encoded


def test_canonical_bytes_are_sorted_and_compact(example: Message) -> None:
    """Canonical bytes have sorted keys and no insignificant whitespace."""
    encoded = message_bytes(example)
    document = json.loads(encoded)
    assert (
        encoded
        == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert document["purposes"] == sorted(document["purposes"])
