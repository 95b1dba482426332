"""Record batches read so that ANY bytes a broker stored arrive as records, never as exceptions.

aiokafka decodes every header key as strict UTF-8. One record whose header key is not UTF-8
(any producer can write one) makes ``getmany()`` raise ``UnicodeDecodeError``; worse, the
records of that fetch it had already decoded are dropped while its position moves past them,
and the next fetch meets the same record again: a consumer that fails closed on it is stopped
for good, one that carries on loses records. The same holds for a batch whose CRC does not
match or whose records contradict their own lengths.

:class:`TolerantMemoryRecords` replaces aiokafka's ``MemoryRecords`` in its fetcher (installed
by :func:`install`, once, from :mod:`broker.transport.kafka`). A batch aiokafka decodes is
returned exactly as aiokafka decodes it (its C code stays the fast path). A batch it cannot
decode is decoded here, record by record, with header keys kept as the bytes they are; what
cannot be decoded at all (a CRC mismatch, a compressed batch, records cut short) becomes ONE
marked record at the first offset not yet returned, and the batch's remaining offsets are
consumed with it. :func:`defect_of` tells the transport what, if anything, is wrong with a
record, so daemons can refuse it and move on.

Only aiokafka 0.14.0's fetcher is adapted (pinned in pyproject.toml); the test
``tests/unit/transport/test_tolerant_records.py`` fails if that seam moves.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator
from typing import Any, Final

import aiokafka.consumer.fetcher
from aiokafka.record.memory_records import MemoryRecords

__all__ = ["TolerantMemoryRecords", "defect_of", "install"]

_LOG_OVERHEAD: Final = 12  # base offset (8) + batch length (4)
_RECORDS_START: Final = 61  # the v2 batch header: offsets, epoch, magic, CRC, ... record count
_COMPRESSION_MASK: Final = 0x07
# Headers are bytes on the wire; a key that is not UTF-8 is decoded with "surrogateescape",
# so it arrives as a str with lone surrogates, which no UTF-8 key ever decodes to.
_KEY_ERRORS: Final = "surrogateescape"


class BatchDefect(str):
    """Why a batch, or the rest of it, could not be decoded (carried in ``checksum``)."""

    __slots__ = ()


@dataclasses.dataclass(frozen=True, slots=True)
class _Record:
    """What aiokafka's fetcher reads from a record (its ``DefaultRecord`` attributes)."""

    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    # aiokafka passes ``checksum`` through to ConsumerRecord untouched; a marked record uses
    # it to say what is wrong, so the mark survives without changing aiokafka's record type
    checksum: BatchDefect | None = None


def defect_of(message: Any) -> str | None:
    """What makes a consumed record unreadable as one of ours, or None if nothing does."""
    if isinstance(message.checksum, BatchDefect):
        return str(message.checksum)
    for index, (name, value) in enumerate(message.headers):
        if not _is_utf8(name):
            return f"header key {index} is not UTF-8"
        if value is None:
            return f"header {index} has a null value"
    return None


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _TolerantBatch:
    """One v2 batch: aiokafka's decoding when it works, ours when it does not."""

    def __init__(self, batch: Any, raw: memoryview) -> None:
        self._batch = batch
        self._raw = raw
        self._records: Iterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        # base_offset, next_offset, is_control_batch, producer_id, ...: aiokafka's own
        return getattr(self._batch, name)

    def validate_crc(self) -> bool:
        # A CRC mismatch is reported as a marked record (see _decode), not as aiokafka's
        # CorruptRecordException, which would stop the consumer at this offset for good.
        return True

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._records is None:
            self._records = iter(self._decode())
        return next(self._records)

    def _decode(self) -> list[Any]:
        if not self._batch.validate_crc():
            return [_marked(self._batch, self._batch.base_offset, "the record batch fails its CRC")]
        try:
            return list(self._batch)
        except Exception:  # noqa: BLE001 - whatever aiokafka trips on, decode it ourselves
            return _decode_batch(bytes(self._raw), self._batch)


class TolerantMemoryRecords:
    """aiokafka's ``MemoryRecords``, whose v2 batches never raise on their records' contents."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._records = MemoryRecords(data)
        self._position = 0

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        if batch is None:
            return None
        # aiokafka's MemoryRecords takes batches in order, each 12 bytes + its length field
        start = self._position
        (length,) = struct.unpack_from(">i", self._data, start + 8)
        self._position = start + _LOG_OVERHEAD + length
        if batch.magic < 2:
            return batch  # the legacy formats carry no headers; aiokafka reads them as is
        # a view, not a copy: the bytes are read again only if aiokafka cannot decode them
        return _TolerantBatch(batch, memoryview(self._data)[start : self._position])


def install() -> None:
    """Make aiokafka's fetcher read batches through :class:`TolerantMemoryRecords`."""
    aiokafka.consumer.fetcher.MemoryRecords = TolerantMemoryRecords


def _marked(batch: Any, offset: int, why: str) -> _Record:
    return _Record(
        offset=offset,
        timestamp=batch.first_timestamp,
        timestamp_type=batch.timestamp_type,
        key=None,
        value=None,
        headers=[],
        checksum=BatchDefect(why),
    )


def _decode_batch(raw: bytes, batch: Any) -> list[Any]:
    """Every record of an uncompressed v2 batch; the undecodable rest as one marked record."""
    if batch.attributes & _COMPRESSION_MASK:
        return [_marked(batch, batch.base_offset, "a compressed record batch cannot be decoded")]
    records: list[Any] = []
    reader = _Reader(raw, _RECORDS_START)
    (count,) = struct.unpack_from(">i", raw, _RECORDS_START - 4)
    try:
        for _ in range(max(count, 0)):
            records.append(_read_record(reader, batch))
        reader.at_end()
    except (ValueError, IndexError, struct.error) as exc:
        offset = records[-1].offset + 1 if records else batch.base_offset
        records.append(_marked(batch, offset, f"a record cannot be decoded ({exc})"))
    return records


def _read_record(reader: _Reader, batch: Any) -> _Record:
    length = reader.varint()
    end = reader.position + length
    reader.take(1)  # attributes: unused in v2 records
    timestamp_delta = reader.varint()
    offset_delta = reader.varint()
    key, value = reader.nullable(), reader.nullable()
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(reader.varint()):
        name = reader.nullable()
        if name is None:
            raise ValueError("a header key is null")
        headers.append((name.decode("utf-8", _KEY_ERRORS), reader.nullable()))
    if reader.position != end:
        raise ValueError("a record's length does not match its contents")
    log_append_time = batch.timestamp_type == 1
    timestamp = batch.max_timestamp if log_append_time else batch.first_timestamp + timestamp_delta
    return _Record(
        offset=batch.base_offset + offset_delta,
        timestamp=timestamp,
        timestamp_type=batch.timestamp_type,
        key=key,
        value=value,
        headers=headers,
    )


class _Reader:
    """Kafka's zig-zag varints and length-prefixed byte strings, bounds-checked."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position

    def take(self, count: int) -> bytes:
        if count < 0 or self.position + count > len(self.data):
            raise ValueError("a length runs past the end of the batch")
        chunk = self.data[self.position : self.position + count]
        self.position += count
        return chunk

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (value >> 1) ^ -(value & 1)
            shift += 7
            if shift > 63:
                raise ValueError("a varint is longer than 10 bytes")

    def at_end(self) -> None:
        if self.position != len(self.data):
            raise ValueError("bytes left over after the last record")

    def nullable(self) -> bytes | None:
        length = self.varint()
        return None if length == -1 else self.take(length)
