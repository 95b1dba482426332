"""Reading bundle lines: a line is accepted exactly when it is the one form the exporter writes
for its entry, whichever reader (the quick one for plain lines, or the JSON parser) decides."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.replay.bundle import Entry, _parse_any_line, _parse_line, entry_line

VALUES = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda t: t.encode("utf-8")),
    st.text(alphabet='"\\ab {}:,', max_size=32).map(lambda t: t.encode("ascii")),
)


@given(offset=st.integers(min_value=0, max_value=2**63 - 1), value=VALUES)
def test_every_exported_line_reads_back_as_its_entry(offset: int, value: bytes) -> None:
    """What the exporter writes is read back to the same offset and bytes."""
    entry = Entry(offset, value)
    assert _parse_line(entry_line(entry)) == entry


@pytest.mark.parametrize("offset", [-1, 2**63, 10**20])
def test_an_offset_kafka_cannot_give_is_refused(offset: int) -> None:
    """Kafka offsets are signed 64-bit and never negative: a line naming another is damaged
    (the audit tools store offsets as 64-bit numbers; one outside would stop a scan)."""
    assert _parse_line(entry_line(Entry(offset, b"x"))) is None


@given(
    value=VALUES,
    cut=st.integers(min_value=0, max_value=200),
    insert=st.sampled_from([b"", b"\\", b'"', b"\\u0041", b" ", b"\x7f", b"\\/", b"0"]),
)
def test_an_edited_line_is_read_exactly_as_the_json_parser_reads_it(
    value: bytes, cut: int, insert: bytes
) -> None:
    """Bytes inserted anywhere in a line (an escape, a bare quote, a control byte, a leading
    zero): the quick reader never accepts a line the JSON parser would refuse or read
    differently, and anything accepted is in the exporter's form."""
    line = entry_line(Entry(7, value))
    at = min(cut, len(line))
    edited = line[:at] + insert + line[at:]
    parsed = _parse_line(edited)
    assert parsed == _parse_any_line(edited)
    assert parsed is None or entry_line(parsed) == edited


@pytest.mark.parametrize(
    "line",
    [
        b'{"offset":5,"value":"}',  # too short to hold a string
        b'{"offset":05,"value":"x"}',  # a leading zero
        b'{"offset":,"value":"x"}',  # no offset
        b'{"offset":5,"value":"a"b"}',  # a bare quote inside
        b'{"offset":5,"value":"a\\"}',  # the closing quote escaped: no end
        b'{"offset":5,"value":"\\u0041"}',  # an escape the exporter would not write
        b'{"offset":5,"value":"caf\xc3\xa9"}',  # raw UTF-8 where the exporter escapes
        b'{"offset":5, "value":"x"}',  # whitespace
    ],
    ids=[
        "short",
        "leading-zero",
        "no-offset",
        "bare-quote",
        "escaped-closing-quote",
        "unicode-escape",
        "raw-utf8",
        "whitespace",
    ],
)
def test_lines_not_in_the_exporters_form_are_refused(line: bytes) -> None:
    """Each of these is not what the exporter writes, so it is not read as an entry."""
    assert _parse_line(line) is None
