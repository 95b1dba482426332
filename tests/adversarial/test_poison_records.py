"""Poison records: any bytes in key, value and headers, on every topic a daemon reads.

Each attack writes, with the attacker's raw client, records no component of the exchange would
write: a header key that is not UTF-8, a header with a null value, a key that is not text, a
null value, a value far over the envelope limit, a batch whose CRC does not match, a batch
whose record lengths contradict its contents. None may crash or stall a daemon: the gateway
quarantines each with a reason, the receiving adapter records each as refused, the audit
checkpointer and ``audit export`` read past them, ``quarantine list`` lists them as
unreadable; then legitimate traffic still flows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Exchange, digest, eventually, run
from .rawkafka import RawKafka, RawRecord, Written, encode_batch

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MIB = 1024 * 1024

#: name -> the records of one batch; a record carrying a real-looking value is kept small
POISON: dict[str, RawRecord] = {
    "header key not UTF-8": RawRecord(b"k", b"value", ((b"\xff\xfe-recipient", b"GB"),)),
    "header value null": RawRecord(b"k", b"value", ((b"xb-recipient", None),)),
    "header value not UTF-8": RawRecord(b"k", b"value", ((b"xb-recipient", b"\xff\xc0"),)),
    "key not UTF-8": RawRecord(b"\xff\x00\xfe", b"value"),
    "null value": RawRecord(b"k", None),
    "far over the envelope limit": RawRecord(b"k", b"\x89XBE\x01" + bytes(3 * MIB)),
}
#: name -> a whole batch no honest producer makes
BROKEN_BATCHES: dict[str, bytes] = {
    "a batch failing its CRC": encode_batch([RawRecord(b"k", b"crc")], corrupt_crc=True),
    "a batch whose lengths lie": encode_batch(
        [RawRecord(b"k", b"v")], record_bytes=bytes([0x40, 0x00, 0x00, 0x00, 0x02, 0x6B])
    ),
}


async def _poison(bootstrap: str, topic: str) -> dict[str, tuple[Written, RawRecord | None]]:
    """Every poison record and broken batch on ``topic``, one batch each; where each landed."""
    written: dict[str, tuple[Written, RawRecord | None]] = {}
    async with RawKafka(bootstrap) as kafka:
        for name, record in POISON.items():
            written[name] = (await kafka.produce(topic, [record]), record)
        for name, batch in BROKEN_BATCHES.items():
            written[name] = (await kafka.produce(topic, batch=batch), None)
    return written


def test_poison_on_an_outbox_is_quarantined_and_the_gateway_moves_on(exchange: Exchange) -> None:
    """Each record is quarantined by the gateway, signed, with its position, reason code and
    the digest of its value; the gateway never restarts and the flows carry on."""
    gateway_pid = exchange.federation.pid("gateway")
    written = run(_poison(exchange.bootstrap, exchange.topic("outbox.XK")))
    for name, (where, record) in written.items():
        quarantined = exchange.quarantined(where.position)
        expected = "oversized" if name == "far over the envelope limit" else "malformed"
        assert quarantined["reason_code"] == expected, name
        if record is not None:
            assert quarantined["value_sha256"] == digest(record.value or b""), name
            assert quarantined["value_size"] == (
                None if record.value is None else len(record.value)
            )
        assert len(quarantined["value_prefix_b64"]) <= 4 * 16384 // 3 + 4, name
    assert exchange.federation.pid("gateway") == gateway_pid
    exchange.all_healthy()
    exchange.flows("GB", "RS")


def test_poison_on_an_inbox_is_refused_by_the_adapter_and_it_moves_on(exchange: Exchange) -> None:
    """GB's adapter records each as refused, keeping at most 4 KiB of it and the digest of
    all of it; it never restarts, and RS's reports still reach GB."""
    adapter_pid = exchange.federation.pid("GB")
    written = run(_poison(exchange.bootstrap, exchange.topic("inbox.GB")))
    rows = exchange.rejected("GB", *(where.position for where, _ in written.values()))
    for name, (where, record) in written.items():
        row = rows[where.position]
        assert row["reason_code"] in {"malformed", "bad_attestation"}, name
        assert row["identified_by"] is None, name
        if record is not None and record.value is not None:
            assert row["frame_size"] == len(record.value), name
            assert row["frame_sha256"] == digest(record.value), name
    assert exchange.federation.pid("GB") == adapter_pid
    exchange.all_healthy()
    exchange.flows("RS", "GB")


