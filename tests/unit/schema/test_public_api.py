"""The names other parts of the project code against are exported, and nothing else moves."""

from __future__ import annotations

import broker.schema

CONTRACT = {
    "Message",
    "parse_message",
    "message_bytes",
    "labels_of",
    "redact",
    "categories_present",
    "Labels",
    "DataCategory",
    "MessageType",
    "Classification",
    "TLP",
    "HandlingCode",
    "Purpose",
}


def test_contract_names_are_exported() -> None:
    """Every name in the published contract is in ``broker.schema.__all__``."""
    assert set(broker.schema.__all__) >= CONTRACT


def test_all_lists_only_real_names() -> None:
    """``__all__`` names exist and are sorted, so additions are deliberate."""
    assert all(hasattr(broker.schema, name) for name in broker.schema.__all__)
    assert list(broker.schema.__all__) == sorted(
        broker.schema.__all__, key=lambda n: (not n.isupper(), n)
    )
