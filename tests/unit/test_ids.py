"""Message id prefixes: the range an indexed lookup takes holds exactly the ids that start so."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.ids import MIN_ID_PREFIX, is_unit_name, message_id_range, new_message_id

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


@pytest.mark.parametrize(
    "name",
    ["Border Force", "Granična policija", "Управа криминалистичке полиције", "x" * 120, "MUP"],
)
def test_names_as_agencies_and_units_write_them_are_unit_names(name: str) -> None:
    assert is_unit_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 121,
        " Maritime",
        "Maritime ",
        "Border  Force",  # two spaces print much like one
        "Border\u00a0Force",  # a no-break space
        "Border\tForce",
        "Granic\u030cna policija",  # NFD: prints as the NFC name above
        "Operations\u200b",  # zero-width space
        "\u202eecroF redroB",  # right-to-left override
        "\ufeffMUP",  # byte order mark
        "MUP\x85",  # C1 control
        "MUP\u2028UKP",  # line separator
        "IT\u034f",  # combining grapheme joiner
        "IT\ufe0f",  # variation selector
        "UKP\u3164",  # Hangul filler
        "\u2800",  # blank Braille pattern: a name that prints as nothing
        "UKP\ue000",  # private use: prints as whatever a font makes of it
        "UKP\U00013439",  # unassigned in Python 3.11's Unicode data
        "a\x00b",
    ],
)
def test_names_that_print_as_another_or_as_nothing_are_not_unit_names(name: str) -> None:
    assert not is_unit_name(name)