def test_poison_on_the_audit_topic_kills_neither_checkpointer_nor_export(
    exchange: Exchange, tmp_path: Path
) -> None:
    """The gateway's checkpointer reads past them (it stays up, the gateway healthy), and
    ``broker audit export`` writes a bundle holding them instead of failing."""
    run(_poison(exchange.bootstrap, exchange.topic("audit")))
    exchange.flows("GB", "RS")  # new audit records after the poison are read too
    metrics = exchange.federation.metrics("gateway")
    assert metrics['xb_background_task_up{task="audit_checkpointer"}'] == 1
    assert 'xb_background_task_failures_total{task="audit_checkpointer"}' not in metrics
    exchange.all_healthy()
    bundle = tmp_path / "bundle.jsonl"
    exchange.cli(
        "audit",
        "export",
        "--topic",
        exchange.topic("audit"),
        "--registry",
        str(exchange.federation.registry_path),
        "--quiet-seconds",
        "1",
        "-o",
        str(bundle),
        config="gateway",
    )
    assert bundle.stat().st_size > 0


def test_poison_on_the_quarantine_topic_is_listed_as_unreadable(exchange: Exchange) -> None:
    """``quarantine list --json`` reads past every one and lists each by its position."""
    written = run(_poison(exchange.bootstrap, exchange.topic("quarantine")))

    def listed() -> dict[str, dict[str, object]] | None:
        lines = exchange.cli("quarantine", "list", "--json", config="gateway").splitlines()
        entries = {str(e["position"]): e for e in map(json.loads, lines)}
        positions = {where.position for where, _ in written.values()}
        return entries if positions <= set(entries) else None

    entries = eventually(listed, what="every poison record listed")
    for name, (where, _) in written.items():
        assert entries[where.position]["verification"] == "unreadable", name
    exchange.all_healthy()


def test_a_record_at_the_brokers_message_limit_reaches_the_adapter(exchange: Exchange) -> None:
    """The largest record the broker accepts (message.max.bytes, less its batch overhead)
    is fetched by the adapter (its fetch size is at least that) and refused, not stuck."""
    value = b"XBD1" + bytes(1_100_000 - 4096 - 4)
    where = run(_send(exchange, "inbox.GB", value))
    row = exchange.rejected("GB", where.position)[where.position]
    assert (row["frame_size"], row["frame_sha256"]) == (len(value), digest(value))
    exchange.flows("RS", "GB")


@pytest.mark.parametrize(
    ("size", "reason_code"),
    [
        pytest.param(MIB, "malformed", id="exactly the envelope limit: parsed, malformed"),
        pytest.param(MIB + 1, "oversized", id="one byte over: refused unparsed as oversized"),
    ],
)
def test_records_at_the_envelope_limit_are_told_apart(
    exchange: Exchange, size: int, reason_code: str
) -> None:
    """At the limit a record is looked at; one byte over, it is refused before parsing."""
    value = b"\x89XBE\x01" + bytes(size - 5)
    where = run(_send(exchange, "outbox.XK", value))
    quarantined = exchange.quarantined(where.position)
    assert (quarantined["reason_code"], quarantined["value_size"]) == (reason_code, size)


async def _send(exchange: Exchange, stem: str, value: bytes) -> Written:
    async with RawKafka(exchange.bootstrap) as kafka:
        return await kafka.send(exchange.topic(stem), value)
