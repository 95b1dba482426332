"""Helpers for the partner-registry tests: the reference time and document surgery."""

from __future__ import annotations

import datetime as dt
import json

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


def with_signatures(data: bytes, signatures: list[dict[str, str]]) -> bytes:
    """The same document with its signature list replaced."""
    document = json.loads(data)
    document["signatures"] = signatures
    return json.dumps(document).encode()


def signatures_of(data: bytes) -> list[dict[str, str]]:
    """The signature list of a document."""
    return list(json.loads(data)["signatures"])


def with_signed_field(data: bytes, field: str, value: object) -> bytes:
    """The same document (signatures untouched) with one top-level ``signed`` field changed."""
    document = json.loads(data)
    document["signed"][field] = value
    return json.dumps(document).encode()
