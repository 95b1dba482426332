"""Regression found by the fuzz campaigns (docs/FUZZING.md): a number past Python's
int-from-text digit limit is a SchemaError, not a ValueError."""

from __future__ import annotations

import pytest

from broker import errors
from broker.schema import parse_message


def test_an_integer_of_5000_digits_is_a_schema_error() -> None:
    """json.loads raises a plain ValueError for it; parse_message names it as ours."""
    data = b'{"schema_version":' + b"9" * 5000 + b"}"
    with pytest.raises(errors.SchemaError, match="too many digits"):
        parse_message(data)
