"""The transport reads any bytes a broker stored as records, never as exceptions.

aiokafka's own reader raises on a header key that is not UTF-8, on a batch whose CRC does not
match and on records whose lengths lie, and loses the records it had decoded before the one
that failed. Here the batches of one fetch go through aiokafka's real PartitionRecords with
the transport's tolerant reader: every record comes out, in order, the bad ones marked.
"""

from __future__ import annotations

import struct

import aiokafka.consumer.fetcher as fetcher
from aiokafka import TopicPartition

from broker.transport import kafka  # installs the tolerant reader
from broker.transport._records import TolerantMemoryRecords
from tests.adversarial.rawkafka import RawRecord, encode_batch

TP = TopicPartition("xb.outbox.XK", 0)


def _at(batch: bytes, base_offset: int) -> bytes:
    """A batch as a broker returns it: with its base offset filled in."""
    return struct.pack(">q", base_offset) + batch[8:]


def _read(data: bytes) -> list[kafka.Record]:
    records = fetcher.PartitionRecords(
        TP, TolerantMemoryRecords(data), None, 0, None, None, True, fetcher.READ_UNCOMMITTED
    )
    return [kafka._record(message) for message in records]


def test_the_tolerant_reader_is_the_one_aiokafka_uses() -> None:
    """Importing the transport puts the reader in aiokafka's fetcher (pinned aiokafka 0.14.0:
    if its fetcher stops reading batches through this name, this fails)."""
    assert fetcher.MemoryRecords is TolerantMemoryRecords


def test_every_record_of_a_fetch_arrives_the_undecodable_ones_marked() -> None:
    """Good records before and after the bad ones are all there, in offset order."""
    batches = [
        encode_batch([RawRecord(b"k", b"first", ((b"xb-recipient", b"GB"),))]),
        encode_batch(
            [
                RawRecord(b"k", b"second"),
                RawRecord(b"\xff", b"bad key", ((b"\xff\xfe", b"v"),)),
                RawRecord(None, None, ((b"h", None),)),
            ]
        ),
        encode_batch([RawRecord(b"k", b"crc")], corrupt_crc=True),
        encode_batch([RawRecord(b"k", b"v")], record_bytes=bytes([0x40, 0, 0, 0, 2, 0x6B])),
        encode_batch([RawRecord(b"k", b"last")]),
    ]
    offsets = [0, 1, 4, 5, 6]
    records = _read(b"".join(_at(b, o) for b, o in zip(batches, offsets, strict=True)))
    assert [(r.offset, r.value, r.defect) for r in records] == [
        (0, b"first", None),
        (1, b"second", None),
        (2, b"bad key", "header key 0 is not UTF-8"),
        (3, None, "header 0 has a null value"),
        (4, None, "the record batch fails its CRC"),
        (5, None, "a record cannot be decoded (a length runs past the end of the batch)"),
        (6, b"last", None),
    ]
    assert records[0].headers == (("xb-recipient", b"GB"),)
    assert records[2].headers == (("\\xff\\xfe", b"v"),)
    assert records[2].key == b"\xff"
