"""Nothing lost, nothing doubled: the gateway and a receiving adapter are SIGKILLed at seeded
random points while a stream of reports flows, and restarted.

GB sends every report to RS, MK and XK (the accords' hourly and daily rate limits are lifted
for this run, so every view is allowed). A compromised GB also writes reports straight onto
its outbox that the XK accord forbids. Afterwards every report GB's adapter acknowledged is
in each recipient's inbox exactly once, nothing reached a partner it was not sent to, and
every forbidden report is in quarantine exactly once.

The message count is ``BROKER_E2E_MESSAGES`` (default 2,000 reports: 6,000 views and 6,000
receipts, about 80 s on two shared cores); the kill points come from ``BROKER_E2E_SEED``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.soak.driver import unlimited_accords
from broker.adapter import Spool, write_submission
from broker.config import inbox_topic, outbox_topic, quarantine_topic
from broker.demo.federation import Federation
from broker.ids import PartnerCode
from broker.pipeline import parse_quarantine_record
from broker.schema import TLP
from broker.transport.testing import KafkaUnderTest

from .harness import TopicReader, inbox, new_federation, produce, report, seal_as, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MESSAGES = int(os.environ.get("BROKER_E2E_MESSAGES", "2000"))
SEED = int(os.environ.get("BROKER_E2E_SEED", "20261128"))
RECIPIENTS = ("RS", "MK", "XK")
FORBIDDEN = 12
STEPS = 10
KILLS = (("gateway", 2), ("RS", 2))
_TIMEOUT_S = 240.0


def _kill_plan(rng: random.Random) -> dict[int, list[tuple[str, float]]]:
    """Which steps kill whom, and how long after the step's submissions (seeded)."""
    victims = [name for name, count in KILLS for _ in range(count)]
    steps = rng.sample(range(1, STEPS), len(victims))
    plan: dict[int, list[tuple[str, float]]] = {}
    for step, victim in zip(steps, victims, strict=True):
        plan.setdefault(step, []).append((victim, rng.uniform(0.0, 1.5)))
    return plan


@pytest.fixture
def crash_federation(kafka: KafkaUnderTest, tmp_path: Path) -> Federation:
    """A federation of its own (fresh topics), with rate limits lifted."""
    return new_federation(tmp_path / "federation", kafka, accords=unlimited_accords(tmp_path / "a"))


def test_sigkilled_gateway_and_adapter_lose_and_double_nothing(
    crash_federation: Federation,
) -> None:
    """Every acknowledged report reaches RS, MK and XK exactly once despite SIGKILLs of the
    gateway and of RS's adapter; no other partner gets anything; every forbidden report is
    quarantined exactly once."""
    federation, rng = crash_federation, random.Random(SEED)
    plan = _kill_plan(rng)
    with federation:
        for name in ("gateway", "GB", *RECIPIENTS):
            federation.start(name)
        spool = Spool(federation.spool_dir("GB"))
        to = [PartnerCode(code) for code in RECIPIENTS]
        case_ids = [f"GB-CRASH-{number:05d}" for number in range(MESSAGES)]
        forbidden: set[str] = set()
        per_step = -(-MESSAGES // STEPS)
        for step in range(STEPS):
            for case_id in case_ids[step * per_step : (step + 1) * per_step]:
                write_submission(spool.root, report(case_id), to)
            # the compromised sender's forbidden reports ride along the same outbox
            for _ in range(FORBIDDEN // STEPS + (step < FORBIDDEN % STEPS)):
                amber = report(f"GB-FORBIDDEN-{len(forbidden):03d}").model_copy(
                    update={"tlp": TLP.AMBER}
                )
                message_id, sealed = seal_as(federation, "GB", "XK", amber, accord="gb-xk")
                forbidden.add(message_id)
                asyncio.run(
                    produce(
                        federation.bootstrap,
                        outbox_topic(federation.prefix, "GB"),
                        sealed,
                        headers=[("xb-recipient", b"XK")],
                    )
                )
            for victim, delay_s in plan.get(step, []):
                # the seeded kill point itself (chaos timing), not a wait for an event
                time.sleep(delay_s)
                federation.kill(victim)
                federation.start(victim)

        # every submission acknowledged by Kafka (GB's adapter itself is never killed)
        wait_for(
            lambda: (
                not list(spool.incoming.iterdir())
                and not list(spool.rejected.iterdir())
                and federation.metrics("GB")["xb_adapter_journal_pending"] == 0
            ),
            timeout_s=_TIMEOUT_S,
            what="GB to have every view acknowledged",
        )
        assert not list(spool.rejected.iterdir())

        for partner in RECIPIENTS:

            def complete(partner: str = partner) -> Counter[str] | None:
                cases = Counter(
                    r.message.case_id or "" for r in inbox(federation, partner).values()
                )
                return cases if sum(cases.values()) >= MESSAGES else None

            cases = wait_for(complete, timeout_s=_TIMEOUT_S, what=f"{partner}'s {MESSAGES} views")
            assert cases == Counter(case_ids), partner  # each report once, nothing else

        for partner in ("TR", "AL"):
            assert (
                TopicReader(federation.bootstrap, inbox_topic(federation.prefix, partner)).read()
                == []
            )

        quarantined = [
            parse_quarantine_record(r.value)
            for r in TopicReader(federation.bootstrap, quarantine_topic(federation.prefix)).read()
            if r.value is not None
        ]
        distinct = {(q.message_id, q.id) for q in quarantined}
        assert Counter(message_id for message_id, _ in distinct) == Counter(forbidden)
        assert {q.reason_code.value for q in quarantined} == {"policy_denied"}
        assert not forbidden & set(inbox(federation, "XK"))

        dropped = {p: federation.metrics(p)["xb_adapter_replays_dropped_total"] for p in RECIPIENTS}
        duplicates = federation.metrics("gateway")["xb_gateway_duplicates_total"]
        print(
            f"\nseed {SEED}, {MESSAGES} reports x {len(RECIPIENTS)}, kills {plan}; redeliveries "
            f"dropped by receivers {dropped}, gateway duplicates {duplicates}"
        )
        assert federation.stop_all() == dict.fromkeys(("gateway", "GB", *RECIPIENTS), 0)
