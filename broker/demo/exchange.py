"""The exchange demonstrated: GB shares one report with RS, MK and XK through the running
daemons, each receives its own redacted view and receipts it; a forbidden flow is stopped.

Everything goes through the daemons' public surfaces: ``broker send`` into GB's spool, the
recipients' delivery directories, the gateway's ``/metrics``. Only the forbidden flow is
written around GB's adapter (it would refuse it): sealed with GB's key and put on GB's outbox,
as a compromised adapter could.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from broker import envelope, errors
from broker.config import outbox_topic
from broker.cosign import accord_digest
from broker.demo.federation import Federation
from broker.ids import AccordId, PartnerCode
from broker.policy import load_accord
from broker.schema import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Message,
    Purpose,
    categories_present,
    labels_of,
    message_bytes,
    parse_message,
    redact,
)
from broker.transport.kafka import open_producer

__all__ = ["RECIPIENTS", "DemoResult", "View", "example_report", "run_exchange_demo"]

RECIPIENTS: Final = ("RS", "MK", "XK")
T = TypeVar("T")
_POLL_S: Final = 0.2
_EXAMPLE: Final = (
    Path(__file__).resolve().parents[2] / "schemas" / "examples" / "network.report.json"
)


@dataclasses.dataclass(frozen=True)
class View:
    """What one recipient stored: the categories present, and those its accord removed."""

    recipient: str
    present: frozenset[DataCategory]
    removed: frozenset[DataCategory]


@dataclasses.dataclass(frozen=True)
class DemoResult:
    """The demo's observations."""

    case_id: str
    sent: frozenset[DataCategory]
    views: tuple[View, ...]
    receipts_from: tuple[str, ...]
    policy_denied: float


def example_report(case_id: str) -> Message:
    """The example network report marked so that GB may send it to RS, MK and XK:
    OFFICIAL, TLP:GREEN, H0, people-smuggling, without source-identifying or financial fields."""
    original = parse_message(_EXAMPLE.read_bytes())
    marked = original.model_copy(
        update={
            "classification": Classification.OFFICIAL,
            "tlp": TLP.GREEN,
            "handling": HandlingCode.H0,
            "handling_conditions": (),
            "purposes": frozenset({Purpose.PEOPLE_SMUGGLING}),
            "case_id": case_id,
            "expires": None,
        }
    )
    return redact(marked, [DataCategory.SOURCE_IDENTIFYING, DataCategory.FINANCIAL])


def _delivered(federation: Federation, partner: str, case_id: str) -> list[tuple[str, Message]]:
    found = []
    for path in federation.delivery_dir(partner).glob("*.json"):
        document = json.loads(path.read_bytes())
        message = parse_message(json.dumps(document["message"]).encode())
        if message.case_id == case_id:
            found.append((str(document["sender"]), message))
    return found


def _poll(probe: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while (value := probe()) is None:
        if time.monotonic() > deadline:
            raise errors.AvailabilityError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(_POLL_S)  # the daemons are other processes: polled, not awaited
    return value


def run_exchange_demo(
    federation: Federation, *, work_dir: Path, timeout_s: float = 60.0
) -> DemoResult:
    """Send the example report GB -> RS, MK, XK and a forbidden one; report what happened.

    The gateway and the adapters of GB, RS, MK and XK must be running.
    """
    case_id = f"GB-DEMO-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    report = example_report(case_id)
    source = work_dir / f"{case_id}.json"
    source.write_bytes(message_bytes(report))
    config = str(federation.config_path("GB"))
    command = [sys.executable, "-m", "broker", "send", "--config", config,
               "--to", ",".join(RECIPIENTS), str(source)]  # fmt: skip
    sent = subprocess.run(command, capture_output=True, text=True, check=False)
    if sent.returncode != 0:
        raise errors.UsageError(f"broker send failed: {sent.stderr.strip()}")
    sent_categories = categories_present(report)
    views = []
    for partner in RECIPIENTS:

        def one(partner: str = partner) -> list[tuple[str, Message]] | None:
            return _delivered(federation, partner, case_id) or None

        [(_, view)] = _poll(one, timeout_s=timeout_s, what=f"{partner}'s view")
        present = categories_present(view)
        views.append(View(partner, present, sent_categories - present))

    def receipts() -> list[tuple[str, Message]] | None:
        found = _delivered(federation, "GB", case_id)
        return found if len(found) >= len(RECIPIENTS) else None

    receipted = _poll(receipts, timeout_s=timeout_s, what="the receipts at GB")
    denied = _forbidden_flow(federation, report, timeout_s=timeout_s)
    return DemoResult(
        case_id=case_id,
        sent=sent_categories,
        views=tuple(views),
        receipts_from=tuple(sorted(sender for sender, _ in receipted)),
        policy_denied=denied,
    )


def _forbidden_flow(federation: Federation, report: Message, *, timeout_s: float) -> float:
    """Seal a TLP:AMBER copy to XK (its accord allows GREEN at most) straight onto GB's
    outbox; return the gateway's policy_denied count once it has quarantined it."""
    series = 'xb_gateway_quarantined_total{reason_code="policy_denied"}'
    before = federation.metrics("gateway").get(series, 0.0)
    amber = report.model_copy(update={"tlp": TLP.AMBER})
    now = dt.datetime.now(dt.UTC)
    registry = federation.registry(now=now)
    key_id, key = registry.current_encryption_key(PartnerCode("XK"), at=now)
    accord = load_accord(federation.accords_dir / "gb-xk.yaml")
    sealed = envelope.seal(
        amber,
        labels=labels_of(amber),
        sender=PartnerCode("GB"),
        sender_key=federation.signing_key("GB"),
        recipient=PartnerCode("XK"),
        recipient_key_id=key_id,
        recipient_key=key,
        accord_id=AccordId(accord.accord),
        accord_digest=accord_digest(accord),
        now=now,
        ttl=dt.timedelta(days=1),
    )

    async def produce() -> None:
        settings = federation.producer_as("GB", client_id="broker-demo")
        async with open_producer(settings) as producer:
            await producer.send(
                outbox_topic(federation.prefix, "GB"), sealed, headers=[("xb-recipient", b"XK")]
            )

    asyncio.run(produce())

    def counted() -> float | None:
        value = federation.metrics("gateway").get(series, 0.0)
        return value if value > before else None

    return _poll(counted, timeout_s=timeout_s, what="the gateway to quarantine the forbidden flow")
