"""A pq-hybrid accord cannot be served in the classic suite (THREAT-MODEL.md, "Suite
downgrade").

gb-rs's second version fixes the post-quantum hybrid suite; GB and RS hold classic keys too,
for their other accords. Whoever holds GB's classic signing key (a stolen key, or a stale
adapter) seals GB -> RS under that version in the classic suite, every byte from PROTOCOL.md:
the gateway quarantines it as ``suite_mismatch`` and RS stores nothing, while the same
client's classic envelope under a classic accord (gb-xk) is delivered, so the refusal is the
suite's and not the client's fault.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest

from broker.demo.federation import provision, redated
from broker.transport.testing import KafkaUnderTest

from . import wire
from .conftest import ROOT, Exchange, case_id, eventually, run
from .rawkafka import RawKafka, Written


@pytest.fixture(scope="module")
def exchange(kafka: KafkaUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """GB, RS and XK under gb-rs version 2 (pq-hybrid, in force now) and gb-xk (classic)."""
    accords = tmp_path_factory.mktemp("accords")
    now = dt.datetime.now(dt.UTC)
    for name, shipped in (("gb-rs", "gb-rs.v2.yaml"), ("gb-xk", "gb-xk.yaml")):
        text = (ROOT / "policies" / shipped).read_text(encoding="utf-8")
        (accords / f"{name}.yaml").write_text(redated(text, now=now), encoding="utf-8")
    federation = provision(
        tmp_path_factory.mktemp("federation"),
        bootstrap=kafka.bootstrap,
        partners=("GB", "RS", "XK"),
        accords=sorted(accords.glob("*.yaml")),
        prefix=f"a{uuid.uuid4().hex[:10]}.",
    )
    run(federation.create_topics(partitions=1))
    with federation:
        federation.start_many(("gateway", "GB", "RS", "XK"))
        yield Exchange(federation)


async def _write(exchange: Exchange, stem: str, value: bytes, recipient: str) -> Written:
    async with RawKafka(exchange.bootstrap) as kafka:
        return await kafka.send(
            exchange.topic(stem), value, headers=[(b"xb-recipient", recipient.encode())]
        )


def test_a_classic_envelope_under_the_pq_hybrid_accord_is_quarantined(
    exchange: Exchange,
) -> None:
    classic_case, hybrid_case = case_id(), case_id()
    control = exchange.seal(
        "GB", "XK", "gb-xk", message=wire.envelope_message(case_id=classic_case)
    )
    run(_write(exchange, "outbox.GB", control.to_bytes(), recipient="XK"))
    eventually(lambda: exchange.delivered("XK", classic_case), what="GB's classic view at XK")

    downgraded = exchange.seal(
        "GB", "RS", "gb-rs", message=wire.envelope_message(case_id=hybrid_case)
    )
    assert downgraded.header_fields["suite"] == "classic"
    written = run(_write(exchange, "outbox.GB", downgraded.to_bytes(), recipient="RS"))
    record = exchange.quarantined(written.position)
    assert record["reason_code"] == "suite_mismatch"
    assert exchange.delivered("RS", hybrid_case) == []
    # the honest adapters still talk in the accord's own suite
    exchange.flows("GB", "RS")
