"""The audit topic as a log: reading it to its end without end offsets, and checkpointing it.

- :func:`read_log`: every record of the one-partition audit topic in order, streamed;
- :func:`run_checkpointer`: the gateway-side task that appends signed checkpoints to the topic;
- :mod:`.entries`: how a checkpoint record is told apart from an audit record on the topic.

The gateway starts the checkpointer beside its routing loop (docs/AUDIT.md)::

    async with open_consumer(settings_for_a_fresh_group, [audit]) as source, \\
            open_producer(producer_settings) as sink:
        await run_checkpointer(source=source, sink=sink, topic=audit, key=gateway_key,
                               origin=checkpoint_origin(audit), clock=SystemClock(), stop=stop)
"""

from __future__ import annotations

from broker.ledger.checkpointer import CheckpointerStats, run_checkpointer
from broker.ledger.entries import (
    CHECKPOINT_PREFIX,
    MAX_LEAVES_PER_CHECKPOINT,
    CheckpointRecord,
    encode_checkpoint_record,
    is_checkpoint_record,
    parse_checkpoint_record,
)
from broker.ledger.reader import RecordSink, RecordSource, read_log

__all__ = [
    "CHECKPOINT_PREFIX",
    "MAX_LEAVES_PER_CHECKPOINT",
    "CheckpointRecord",
    "CheckpointerStats",
    "RecordSink",
    "RecordSource",
    "checkpoint_origin",
    "encode_checkpoint_record",
    "is_checkpoint_record",
    "parse_checkpoint_record",
    "read_log",
    "run_checkpointer",
]


def checkpoint_origin(topic: str) -> str:
    """The checkpoint origin line for an audit topic: ``broker/<topic>``."""
    return f"broker/{topic}"
