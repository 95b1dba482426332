"""`broker kafka topics create` provisions the exchange's topics on a real broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import aiokafka
import pytest

from broker.config import replication_for
from broker.demo.federation import provision
from broker.transport.admin import broker_ids, partition_leaders
from broker.transport.testing import KafkaUnderTest

pytestmark = pytest.mark.kafka


async def _topics(bootstrap: str, prefix: str) -> dict[str, int]:
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        names = [t for t in await consumer.topics() if t.startswith(prefix)]
    finally:
        await consumer.stop()
    # a client that subscribes to nothing is not told partitions: describe each topic
    return {t: len(await partition_leaders(bootstrap, t)) for t in names}


def _create(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker", "kafka", "topics", "create", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("source", ["partners", "registry"])
def test_topics_for_every_partner_are_created_once(
    kafka: KafkaUnderTest, tmp_path: Path, source: str
) -> None:
    """From --partners or a signed --registry: outbox and inbox per partner with N partitions,
    quarantine, and one-partition audit and witness topics; running it again changes nothing."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    if source == "partners":
        chosen = ["--partners", "GB,RS"]
        codes = ["GB", "RS"]
    else:
        federation = provision(tmp_path / "f", bootstrap=kafka.bootstrap, partners=["GB", "MK"])
        chosen = ["--registry", str(federation.registry_path)]
        codes = ["GB", "MK"]
    args = ["--bootstrap", kafka.bootstrap, "--prefix", prefix, *chosen, "--partitions", "2"]
    first = _create(*args)
    assert first.returncode == 0, first.stderr
    expected = {f"{prefix}{kind}.{code}": 2 for kind in ("inbox", "outbox") for code in codes}
    expected |= {f"{prefix}quarantine": 2, f"{prefix}audit": 1, f"{prefix}witness": 1}
    assert asyncio.run(_topics(kafka.bootstrap, prefix)) == expected
    again = _create(*args)
    assert again.returncode == 0, again.stderr
    assert asyncio.run(_topics(kafka.bootstrap, prefix)) == expected


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param([], 2, "exactly one of --partners or --registry", id="no-partners"),
        pytest.param(["--partners", "gb"], 2, "", id="bad-partner-code"),
        pytest.param(["--partners", "GB", "--prefix", "Bad"], 2, "prefix", id="bad-prefix"),
        pytest.param(
            ["--partners", "GB", "--min-insync-replicas", "2"], 2, "min.insync", id="isr-over-rf"
        ),
    ],
)
def test_bad_options_are_one_line_errors(
    kafka: KafkaUnderTest, args: list[str], code: int, message: str
) -> None:
    """Bad options exit 2 with one error line, before touching Kafka."""
    result = _create("--bootstrap", kafka.bootstrap, *args)
    assert result.returncode == code
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_defaults_fit_the_cluster_and_a_single_replica_is_said_out_loud(
    kafka: KafkaUnderTest,
) -> None:
    """Without --replication-factor the command asks the cluster its size: three replicas
    (two in sync) from three brokers on; on a smaller cluster one per broker, and a warning
    that the audit log would die with its broker."""
    if kafka.kafka_access.secured:
        pytest.fail("this test speaks PLAINTEXT: run it on a plaintext cluster", pytrace=False)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    result = _create("--bootstrap", kafka.bootstrap, "--prefix", prefix, "--partners", "GB")
    assert result.returncode == 0, result.stderr
    brokers = len(asyncio.run(broker_ids(kafka.bootstrap)))
    replicas, _ = replication_for(brokers)
    audit = asyncio.run(partition_leaders(kafka.bootstrap, f"{prefix}audit"))
    assert [len(isr) for _, isr in audit.values()] == [replicas]
    said = "warning: replication factor" in result.stderr
    assert said == (replicas < 3)
