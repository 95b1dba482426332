"""Client histories as JSON lines: every event round-trips, torn tails are tolerated, and
anything else malformed is a SchemaError naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.checker import Event, EventType, HistoryWriter, read_history
from broker.errors import SchemaError

codes = st.lists(st.sampled_from(["GB", "RS", "MK", "XK"]), unique=True).map(tuple)
events = st.builds(
    Event,
    type=st.sampled_from(EventType),
    client=st.sampled_from(["GB", "RS"]),
    key=st.text(min_size=1, max_size=20),
    time=st.floats(min_value=0, max_value=4e9),
    recipients=codes,
    allowed=st.none() | codes,
    refused=codes,
    envelopes=st.dictionaries(st.sampled_from(["RS", "XK"]), st.text(max_size=10)),
    detail=st.text(max_size=20),
)


@given(events)
def test_every_event_round_trips_through_one_json_line(event: Event) -> None:
    """What a driver writes is what the checker reads."""
    line = event.to_json()
    assert "\n" not in line
    assert Event.from_json(line) == event


def test_a_history_file_is_read_in_order_and_a_torn_tail_is_skipped(tmp_path: Path) -> None:
    """A driver killed mid-write leaves half a line at the end: it is not an event."""
    path = tmp_path / "gb.jsonl"
    written = [
        Event(EventType.INVOKE, "GB", "k1", 1.0, recipients=("RS",)),
        Event(EventType.OK, "GB", "k1", 2.0, recipients=("RS",)),
    ]
    with HistoryWriter(path) as writer:
        for event in written:
            writer.write(event)
    with path.open("a") as handle:
        handle.write('{"type":"invoke","cli')
    assert list(read_history([path])) == written


BAD = {
    "not JSON": "nonsense",
    "not an object": "[1, 2]",
    "unknown event type": '{"type":"maybe","client":"GB","key":"k","time":1}',
    "missing key": '{"type":"ok","client":"GB","time":1}',
    "recipients not a list": '{"type":"ok","client":"GB","key":"k","time":1,"recipients":"RS"}',
}


@pytest.mark.parametrize("name", BAD)
def test_a_malformed_line_is_a_schema_error_naming_its_place(name: str, tmp_path: Path) -> None:
    """A bad line in the middle of a history is reported with its file and line number."""
    path = tmp_path / "h.jsonl"
    path.write_text(BAD[name] + "\n" + Event(EventType.OK, "GB", "k", 1.0).to_json() + "\n")
    with pytest.raises(SchemaError, match=r"h\.jsonl:1"):
        list(read_history([path]))
