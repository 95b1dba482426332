"""A raw Kafka client for the attacker: any bytes, in any part of a record, on any topic.

An ordinary producer cannot write what an attacker would: aiokafka encodes header keys as
UTF-8 strings and computes correct checksums. This module builds record batches itself, from
Kafka's own protocol description (the v2 RecordBatch: a 61-byte header with a CRC-32C over
everything after it, then records of zig-zag varints and length-prefixed bytes), and sends
them with aiokafka's low-level client and ProduceRequest, so a record can carry a header key
that is not UTF-8, a null value, a null header value, a CRC that does not match, or lengths
that contradict its contents. Reading uses FetchRequest and this module's own batch decoder,
so the attacker's own reader never trips on what it wrote.

It imports nothing from ``broker``: it is the outsider's client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
import time
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.util import calc_crc32c

__all__ = ["Header", "RawKafka", "RawRecord", "Written", "decode_batches", "encode_batch"]

#: a header as it travels: key and value bytes (the value may be null)
Header = tuple[bytes, bytes | None]
_HEADER = struct.Struct(">hiqqqhii")  # attributes .. record count, after the CRC
_FETCH_BYTES = 16 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as the wire has it."""

    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[Header, ...] = ()
    offset: int = -1


@dataclasses.dataclass(frozen=True, slots=True)
class Written:
    """Where a produced batch's first record landed."""

    topic: str
    partition: int
    offset: int

    @property
    def position(self) -> str:
        """``<topic>/<partition>/<offset>``: the id the gateway gives what it reads there."""
        return f"{self.topic}/{self.partition}/{self.offset}"


def _varint(n: int) -> bytes:
    zigzag = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte, zigzag = zigzag & 0x7F, zigzag >> 7
        if not zigzag:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _nullable(data: bytes | None) -> bytes:
    return _varint(-1) if data is None else _varint(len(data)) + data


def _encode_record(index: int, record: RawRecord) -> bytes:
    body = b"\x00" + _varint(0) + _varint(index) + _nullable(record.key)
    body += _nullable(record.value) + _varint(len(record.headers))
    for name, value in record.headers:
        body += _varint(len(name)) + name + _nullable(value)
    return _varint(len(body)) + body


def encode_batch(
    records: Sequence[RawRecord], *, corrupt_crc: bool = False, record_bytes: bytes | None = None
) -> bytes:
    """A v2 record batch of ``records`` (``record_bytes`` replaces their encoding verbatim,
    for records whose lengths lie); ``corrupt_crc`` flips the checksum."""
    now = int(time.time() * 1000)
    encoded = record_bytes
    if encoded is None:
        encoded = b"".join(_encode_record(i, r) for i, r in enumerate(records))
    count = len(records)
    after_crc = _HEADER.pack(0, count - 1, now, now, -1, -1, -1, count) + encoded
    crc = calc_crc32c(after_crc) ^ (0xFFFFFFFF if corrupt_crc else 0)
    body = struct.pack(">ibI", 0, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(body)) + body


def decode_batches(data: bytes) -> tuple[list[RawRecord], int | None]:
    """Every record of every complete v2 batch in ``data`` (a fetch's record set), and the
    offset after the last complete batch (None if there was none)."""
    records: list[RawRecord] = []
    next_offset: int | None = None
    position = 0
    while position + 12 <= len(data):
        base_offset, length = struct.unpack_from(">qi", data, position)
        end = position + 12 + length
        if end > len(data) or data[position + 16] != 2:
            break  # a batch cut short by the fetch size, or not v2
        count = struct.unpack_from(">i", data, position + 57)[0]
        next_offset = base_offset + struct.unpack_from(">i", data, position + 23)[0] + 1
        cursor = _Cursor(data[:end], position + 61)
        try:
            for _ in range(count):
                cursor.varint()  # length
                cursor.position += 1  # attributes
                cursor.varint()  # timestamp delta
                offset_delta = cursor.varint()
                key, value = cursor.nullable(), cursor.nullable()
                count_headers = cursor.varint()
                headers = tuple(
                    (cursor.nullable() or b"", cursor.nullable()) for _ in range(count_headers)
                )
                records.append(RawRecord(key, value, headers, base_offset + offset_delta))
        except IndexError:
            pass  # a record that lies about its lengths: what came before it is read
        position = end
    return records, next_offset


