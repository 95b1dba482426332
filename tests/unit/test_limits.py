"""The one table of limits holds together, and every place that sets a size follows it.

A record larger than the broker accepts is refused on produce and retried for ever; a record
larger than a consumer fetches is never returned. Either stalls a flow, so each producer's
largest record must fit ``message.max.bytes`` (and the topic's ``max.message.bytes``), and
each consumer must fetch at least that much. The deployment artefacts are read as their
consumers read them; the code's settings are read from the objects the daemons build.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from broker import envelope, limits
from broker.config import topic_plan
from broker.config._model import LimitSettings
from broker.ledger import MAX_ENTRIES_PER_CHECKPOINT, Refusal, encode_checkpoint_record
from broker.pipeline import MAX_DELIVERY_BYTES
from broker.transport.kafka import ConsumerSettings, ProducerSettings

from .deploy_artifacts._deploy import DEPLOY, K8S, load_yaml_documents


def test_the_largest_record_of_every_kind_fits_the_broker_with_room_for_its_batch() -> None:
    """Each kind of record, in a batch of its own, is within message.max.bytes."""
    largest = {
        "envelope on an outbox": limits.MAX_ENVELOPE_BYTES,
        "delivery frame on an inbox": limits.max_delivery_bytes(limits.MAX_ENVELOPE_BYTES),
        "quarantine record": limits.QUARANTINE_RECORD_MAX_BYTES,
        "audit record": limits.AUDIT_RECORD_MAX_BYTES,
        "checkpoint record": limits.CHECKPOINT_RECORD_MAX_BYTES,
    }
    assert max(largest.values()) == limits.LARGEST_RECORD_BYTES
    for what, size in largest.items():
        assert size + limits.RECORD_BATCH_OVERHEAD_BYTES <= limits.KAFKA_MESSAGE_MAX_BYTES, what


def test_consumers_fetch_at_least_what_the_broker_accepts() -> None:
    """Per partition and per request, every consumer's fetch takes the largest batch."""
    options = ConsumerSettings(bootstrap="127.0.0.1:9092", group_id="g", client_id="c")
    fetch = options.client_options()
    assert fetch["max_partition_fetch_bytes"] == limits.CONSUMER_PARTITION_FETCH_BYTES
    assert fetch["fetch_max_bytes"] == limits.CONSUMER_FETCH_MAX_BYTES
    assert limits.CONSUMER_PARTITION_FETCH_BYTES >= limits.KAFKA_MESSAGE_MAX_BYTES
    assert limits.CONSUMER_FETCH_MAX_BYTES >= limits.CONSUMER_PARTITION_FETCH_BYTES


def test_producers_may_send_the_largest_record_and_nothing_the_broker_refuses() -> None:
    """The producers' request bound is the broker's message limit, no more, no less."""
    options = ProducerSettings(bootstrap="127.0.0.1:9092", client_id="c").client_options()
    assert options["max_request_size"] == limits.KAFKA_MESSAGE_MAX_BYTES


def test_the_configured_envelope_limit_never_exceeds_the_table() -> None:
    """limits.max_envelope_bytes defaults to the table's value and cannot be raised past it,
    which is itself within the envelope format's own bound."""
    assert LimitSettings().max_envelope_bytes == limits.MAX_ENVELOPE_BYTES
    with pytest.raises(ValueError, match="less than or equal"):
        LimitSettings(max_envelope_bytes=limits.MAX_ENVELOPE_BYTES + 1)
    assert limits.MAX_ENVELOPE_BYTES <= envelope.MAX_ENVELOPE_BYTES
    assert envelope.MAX_ENVELOPE_BYTES == limits.ENVELOPE_FORMAT_MAX_BYTES
    assert limits.max_delivery_bytes(limits.ENVELOPE_FORMAT_MAX_BYTES) == MAX_DELIVERY_BYTES


def test_the_largest_checkpoint_record_fits_its_limit() -> None:
    """A checkpoint listing the most entries it may (leaves or refusals, the longer), with a
    long signed note, fits."""
    note = b"broker/xb.audit\n" + b"9" * 20 + b"\n" + b"A" * 44 + b"\n\n" + b"\xe2\x80\x94 " * 2000
    for leaves, refused in ((MAX_ENTRIES_PER_CHECKPOINT, 0), (0, MAX_ENTRIES_PER_CHECKPOINT)):
        record = encode_checkpoint_record(
            note,
            first=2**40,
            leaves=[b"\xff" * 32] * leaves,
            refused=[(2**50 + i, Refusal.BAD_CHECKPOINT) for i in range(refused)],
            through=2**50 + MAX_ENTRIES_PER_CHECKPOINT,
        )
        assert len(record) <= limits.CHECKPOINT_RECORD_MAX_BYTES


def test_every_topic_of_the_plan_carries_the_message_limit() -> None:
    """``broker kafka topics create`` and the demo create topics that take the largest record."""
    plan = topic_plan(["GB", "RS"], prefix="xb.", partitions=3, replication_factor=3,
                      min_insync_replicas=2)  # fmt: skip
    assert {t.configs["max.message.bytes"] for t in plan} == {str(limits.KAFKA_MESSAGE_MAX_BYTES)}


def _properties(text: str, name: str) -> set[str]:
    return set(re.findall(rf"^\s*{re.escape(name)}\s*[=:]\s*(\d+)", text, flags=re.MULTILINE))


@pytest.mark.parametrize(
    "artefact",
    [DEPLOY / "kafka" / "cluster.properties", K8S / "kafka.yaml"],
    ids=["compose broker (cluster.properties)", "Strimzi Kafka (k8s/kafka.yaml)"],
)
def test_every_broker_artefact_sets_message_max_bytes_from_the_table(artefact: Path) -> None:
    """The broker-wide message limit in each deployment is the table's."""
    found = _properties(artefact.read_text(encoding="utf-8"), "message.max.bytes")
    assert found == {str(limits.KAFKA_MESSAGE_MAX_BYTES)}


def test_every_topic_artefact_sets_max_message_bytes_from_the_table() -> None:
    """Every topic of the compose script and of the Strimzi topics has the table's limit."""
    script = (DEPLOY / "kafka" / "topics.sh").read_text(encoding="utf-8")
    creates = [line for line in script.splitlines() if line.startswith("kafka-topics.sh")]
    assert creates
    expected = f"--config max.message.bytes={limits.KAFKA_MESSAGE_MAX_BYTES}"
    assert all(expected in line for line in creates)
    topics = load_yaml_documents(K8S / "topics.yaml")
    assert topics
    assert {d["spec"]["config"]["max.message.bytes"] for d in topics} == {
        str(limits.KAFKA_MESSAGE_MAX_BYTES)
    }


def test_the_largest_batch_proof_fits_its_limit() -> None:
    """A proof in the largest batch (the deepest path) takes exactly the room the table
    gives delivery frames for it."""
    from broker import crypto

    deepest = crypto.BatchProof(
        crypto.MAX_BATCH, 0, (bytes(32),) * (crypto.MAX_BATCH - 1).bit_length()
    )
    assert len(deepest.to_bytes()) == limits.BATCH_PROOF_MAX_BYTES
