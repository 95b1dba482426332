"""The gateway pauses, losing nothing, when the registry it holds stops listing its own key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from broker.config import GatewayConfig, load_config
from broker.demo.federation import GATEWAY, provision
from broker.gateway._trust import TrustState, load_gateway_key
from broker.ids import KeyId
from broker.runtime import AccordReporter, Metrics
from tests.faults.rekey import install_registry, take_over_keys

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
HOUR = dt.timedelta(hours=1)


def test_a_revoked_gateway_key_pauses_the_gateway(tmp_path: Path) -> None:
    federation = provision(tmp_path / "federation", bootstrap="127.0.0.1:9092", prefix="t.")
    fixture = take_over_keys(federation, now=NOW)
    config = load_config(federation.config_path(GATEWAY), GatewayConfig, env={})
    key = load_gateway_key(config)
    trust = TrustState(config, key=key, now=NOW, reporter=AccordReporter(Metrics()))
    assert trust.pause(NOW) is None

    draft = fixture.edit()
    draft.revoke(
        partner=None, key_id=KeyId(key.public_key().key_id), at=NOW + HOUR, reason="stolen"
    )
    _, revoked = fixture.resign(draft, now=NOW)
    install_registry(federation, revoked)
    trust.reload([federation.registry_path], now=NOW)
    assert trust.registry.version == fixture.registry.version + 1
    assert trust.pause(NOW) is None  # not yet revoked
    paused = trust.pause(NOW + 2 * HOUR)
    assert paused is not None
    event, reason = paused
    assert event == "gateway_key_unusable_paused"
    assert "revoked" in reason
