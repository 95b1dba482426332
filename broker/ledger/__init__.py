"""The audit topic as a log: judging what is on it, reading it to its end without end offsets,
and checkpointing it.

- :func:`judge_record`: the one judgment of a topic record (a leaf, a checkpoint, refused);
- :func:`read_log`: every record of the one-partition audit topic in order, streamed;
- :func:`run_checkpointer`: the gateway-side task that appends signed checkpoints to the topic;
- :mod:`.entries`: the checkpoint record format, told apart from an audit record by its start;
- :mod:`.registered`: which registered keys sign and cosign checkpoints.

The gateway starts the checkpointer beside its routing loop (docs/AUDIT.md)::

    async with open_consumer(settings_for_a_fresh_group, [audit]) as source, \\
            open_producer(producer_settings) as sink:
        await run_checkpointer(source=source, sink=sink, topic=audit, key=gateway_key,
                               origin=checkpoint_origin(audit), registry=lambda: registry,
                               clock=SystemClock(), stop=stop)
"""

from __future__ import annotations

from broker.ledger.admission import Admitted, Judgment, Refused, SeenCheckpoint, judge_record
from broker.ledger.checkpointer import CheckpointerStats, RefusedRecord, run_checkpointer
from broker.ledger.entries import (
    CHECKPOINT_PREFIX,
    CHECKPOINT_RECORD_VERSION,
    MAX_ENTRIES_PER_CHECKPOINT,
    CheckpointRecord,
    Refusal,
    encode_checkpoint_record,
    is_checkpoint_record,
    parse_checkpoint_record,
)
from broker.ledger.position import POSITION_FILE, PositionMismatch, SavedPosition
from broker.ledger.reader import RecordSink, RecordSource, read_log
from broker.ledger.registered import (
    Cosigner,
    log_keys_at,
    open_registered_checkpoint,
    registered_cosigners,
)
from broker.ledger.written import WrittenLeaves

__all__ = [
    "CHECKPOINT_PREFIX",
    "CHECKPOINT_RECORD_VERSION",
    "MAX_ENTRIES_PER_CHECKPOINT",
    "POSITION_FILE",
    "Admitted",
    "CheckpointRecord",
    "CheckpointerStats",
    "Cosigner",
    "Judgment",
    "PositionMismatch",
    "RecordSink",
    "RecordSource",
    "Refusal",
    "Refused",
    "RefusedRecord",
    "SavedPosition",
    "SeenCheckpoint",
    "WrittenLeaves",
    "checkpoint_origin",
    "encode_checkpoint_record",
    "is_checkpoint_record",
    "judge_record",
    "log_keys_at",
    "open_registered_checkpoint",
    "parse_checkpoint_record",
    "read_log",
    "registered_cosigners",
    "run_checkpointer",
]


def checkpoint_origin(topic: str) -> str:
    """The checkpoint origin line (and the log's note key name) for an audit topic:
    ``broker/<topic>``."""
    return f"broker/{topic}"
