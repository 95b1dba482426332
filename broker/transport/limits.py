"""The byte limits Kafka must allow for the exchange's records, in one place.

Every cluster setting, producer and test that needs a size takes it from here, so a change
of the envelope limit moves all of them together; when the project's shared table of limits
lands, these names are the ones to point at it.

The largest record the exchange writes is a quarantine record that keeps the largest
envelope whole (base64 plus its fields): larger than any delivery frame or audit record. A
cluster whose ``message.max.bytes`` were below it would refuse that record, and the gateway
would read the same batch again and again; so ``message.max.bytes`` is that record plus the
framing of the batch that carries it.
"""

from __future__ import annotations

from typing import Final

from broker.envelope import MAX_ENVELOPE_BYTES
from broker.pipeline.records import max_quarantine_record_bytes

__all__ = ["MAX_ENVELOPE_BYTES", "MAX_RECORD_BYTES", "MESSAGE_MAX_BYTES", "request_bytes_for"]

#: the largest record any daemon of the exchange produces
MAX_RECORD_BYTES: Final = max_quarantine_record_bytes(MAX_ENVELOPE_BYTES)
#: a record batch's framing around one record: the v2 batch header (61 bytes), the record's
#: own varints, its key (a message id) and headers; generously rounded up
_BATCH_FRAMING: Final = 16 * 1024
#: ``message.max.bytes`` of every cluster the exchange runs on (deploy/ and the local one)
MESSAGE_MAX_BYTES: Final = MAX_RECORD_BYTES + _BATCH_FRAMING


def request_bytes_for(record_bytes: int) -> int:
    """A producer's ``max_request_size`` for records of up to ``record_bytes``: the record and
    its batch's framing, so the client never refuses what the cluster would accept."""
    return record_bytes + _BATCH_FRAMING
