"""Key rotation and a partner's revocation mid-stream (S4).

Revocation: while the daemons run, registry version N+1 revoking GB's signing key is
installed and every daemon reloads it. Everything GB sent before is delivered exactly once,
or, if the race happens (the gateway routed a view under registry N, its recipient refused it
under N+1), is in that recipient's rejected table with its reason: the checker counts it as
quarantined with a reason, never lost. An envelope signed afterwards with the revoked key (a
stolen key) is quarantined as ``revoked_key`` exactly once and reaches nobody. The race is
also forced once: a view attested as the gateway did under N, delivered after RS has N+1.
Rotation: GB moves to new signing and encryption keys in the middle of a stream, with an
overlap."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.soak.driver import read_topic, report, wait_until
from broker import envelope
from broker.checker import Event, EventType, HistoryWriter, read_quarantine, read_rejections
from broker.config import inbox_topic, outbox_topic
from broker.demo.federation import Federation
from broker.ids import PartnerCode
from broker.keys import rotate_partner_keys
from broker.keys.testing import RegistryFixture
from broker.pipeline import attest
from broker.policy import load_accord
from broker.schema import DataCategory, redact
from broker.transport.testing import KafkaUnderTest
from tests.e2e.harness import new_federation, produce, seal_as

from .flow import RECIPIENTS, drain, run_stream
from .rekey import card_of, classic_accords, install_registry, save_key, take_over_keys
from .second_gateway import rewrite_config

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

_RELOAD_S = 60.0


def _reloaded(federation: Federation, name: str, version: int) -> bool:
    return f'"version": {version}' in federation.log_path(name).read_text(errors="replace")


def _routed_under_the_old_registry(
    federation: Federation, fixture: RegistryFixture, key: str
) -> tuple[str, bytes]:
    """A view GB signs now, with the delivery frame the gateway wrote for it while it still
    held the registry before the revocation: the race, made to happen."""
    message_id, sealed = seal_as(federation, "GB", "RS", report(key), accord="gb-rs")
    accord = load_accord(federation.accords_dir / "gb-rs.yaml")
    frame = attest(
        sealed,
        message_id=message_id,
        sender=PartnerCode("GB"),
        recipient=PartnerCode("RS"),
        accord_id=accord.accord_id,
        accord_version=accord.version,
        accord_digest=envelope.parse(sealed).header.accord_digest,
        rule_ids=("race",),
        decided_at=dt.datetime.now(dt.UTC),
        gateway_key=next(iter(fixture.gateways.values())),
    )
    return message_id, frame


@pytest.fixture
def federation(kafka: KafkaUnderTest, tmp_path: Path) -> Federation:
    """The suite's federation with gb-rs classic: these tests follow GB's one signing key."""
    return new_federation(
        tmp_path / "federation", kafka, accords=classic_accords(tmp_path / "accords")
    )


def test_revoked_sender_key_mid_stream(federation: Federation, tmp_path: Path) -> None:
    """Reports before the revocation arrive once each or, refused in the race, are recorded
    with their reason by their recipient; the stolen-key envelope after it is quarantined once
    as revoked_key and stored nowhere."""
    fixture = take_over_keys(federation, now=dt.datetime.now(dt.UTC))
    with federation:
        for name in ("gateway", "GB", *RECIPIENTS):
            federation.start(name)
        driver = run_stream(federation, tmp_path / "gb.jsonl", stem="REVOKE", messages=60)
        assert driver.settle(timeout_s=120)
        # Revocation times have whole-second resolution: without this pause the revocation
        # could fall before the last views' signing time, making them (rightly) invalid.
        # Those views may still be in flight: signed before the revocation, they must arrive.
        time.sleep(1.1)

        gb = fixture.partners[PartnerCode("GB")]
        draft = fixture.edit()
        draft.revoke(
            partner=gb.partner,
            key_id=gb.signing_key_id,
            at=dt.datetime.now(dt.UTC),
            reason="key compromise (fault test)",
        )
        registry, data = fixture.resign(draft, now=dt.datetime.now(dt.UTC))
        install_registry(federation, data)
        assert wait_until(
            lambda: all(_reloaded(federation, n, registry.version) for n in ("gateway", "RS")),
            timeout_s=_RELOAD_S,
        )
        time.sleep(1.0)  # envelope times have whole-second resolution: sign after revoked_at

        key = "GB-REVOKE-STOLEN"
        message_id, sealed = seal_as(
            federation, "GB", "RS", redact(report(key), [DataCategory.BIOMETRIC]), accord="gb-rs"
        )
        with HistoryWriter(tmp_path / "thief.jsonl") as thief:
            thief.write(
                Event(
                    EventType.INVOKE,
                    "GB",
                    key,
                    time.time(),
                    recipients=("RS",),
                    allowed=(),
                    envelopes={"RS": message_id},
                )
            )
            asyncio.run(
                produce(
                    federation.bootstrap,
                    outbox_topic(federation.prefix, "GB"),
                    sealed,
                    headers=[("xb-recipient", b"RS")],
                )
            )
            thief.write(Event(EventType.OK, "GB", key, time.time(), recipients=("RS",)))
            race = "GB-REVOKE-RACE"
            thief.write(Event(EventType.INVOKE, "GB", race, time.time(), recipients=("RS",)))
            race_id, frame = _routed_under_the_old_registry(federation, fixture, race)
            inbox = inbox_topic(federation.prefix, "RS")
            asyncio.run(produce(federation.bootstrap, inbox, frame, headers=[]))
            thief.write(Event(EventType.OK, "GB", race, time.time(), recipients=("RS",)))

        revoked = 'xb_gateway_quarantined_total{reason_code="revoked_key"}'
        assert wait_until(
            lambda: federation.metrics("gateway").get(revoked) == 1, timeout_s=_RELOAD_S
        ), federation.metrics("gateway")
        refused = 'xb_adapter_rejected_total{reason_code="unknown_key"}'
        assert wait_until(lambda: federation.metrics("RS").get(refused) == 1, timeout_s=_RELOAD_S)
        quarantined, _ = asyncio.run(read_quarantine(federation.bootstrap, federation.prefix))
        assert [(q.message_id, q.reason_code) for q in quarantined] == [(message_id, "revoked_key")]
        verdict = drain(federation, driver, extra=[tmp_path / "thief.jsonl"])
        assert verdict.passed, verdict.to_json()
        assert (verdict.lost, verdict.unseen) == ((), ()), verdict.to_json()
        assert verdict.counts["quarantined"] == 1
        # A view refused in the race is accounted for only by its recipient's own record of it.
        refusals = read_rejections({code: federation.inbox_path(code) for code in RECIPIENTS})
        recorded = {(r.message_id, r.recipient, r.reason_code) for r in refusals}
        assert set(verdict.rejected_by_recipient) <= recorded, verdict.to_json()
        assert (race_id, "RS", "unknown_key") in verdict.rejected_by_recipient
        assert all(code for _, _, code in verdict.rejected_by_recipient)
        print(f"views refused in the revocation race: {len(verdict.rejected_by_recipient)}")


def test_sender_key_rotation_mid_stream(federation: Federation, tmp_path: Path) -> None:
    """GB rotates its signing and encryption keys while reports flow, as an operator would:
    it first holds the new decryption key beside the old, then registry N+1 lists the new
    keys with a one-hour overlap for the old, then GB restarts signing with the new key (its
    trust memory re-signed with `broker trust rekey`).
    Views signed by either generation, and receipts sealed to either, all arrive once."""
    now = dt.datetime.now(dt.UTC)
    fixture = take_over_keys(federation, now=now)
    rotated_card, new = rotate_partner_keys(
        card_of(fixture.data, "GB"),
        now=now,
        overlap=dt.timedelta(hours=1),
        valid_for=dt.timedelta(days=30),
    )
    gb = fixture.partners[PartnerCode("GB")]
    with federation:
        for name in ("gateway", "GB", *RECIPIENTS):
            federation.start(name)

        def between(step: int) -> None:
            if step == 1:  # GB can open receipts sealed to either generation
                fresh = save_key(federation, "GB", "decryption-2.pem", new.decryption)
                old = federation.root / "keys" / "GB" / "decryption.pem"
                config = federation.config_path("GB")
                rewrite_config(
                    config, config, {"keys": {"decryption_keys": [str(old), str(fresh)]}}
                )
                federation.stop("GB")
                federation.start("GB")
            elif step == 2:  # the federation publishes the new keys
                draft = fixture.edit()
                draft.add_partner(rotated_card)
                registry, data = fixture.resign(draft, now=dt.datetime.now(dt.UTC))
                install_registry(federation, data)
                assert wait_until(
                    lambda: all(
                        _reloaded(federation, n, registry.version)
                        for n in ("gateway", "GB", *RECIPIENTS)
                    ),
                    timeout_s=_RELOAD_S,
                )
            elif step == 3:  # GB signs with the new key from now on
                federation.stop("GB")
                current = federation.root / "keys" / "GB" / "signing.pem"
                previous = current.rename(tmp_path / "gb-previous-signing.pem")
                save_key(federation, "GB", "signing.pem", new.signing)
                # its trust memory, signed by the old key, is re-signed by the new one
                subprocess.run(
                    [sys.executable, "-m", "broker", "trust", "rekey", "--config",
                     str(federation.config_path("GB")), "--previous-key", str(previous)],
                    check=True, capture_output=True, timeout=60,
                )  # fmt: skip
                federation.start("GB")

        driver = run_stream(
            federation, tmp_path / "gb.jsonl", stem="ROTATE", messages=90, between=between
        )
        verdict = drain(federation, driver)
        assert verdict.passed, verdict.to_json()
        outbox = asyncio.run(
            read_topic(federation.bootstrap, outbox_topic(federation.prefix, "GB"))
        )
        signers = Counter(
            envelope.parse(r.value).header.sender_key_id for r in outbox if r.value is not None
        )
        # both generations signed part of the stream
        assert set(signers) == {gb.signing_key_id, new.signing_key_id}, signers
