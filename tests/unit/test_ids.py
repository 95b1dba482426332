"""Message id prefixes: the range an indexed lookup takes holds exactly the ids that start so."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.ids import MIN_ID_PREFIX, message_id_range, new_message_id

_IDS = st.builds(
    new_message_id,
    unix_ms=st.integers(0, 2**48 - 1),
    random_bytes=st.binary(min_size=10, max_size=10),
)


@given(_IDS, _IDS, st.integers(MIN_ID_PREFIX, 36), st.booleans())
def test_the_range_holds_exactly_the_ids_with_the_prefix(
    mine: str, other: str, length: int, upper: bool
) -> None:
    prefix = mine[:length].upper() if upper else mine[:length]
    low, high = message_id_range(prefix)
    assert low <= mine < high
    assert (low <= other < high) == other.startswith(mine[:length])


@pytest.mark.parametrize("prefix", ["0190abc", "", "0190abcd-zz", "0190abcd%", "x" * 40])
def test_a_prefix_too_short_or_not_of_an_id_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="at least its first 8 characters"):
        message_id_range(prefix)
