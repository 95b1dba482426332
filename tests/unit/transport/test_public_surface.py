"""The transport's public names are pinned: changing them is a deliberate, reviewed act."""

from __future__ import annotations

import importlib

import pytest

SURFACE = {
    "broker.transport.kafka": [
        "Consumer",
        "ConsumerSettings",
        "Delivery",
        "OutboundRecord",
        "Producer",
        "ProducerSettings",
        "Record",
        "TopicSpec",
        "create_topics",
        "open_consumer",
        "open_reader",
        "open_producer",
    ],
    "broker.transport.embedded": [
        "BINARY_ENV",
        "DEFAULT_PORT",
        "HOST",
        "STATE_DIR_ENV",
        "BrokerState",
        "EmbeddedBroker",
        "default_state_dir",
        "ensure_port_free",
        "find_binary",
        "free_port",
        "is_running",
        "read_state",
        "start_detached",
        "stop_detached",
    ],
    "broker.transport.probe": ["answers_api_versions"],
    "broker.transport.selfcheck": ["RoundTrip", "round_trip"],
    "broker.transport.testing": ["TEST_SESSION_TIMEOUT_MS", "KafkaUnderTest"],
}


@pytest.mark.parametrize(("module_name", "names"), SURFACE.items(), ids=list(SURFACE))
def test_all_is_pinned_and_every_name_exists(module_name: str, names: list[str]) -> None:
    """``__all__`` lists exactly the pinned names, and each one is defined."""
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(names)
    for name in names:
        assert hasattr(module, name), name
