"""Data categories are read from the models: labels, presence and redaction are generic."""

from __future__ import annotations

from typing import Annotated

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import errors
from broker.schema import (
    DataCategory,
    Message,
    categories_present,
    field_categories,
    labels_of,
    message_bytes,
    parse_message,
    redact,
)
from broker.schema.fields import IDENTITY, OPERATIONAL, Record

from .conftest import EXAMPLE_FILES, example_bytes

EXAMPLES = [parse_message(p.read_bytes()) for p in EXAMPLE_FILES]
REDACTABLE = sorted(set(DataCategory) - {DataCategory.OPERATIONAL})


def test_network_report_holds_the_categories_its_fields_declare() -> None:
    """The network example holds identity, location, comms, ... as its fields declare."""
    message = parse_message(example_bytes("network.report"))
    assert categories_present(message) == frozenset(DataCategory) - {DataCategory.HEALTH}


def test_labels_carry_metadata_and_present_categories() -> None:
    """labels_of copies the metadata and lists the categories actually present."""
    message = parse_message(example_bytes("receipt"))
    labels = labels_of(message)
    assert (labels.message_type, labels.schema_version) == (message.type, 1)
    assert (labels.classification, labels.tlp, labels.handling) == (
        message.classification,
        message.tlp,
        message.handling,
    )
    assert labels.purposes == message.purposes
    assert labels.data_categories == {DataCategory.OPERATIONAL}


def test_redaction_empties_fields_and_records_their_paths() -> None:
    """Redacting communications removes every comms field and lists exactly those paths."""
    message = parse_message(example_bytes("network.report"))
    redacted = redact(message, [DataCategory.COMMUNICATIONS])
    assert redacted.redacted == (
        "body.members[0].comms",
        "body.members[1].comms",
    )
    assert all(member.comms == () for member in redacted.body.members)  # type: ignore[attr-defined]
    assert redacted.body.members[0].person == message.body.members[0].person  # type: ignore[attr-defined]


def test_redacting_an_absent_category_returns_the_message_unchanged() -> None:
    """A receipt holds no health data; redacting it is a no-op, not an error."""
    message = parse_message(example_bytes("receipt"))
    assert redact(message, [DataCategory.HEALTH]) is message


def test_operational_data_cannot_be_redacted() -> None:
    """Operational fields are the message itself: asking to redact them is a usage error."""
    message = parse_message(example_bytes("receipt"))
    with pytest.raises(errors.UsageError, match="drop the message"):
        redact(message, [DataCategory.OPERATIONAL])


@settings(deadline=None)  # never a timing threshold: the machine is shared
@given(
    message=st.sampled_from(EXAMPLES),
    categories=st.sets(st.sampled_from(REDACTABLE)),
)
def test_redaction_leaves_none_of_the_redacted_categories(
    message: Message, categories: set[DataCategory]
) -> None:
    """For any example and any set of categories, redaction never fails, removes every field of
    those categories, is reflected in the labels, and yields a valid message."""
    redacted = redact(message, categories)
    remaining = {category for _, category in field_categories(redacted.body)}
    assert not remaining & categories
    assert not labels_of(redacted).data_categories & categories
    assert labels_of(redacted).data_categories == categories_present(message) - categories
    assert parse_message(message_bytes(redacted)) == redacted
    removed = {path for path, category in field_categories(message.body) if category in categories}
    assert set(redacted.redacted) <= removed


def test_a_field_without_a_category_is_refused_when_the_model_is_defined() -> None:
    """A body model field with no category cannot even be declared."""
    with pytest.raises(TypeError, match=r"Uncategorised\.note: .*exactly one data category"):

        class Uncategorised(Record):
            note: str


def test_a_required_personal_field_is_refused_when_the_model_is_defined() -> None:
    """A non-operational field must be removable, so it cannot be required."""
    with pytest.raises(TypeError, match=r"Required\.name: a identity field must default"):

        class Required(Record):
            name: Annotated[str, IDENTITY]


def test_a_field_with_two_categories_is_refused() -> None:
    """Exactly one category per field."""
    with pytest.raises(TypeError, match="found 2"):

        class Twice(Record):
            name: Annotated[str | None, IDENTITY, OPERATIONAL] = None
