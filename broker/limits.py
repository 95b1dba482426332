"""Every size limit of the exchange in one table, from the envelope to the Kafka broker.

A record any component writes must fit what the broker accepts, and a record the broker
accepted must fit what every consumer fetches; otherwise one record stalls a flow (a produce
the broker refuses is retried for ever, a record larger than a fetch is never returned). So
each limit is defined here, once, and derived from the others where it depends on them:

=================================  ===========  ================================================
limit                              bytes        what it bounds
=================================  ===========  ================================================
``ENVELOPE_FORMAT_MAX_BYTES``      2,170,880    the v1 envelope format (docs/PROTOCOL.md): a
                                                reader refuses anything larger before parsing
``MAX_ENVELOPE_BYTES``             1,048,576    the largest envelope the exchange carries: the
                                                default of ``limits.max_envelope_bytes``, which
                                                may lower it and never raise it
``DELIVERY_OVERHEAD_BYTES``        24,981       a delivery frame around its envelope (magic,
                                                lengths, attestation, gateway signature and
                                                its batch proof)
``QUARANTINE_PREFIX_BYTES``        16,384       the most of a refused record a quarantine
                                                record keeps (with the digest of all of it)
``QUARANTINE_RECORD_MAX_BYTES``    65,536       a whole quarantine record
``AUDIT_RECORD_MAX_BYTES``         65,536       a whole audit record (and a refusal summary)
``CHECKPOINT_RECORD_MAX_BYTES``    524,288      a checkpoint record on the audit topic
``REGISTRY_MAX_BYTES``             4,194,304    a registry document (or trusted roots) on disk
``REJECTED_PREFIX_BYTES``          4,096        the most of a refused frame an adapter keeps
``DISCLOSURE_BUNDLE_MAX_BYTES``    8,388,608    a disclosure bundle (and the evidence kept per
                                                view): a delivery frame in base64 and the
                                                revealed values
``LARGEST_RECORD_BYTES``           1,073,557    the largest record any component writes: a
                                                delivery frame of the largest envelope
``KAFKA_MESSAGE_MAX_BYTES``        1,100,000    the broker's ``message.max.bytes`` and every
                                                topic's ``max.message.bytes`` (deploy/), and
                                                every producer's largest request
``CONSUMER_PARTITION_FETCH_BYTES`` 1,100,000    what a consumer fetches per partition at least
``CONSUMER_FETCH_MAX_BYTES``       8,800,000    what a consumer fetches per request at most
=================================  ===========  ================================================

``tests/unit/test_limits.py`` holds the table consistent and checks every deployment
artefact against it; ``tests/integration/test_limits_on_the_wire.py`` sends a record at each
limit through the embedded broker and the real gateway.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ATTESTATION_MAX_BYTES",
    "AUDIT_RECORD_MAX_BYTES",
    "BATCH_PROOF_MAX_BYTES",
    "CHECKPOINT_RECORD_MAX_BYTES",
    "CONSUMER_FETCH_MAX_BYTES",
    "CONSUMER_PARTITION_FETCH_BYTES",
    "DELIVERY_FORMAT_MAX_BYTES",
    "DELIVERY_OVERHEAD_BYTES",
    "DISCLOSURE_BUNDLE_MAX_BYTES",
    "ENVELOPE_BODY_MAX_BYTES",
    "ENVELOPE_FORMAT_MAX_BYTES",
    "ENVELOPE_HEADER_MAX_BYTES",
    "ENVELOPE_SIGNATURE_MAX_BYTES",
    "GATEWAY_SIGNATURE_MAX_BYTES",
    "KAFKA_MESSAGE_MAX_BYTES",
    "LARGEST_RECORD_BYTES",
    "MAX_ENVELOPE_BYTES",
    "QUARANTINE_PREFIX_BYTES",
    "QUARANTINE_RECORD_MAX_BYTES",
    "REASON_MAX_CHARS",
    "RECORD_BATCH_OVERHEAD_BYTES",
    "REGISTRY_MAX_BYTES",
    "REJECTED_PREFIX_BYTES",
    "max_delivery_bytes",
]

KIB: Final = 1024
MIB: Final = 1024 * KIB

# -- the envelope format (docs/PROTOCOL.md section 1 and 4) ---------------------------------------
#: the largest padded body: the biggest bucket, so every length class stays a power of two
ENVELOPE_BODY_MAX_BYTES: Final = 2 * MIB
ENVELOPE_HEADER_MAX_BYTES: Final = 64 * KIB
ENVELOPE_SIGNATURE_MAX_BYTES: Final = 4 * KIB
#: checked before any parsing: the largest bucket, the largest header and hybrid overheads
ENVELOPE_FORMAT_MAX_BYTES: Final = ENVELOPE_BODY_MAX_BYTES + ENVELOPE_HEADER_MAX_BYTES + 8 * KIB

# -- what the exchange carries -----------------------------------------------------------------
#: the largest envelope on any outbox or inbox (``limits.max_envelope_bytes`` may only lower it)
MAX_ENVELOPE_BYTES: Final = 1 * MIB

# -- the gateway's records ---------------------------------------------------------------------
ATTESTATION_MAX_BYTES: Final = 16 * KIB
#: room for a hybrid (Ed25519 + ML-DSA-65) signature
GATEWAY_SIGNATURE_MAX_BYTES: Final = 8 * KIB
#: a batch signature's proof: u32 size, u32 index, u8 count and at most 12 hashes (4,096 leaves)
BATCH_PROOF_MAX_BYTES: Final = 4 + 4 + 1 + 12 * 32
#: b"XBD1" (or b"XBD2"), the attestation and signature with their u32 lengths, the proof
DELIVERY_OVERHEAD_BYTES: Final = (
    4 + 4 + ATTESTATION_MAX_BYTES + 4 + GATEWAY_SIGNATURE_MAX_BYTES + BATCH_PROOF_MAX_BYTES
)
#: the most of a refused record's value a quarantine record keeps, beside its SHA-256
QUARANTINE_PREFIX_BYTES: Final = 16 * KIB
QUARANTINE_RECORD_MAX_BYTES: Final = 64 * KIB
AUDIT_RECORD_MAX_BYTES: Final = 64 * KIB
#: a reason in a quarantine or audit record, cut to this many (ASCII) characters
REASON_MAX_CHARS: Final = 1024
#: a checkpoint record: the signed note and up to 4,096 leaf hashes in base64
CHECKPOINT_RECORD_MAX_BYTES: Final = 512 * KIB

# -- files the daemons and tools read ----------------------------------------------------------
#: a registry document (or trusted roots) on disk: thousands of keys' worth
REGISTRY_MAX_BYTES: Final = 4 * MIB

# -- the receiving adapter ---------------------------------------------------------------------
#: the most of a refused delivery frame the adapter's rejected table keeps, beside its SHA-256
REJECTED_PREFIX_BYTES: Final = 4 * KIB
#: a disclosure bundle or the evidence kept of one view: the delivery frame of the largest
#: envelope in base64 (4/3 of it) and the revealed values, each no larger than the message
#: (up to six times that once escaped), with room to spare; refused unread above this
DISCLOSURE_BUNDLE_MAX_BYTES: Final = 8 * MIB


def max_delivery_bytes(max_envelope_bytes: int) -> int:
    """The largest delivery frame around an envelope of up to ``max_envelope_bytes``."""
    return max_envelope_bytes + DELIVERY_OVERHEAD_BYTES


#: the largest delivery frame the format allows (what a receiver refuses above, unparsed)
DELIVERY_FORMAT_MAX_BYTES: Final = max_delivery_bytes(ENVELOPE_FORMAT_MAX_BYTES)

# -- Kafka ----------------------------------------------------------------------------------
#: the largest record value anybody in the exchange writes
LARGEST_RECORD_BYTES: Final = max(
    max_delivery_bytes(MAX_ENVELOPE_BYTES),
    MAX_ENVELOPE_BYTES,
    QUARANTINE_RECORD_MAX_BYTES,
    AUDIT_RECORD_MAX_BYTES,
    CHECKPOINT_RECORD_MAX_BYTES,
)
#: a record batch's header, the record's framing, its key (a message id) and headers
RECORD_BATCH_OVERHEAD_BYTES: Final = 4 * KIB
#: the broker's ``message.max.bytes``, every topic's ``max.message.bytes``, and the largest
#: request a producer makes: the largest record in its own batch, with room to spare
KAFKA_MESSAGE_MAX_BYTES: Final = 1_100_000
#: aiokafka ``max_partition_fetch_bytes``: at least any record batch the broker accepts
CONSUMER_PARTITION_FETCH_BYTES: Final = KAFKA_MESSAGE_MAX_BYTES
#: aiokafka ``fetch_max_bytes``: room for several partitions' largest batches per request
CONSUMER_FETCH_MAX_BYTES: Final = 8 * KAFKA_MESSAGE_MAX_BYTES