class _Cursor:
    """Zig-zag varints and length-prefixed bytes from a position in a batch."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data, self.position = data, position

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.data[self.position]
            self.position += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (value >> 1) ^ -(value & 1)
            shift += 7

    def nullable(self) -> bytes | None:
        size = self.varint()
        if size < 0:
            return None
        if self.position + size > len(self.data):
            raise IndexError("a length runs past the batch")
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk


class RawKafka:
    """Produce raw batches and fetch raw records; ``async with RawKafka(bootstrap) as k``."""

    def __init__(self, bootstrap: str) -> None:
        self._client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)

    async def __aenter__(self) -> RawKafka:
        await self._client.bootstrap()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._client.close()

    async def topics(self) -> set[str]:
        """Every topic the cluster has (asked in a way that creates none)."""
        return set((await self._client.fetch_all_metadata()).topics())

    async def _leader(self, topic: str, partition: int) -> int:
        cluster = await self._client.fetch_all_metadata()
        leader = cluster.leader_for_partition(TopicPartition(topic, partition))
        if leader is None or leader < 0:
            raise LookupError(f"{topic}/{partition} has no leader (does the topic exist?)")
        return int(leader)

    async def produce(
        self,
        topic: str,
        records: Sequence[RawRecord] = (),
        *,
        partition: int = 0,
        batch: bytes | None = None,
    ) -> Written:
        """Write ``records`` (or a ready ``batch``) to one partition, acks=all."""
        data = batch if batch is not None else encode_batch(records)
        request = ProduceRequest(
            transactional_id=None,
            required_acks=-1,
            timeout=30_000,
            topics=[(topic, [(partition, data)])],
        )
        response = await self._client.send(await self._leader(topic, partition), request)
        answer = response.topics[0][1][0]
        error_code, offset = answer[1], answer[2]
        if error_code != 0:
            raise RuntimeError(f"the broker refused the batch for {topic}: error {error_code}")
        return Written(topic, partition, offset)

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        partition: int = 0,
    ) -> Written:
        """One record."""
        record = RawRecord(key, value, tuple(headers))
        return await self.produce(topic, [record], partition=partition)

    async def read(self, topic: str, *, quiet_s: float = 1.0) -> dict[int, list[RawRecord]]:
        """Every record of every partition of ``topic``, read until nothing new comes."""
        cluster = await self._client.fetch_all_metadata()
        found: dict[int, list[RawRecord]] = {}
        for partition in sorted(cluster.partitions_for_topic(topic) or ()):
            found[partition] = await self._read_partition(topic, partition, quiet_s)
        return found

    async def _read_partition(self, topic: str, partition: int, quiet_s: float) -> list[RawRecord]:
        leader = await self._leader(topic, partition)
        records: list[RawRecord] = []
        offset, last_news = 0, time.monotonic()
        while time.monotonic() - last_news < quiet_s:
            request = FetchRequest(
                max_wait_time=100,
                min_bytes=1,
                max_bytes=_FETCH_BYTES,
                isolation_level=0,
                topics=[(topic, [(partition, offset, _FETCH_BYTES)])],
            )
            response = await self._client.send(leader, request)
            fresh, after = decode_batches(bytes(response.topics[0][1][0][-1]))
            records += [r for r in fresh if r.offset >= offset]
            if after is not None and after > offset:
                offset, last_news = after, time.monotonic()
            else:
                await asyncio.sleep(0.1)
        return records
