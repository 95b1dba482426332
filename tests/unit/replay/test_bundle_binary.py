"""The binary audit bundle holds exactly what the JSON Lines one holds, verifies the same, and
turns a cut or oversized record into one damaged entry at its place."""

from __future__ import annotations

import pathlib
import struct

import pytest

from broker.replay import iter_entries, read_header, verify_entries
from broker.replay.bundle import BINARY_MAGIC, Entry
from tests.unit.replay.audit_log import NOW, AuditLog, checkpointed_topic, decide, labels


@pytest.fixture(scope="module")
def log() -> AuditLog:
    return AuditLog.create()


@pytest.fixture
async def values(log: AuditLog) -> list[bytes]:
    records = [decide(log.accords[0], labels(), key=log.gateway_key, at=NOW) for _ in range(9)]
    topic = await checkpointed_topic(records, key=log.gateway_key, registry=log.fixture.registry)
    return topic.contents()


def _write(tmp_path: pathlib.Path, name: str, data: bytes) -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_both_forms_hold_the_same_header_and_records(log: AuditLog, tmp_path: pathlib.Path) -> None:
    odd = [b"plain", b"", "\u017eeljko".encode(), b"\xff\xfe not UTF-8", b'{"q":"\\""}']
    text = _write(tmp_path, "a.jsonl", log.bundle_bytes(odd))
    binary = _write(tmp_path, "a.bin", log.bundle_bytes(odd, binary=True))
    assert binary.read_bytes().startswith(BINARY_MAGIC)
    assert read_header(binary) == read_header(text)
    assert list(iter_entries(binary)) == list(iter_entries(text))
    assert [e.value for e in iter_entries(binary)] == odd


def test_a_binary_bundle_verifies_as_its_text_twin(
    log: AuditLog, values: list[bytes], tmp_path: pathlib.Path
) -> None:
    text = _write(tmp_path, "b.jsonl", log.bundle_bytes(values))
    binary = _write(tmp_path, "b.bin", log.bundle_bytes(values, binary=True))
    reports = [
        verify_entries(iter_entries(p), registry=read_header(p).registry()) for p in (text, binary)
    ]
    assert reports[1].intact, [f.describe() for f in reports[1].findings]
    assert (reports[0].records, reports[0].signed_size) == (
        reports[1].records,
        reports[1].signed_size,
    )


def test_a_changed_record_in_a_binary_bundle_is_named(
    log: AuditLog, values: list[bytes], tmp_path: pathlib.Path
) -> None:
    data = bytearray(log.bundle_bytes(values, binary=True))
    first = values[0]
    at = bytes(data).index(first) + len(first) // 2
    data[at] ^= 0x01
    path = _write(tmp_path, "c.bin", bytes(data))
    report = verify_entries(iter_entries(path), registry=read_header(path).registry())
    assert report.first_problem is not None
    assert report.first_problem.index == 0


@pytest.mark.parametrize(
    ("name", "tail"),
    [
        ("a record cut in its prefix", b"\x00\x00\x00"),
        ("a record cut in its value", struct.pack(">QI", 99, 10) + b"short"),
        ("a length past any line", struct.pack(">QI", 99, 2**31) + b"x"),
        ("an offset Kafka cannot give", struct.pack(">QI", 2**63, 1) + b"x"),
    ],
)
def test_a_damaged_tail_is_one_damaged_entry_at_its_place(
    name: str, tail: bytes, log: AuditLog, tmp_path: pathlib.Path
) -> None:
    path = _write(tmp_path, "d.bin", log.bundle_bytes([b"one", b"two"], binary=True) + tail)
    entries = list(iter_entries(path))
    assert entries[:2] == [Entry(0, b"one"), Entry(1, b"two")]
    (damaged,) = entries[2:]
    assert damaged.damaged
    assert damaged.offset == 2 or damaged.offset == 2**63 - 1
