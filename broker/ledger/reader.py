"""Read the audit topic from its first record to its end, in order, without end offsets.

The embedded broker answers ``end_offsets`` wrongly, so the end of the log is found the way a
tail reader finds it: by fetching until nothing more arrives for a quiet period (or until a
given number of entries has been read). Records are yielded one at a time and never
collected, so memory stays constant however long the log is.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from broker.errors import UsageError
from broker.transport.kafka import Delivery, Record

__all__ = ["RecordSink", "RecordSource", "read_log"]

_POLL_MS = 500


class RecordSource(Protocol):
    """What reading needs of a consumer; :class:`broker.transport.kafka.Consumer` has it."""

    async def fetch(self, *, timeout_ms: int, max_records: int | None = None) -> list[Record]:
        """The records available within ``timeout_ms``, possibly none, in offset order."""
        ...


class RecordSink(Protocol):
    """What checkpointing needs of a producer; :class:`broker.transport.kafka.Producer` has it."""

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Delivery:
        """Send one record and wait for its acknowledgement."""
        ...


async def read_log(
    source: RecordSource,
    *,
    quiet_s: float = 3.0,
    first_wait_s: float = 20.0,
    count: int | None = None,
) -> AsyncIterator[Record]:
    """Every record of one-partition topics from the start, in offset order per topic.

    Stops after ``count`` records when given; otherwise once no record has arrived for
    ``quiet_s`` seconds. Before the first record it waits up to ``first_wait_s`` (a group
    join alone takes a few seconds); an empty topic yields nothing.
    """
    if quiet_s <= 0 or first_wait_s <= 0:
        raise UsageError("quiet_s and first_wait_s must be positive")
    if count is not None and count < 0:
        raise UsageError("count must be >= 0")
    seen = 0
    last_offsets: dict[tuple[str, int], int] = {}
    last_arrival = time.monotonic()
    while count is None or seen < count:
        wanted = None if count is None else count - seen
        batch = await source.fetch(timeout_ms=_POLL_MS, max_records=wanted)
        now = time.monotonic()
        if not batch:
            patience = first_wait_s if seen == 0 else quiet_s
            if now - last_arrival >= patience:
                return
            continue
        last_arrival = now
        for record in batch:
            # A rebalance may hand back records already read; the log is read exactly once.
            where = (record.topic, record.partition)
            if record.offset <= last_offsets.get(where, -1):
                continue
            last_offsets[where] = record.offset
            seen += 1
            yield record
