"""End-to-end throughput and latency of the exchange, beside plain aiokafka on the same broker.

One run, one broker (the embedded one, or with ``--engine apache`` a local Apache Kafka
cluster: SASL_SSL with the ACL plan, idempotent producers and transactional gateway batches;
plain aiokafka then logs in over the same SASL_SSL), two measurements of the same volume and
record sizes:

* exchange: GB's adapter takes N reports from its spool (a burst, all written at once) and
  sends each to RS, MK and XK; the gateway routes the 3N views; each recipient verifies,
  decrypts and stores its views. A view's latency runs from its spool file being written to
  its file appearing in the recipient's delivery directory (both file times, one clock).
* plain Kafka, the same two hops: 3N records of the exchange's mean envelope size produced
  (acks=all) to one topic, relayed by a consumer to a second topic, consumed there. Latency
  runs from just before the first produce to each record's arrival at the last consumer.

The exchange's figures are printed as ratios of plain Kafka's: the cost of the secure path
(signatures, HPKE, policy, audit, durable de-duplication, receipts). Every daemon and the
broker share the machine's cores, so the absolute figures are the machine's, not the design's.

    python benchmarks/exchange_bench.py [--messages 300] [--rate 200]
                                        [--engine apache [--nodes 1] [--security sasl_ssl]]

With ``--rate R`` the reports are written R per second instead of in one burst: the
latency figures then describe the exchange at that load (plain Kafka is still a burst
of the same volume, so compare the latency columns, not their ratio, in that mode).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiokafka

from benchmarks.soak.driver import unlimited_accords
from broker.adapter import Spool, write_submission
from broker.config import acl_plan, outbox_topic, users_of
from broker.demo.federation import DEFAULT_PARTNERS, Federation, provision
from broker.demo.scenario import network_report
from broker.ids import PartnerCode
from broker.transport.access import KafkaAccess
from broker.transport.apache.cluster import ApacheCluster
from broker.transport.embedded import EmbeddedBroker

RECIPIENTS = ("RS", "MK", "XK")
ROOT = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _arrivals(federation: Federation, partner: str, seen: dict[Path, tuple[str, int]]) -> None:
    """Add each new view in ``partner``'s delivery directory to ``seen`` (path -> case id,
    arrival time in ns); files already seen are not read again, so polling stays cheap."""
    for path in federation.delivery_dir(partner).glob("*.json"):
        if path not in seen:
            document = json.loads(path.read_bytes())
            seen[path] = (document["message"]["case_id"], path.stat().st_mtime_ns)


def run_exchange(
    federation: Federation, messages: int, *, rate: float | None = None
) -> tuple[float, list[float]]:
    """Views per second and view latencies (s) through the whole exchange.

    Without ``rate`` every report is written at once (a burst); with it, one report every
    ``1 / rate`` seconds, on a fixed schedule (a late write does not shift the next ones).
    """
    spool = Spool(federation.spool_dir("GB"))
    to = [PartnerCode(code) for code in RECIPIENTS]
    submitted: dict[str, int] = {}
    reports = [(f"GB-BENCH-{i:05d}", network_report(f"GB-BENCH-{i:05d}")) for i in range(messages)]
    began = time.monotonic()
    for i, (case_id, message) in enumerate(reports):
        if rate is not None:
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the submission schedule: other processes do the work
        path = write_submission(spool.root, message, to)
        submitted[case_id] = path.stat().st_mtime_ns
    seen: dict[str, dict[Path, tuple[str, int]]] = {p: {} for p in RECIPIENTS}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for partner in RECIPIENTS:
            _arrivals(federation, partner, seen[partner])
        if all(len(found) >= messages for found in seen.values()):
            break
        time.sleep(0.25)  # other processes: polled, not awaited
    else:
        raise SystemExit(f"the exchange did not deliver everything: {seen}")
    arrivals = {p: dict(found.values()) for p, found in seen.items()}
    start = min(submitted.values())
    end = max(t for found in arrivals.values() for t in found.values())
    latencies = [
        (found[case_id] - submitted[case_id]) / 1e9
        for found in arrivals.values()
        for case_id in submitted
    ]
    return messages * len(RECIPIENTS) / ((end - start) / 1e9), latencies


async def run_plain(
    access: KafkaAccess, count: int, size: int, *, replicas: int = 1
) -> tuple[float, list[float]]:
    """Records per second and latencies (s) over two hops of plain aiokafka (acks=all, the
    cluster's security, idempotent where the engine allows, as the exchange's producers)."""
    bootstrap = access.bootstrap
    security = access.security().client_options()
    first, second = f"plain.a.{time.time_ns()}", f"plain.b.{time.time_ns()}"
    admin = aiokafka.admin.AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    try:
        await admin.create_topics(
            [aiokafka.admin.NewTopic(t, 3, replicas) for t in (first, second)], timeout_ms=30_000
        )
    finally:
        await admin.close()
    payload = b"x" * size

    async def consumer_of(topic: str) -> aiokafka.AIOKafkaConsumer:
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **security
        )
        await consumer.start()
        consumer.assign([aiokafka.TopicPartition(topic, p) for p in range(3)])
        await consumer.seek_to_beginning()
        return consumer

    producer = aiokafka.AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_batch_size=262_144,
        enable_idempotence=access.capabilities.idempotence,
        **security,
    )
    await producer.start()
    relay_in, sink = await consumer_of(first), await consumer_of(second)
    arrivals: list[float] = []

    async def relay() -> None:
        moved = 0
        while moved < count:
            batch = await relay_in.getmany(timeout_ms=200, max_records=500)
            futures = [
                await producer.send(second, record.value, key=record.key)
                for records in batch.values()
                for record in records
            ]
            await asyncio.gather(*futures)
            moved += len(futures)

    async def drain() -> None:
        while len(arrivals) < count:
            batch = await sink.getmany(timeout_ms=200, max_records=500)
            now = time.perf_counter()
            arrivals.extend(now for records in batch.values() for _ in records)

    try:
        tasks = [asyncio.create_task(relay()), asyncio.create_task(drain())]
        start = time.perf_counter()
        futures = [await producer.send(first, payload, key=str(i).encode()) for i in range(count)]
        await asyncio.gather(*futures)
        await asyncio.gather(*tasks)
    finally:
        await relay_in.stop()
        await sink.stop()
        await producer.stop()
    return count / (max(arrivals) - start), [t - start for t in arrivals]


async def _mean_envelope_size(access: KafkaAccess, topic: str) -> int:
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=access.bootstrap, group_id=None, **access.security().client_options()
    )
    await consumer.start()
    try:
        consumer.assign([aiokafka.TopicPartition(topic, p) for p in range(3)])
        await consumer.seek_to_beginning()
        batch = await consumer.getmany(timeout_ms=2_000, max_records=500)
        sizes = [len(r.value) for records in batch.values() for r in records if r.value]
    finally:
        await consumer.stop()
    return int(statistics.mean(sizes))


@contextlib.contextmanager
def _broker(args: Any, scratch: Path) -> Iterator[tuple[KafkaAccess, str]]:
    """The broker of this run, and how the report names it."""
    if args.engine == "embedded":
        with EmbeddedBroker(port=0) as kafka:
            yield KafkaAccess(bootstrap=kafka.bootstrap, engine="embedded"), "one embedded broker"
        return
    cluster = ApacheCluster.create(
        scratch / "apache-kafka",
        nodes=args.nodes,
        security=args.security,
        users=users_of(acl_plan(DEFAULT_PARTNERS, prefix="xb.")),
    )
    with cluster:
        yield (
            cluster.access(),
            f"Apache Kafka {cluster.record.version}, {args.nodes} node(s), {args.security}",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="reports (each to 3 partners)")
    parser.add_argument(
        "--rate", type=float, default=None, help="reports per second (default: one burst)"
    )
    parser.add_argument("--engine", choices=["embedded", "apache"], default="embedded")
    parser.add_argument("--nodes", type=int, default=1, help="apache: nodes of the cluster")
    parser.add_argument("--security", choices=["sasl_ssl", "plaintext"], default="sasl_ssl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _broker(args, Path(tmp)) as (access, where):
        root = Path(tmp)
        federation = provision(
            root / "federation", kafka=access, accords=unlimited_accords(root / "accords")
        )
        asyncio.run(federation.create_topics())
        with federation:
            for name in ("gateway", "GB", *RECIPIENTS):
                federation.start(name)
            rate, latencies = run_exchange(federation, args.messages, rate=args.rate)
        size = asyncio.run(_mean_envelope_size(access, outbox_topic(federation.prefix, "GB")))
        count = args.messages * len(RECIPIENTS)
        replicas = federation.topics(brokers=args.nodes if args.engine == "apache" else 1)[0]
        plain_rate, plain_latencies = asyncio.run(
            run_plain(access, count, size, replicas=replicas.replication_factor)
        )
    rows = [
        ("views/s", rate, plain_rate),
        ("p50 latency s", _percentile(latencies, 0.5), _percentile(plain_latencies, 0.5)),
        ("p99 latency s", _percentile(latencies, 0.99), _percentile(plain_latencies, 0.99)),
    ]
    pace = "burst submission" if args.rate is None else f"{args.rate:g} reports/s submitted"
    print(f"{args.messages} reports x {len(RECIPIENTS)} recipients = {count} views, "
          f"mean envelope {size} B, {pace}, {where}")  # fmt: skip
    print(f"{'':16}{'exchange':>12}{'plain kafka':>14}{'ratio':>10}")
    for label, ours, plain in rows:
        print(f"{label:16}{ours:12.3f}{plain:14.3f}{ours / plain:10.3f}")


if __name__ == "__main__":
    main()
