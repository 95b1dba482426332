"""Injected duplicates (R6): byte-identical copies of a seeded 1% of GB's outbox records and
of the deliveries on RS's, MK's and XK's inboxes change nothing; the gateway's and the
receivers' duplicate counters rise by exactly the injected copies; and a reused message id
with different bytes is quarantined as a replay conflict (the alert), not delivered."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from benchmarks.soak.driver import copy_records, report, wait_until
from broker.checker import read_inboxes, read_quarantine
from broker.config import inbox_topic, outbox_topic
from broker.demo.federation import Federation
from broker.ids import MessageId
from broker.schema import DataCategory, redact
from tests.e2e.harness import produce, seal_as

from .flow import RECIPIENTS, SEED, drain, run_stream

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

_WAIT_S = 120.0
_CONFLICTS = 'xb_gateway_quarantined_total{reason_code="replay_conflict"}'


def _dropped(federation: Federation) -> float:
    return sum(federation.metrics(p)["xb_adapter_replays_dropped_total"] for p in RECIPIENTS)


def test_injected_copies_are_counted_and_change_nothing(
    federation: Federation, tmp_path: Path
) -> None:
    """After the stream has been delivered, copies are injected on both hops; the counters
    account for each copy and the history check still passes."""
    rng = random.Random(SEED)
    with federation:
        for name in ("gateway", "GB", *RECIPIENTS):
            federation.start(name)
        driver = run_stream(federation, tmp_path / "gb.jsonl", stem="DUP")
        first = drain(federation, driver)
        assert first.passed, first.to_json()
        gateway_before = federation.metrics("gateway")["xb_gateway_duplicates_total"]
        dropped_before = _dropped(federation)

        bootstrap, prefix = federation.bootstrap, federation.prefix
        outbox_copies = asyncio.run(
            copy_records(bootstrap, outbox_topic(prefix, "GB"), fraction=0.01, rng=rng, minimum=2)
        )
        inbox_copies = sum(
            asyncio.run(copy_records(bootstrap, inbox_topic(prefix, p), fraction=0.01, rng=rng))
            for p in RECIPIENTS
        )
        assert outbox_copies >= 2
        assert inbox_copies >= len(RECIPIENTS)

        # the alert: a delivered message id reused for other bytes
        reused = next(r for r in read_inboxes({"RS": federation.inbox_path("RS")}) if r.key)
        _, forged = seal_as(
            federation,
            "GB",
            "RS",
            # the view GB would send RS (biometrics redacted), other bytes under a reused id
            redact(report("GB-DUP-CONFLICT"), [DataCategory.BIOMETRIC]),
            accord="gb-rs",
            message_id=MessageId(reused.message_id),
        )
        asyncio.run(
            produce(
                bootstrap, outbox_topic(prefix, "GB"), forged, headers=[("xb-recipient", b"RS")]
            )
        )

        assert wait_until(
            lambda: (
                federation.metrics("gateway")["xb_gateway_duplicates_total"]
                == gateway_before + outbox_copies
                and _dropped(federation) == dropped_before + inbox_copies
                and federation.metrics("gateway").get(_CONFLICTS) == 1
            ),
            timeout_s=_WAIT_S,
        ), (
            federation.metrics("gateway")["xb_gateway_duplicates_total"] - gateway_before,
            outbox_copies,
            _dropped(federation) - dropped_before,
            inbox_copies,
        )
        conflicts = [
            q
            for q in asyncio.run(read_quarantine(bootstrap, prefix))[0]
            if q.reason_code == "replay_conflict"
        ]
        assert [(q.message_id, q.recipient) for q in conflicts] == [(reused.message_id, "RS")]

        verdict = drain(federation, driver)
        assert verdict.passed, verdict.to_json()
        assert verdict.counts["stored"] == first.counts["stored"]
        assert federation.metrics("gateway")["xb_gateway_duplicates_total"] == (
            gateway_before + outbox_copies
        )
