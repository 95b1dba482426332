"""Client settings: every option aiokafka would default unsafely is stated explicitly."""

from __future__ import annotations

import inspect
from typing import Any

import aiokafka
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import TransportError, UsageError
from broker.transport.embedded import HOST, free_port
from broker.transport.kafka import (
    ConsumerSettings,
    ProducerSettings,
    TopicSpec,
    create_topics,
    open_consumer,
    open_producer,
)


def _producer(**overrides: Any) -> ProducerSettings:
    return ProducerSettings(bootstrap="127.0.0.1:9092", client_id="p", **overrides)


def _consumer(**overrides: Any) -> ConsumerSettings:
    return ConsumerSettings(bootstrap="127.0.0.1:9092", group_id="g", client_id="c", **overrides)


class TestProducerSettings:
    def test_every_record_is_acknowledged_by_all_replicas(self) -> None:
        """acks=all, never aiokafka's acks=1."""
        assert _producer().client_options()["acks"] == "all"

    def test_idempotence_is_off_unless_asked_for(self) -> None:
        """The embedded broker refuses idempotent producers, so it is opt-in."""
        assert _producer().client_options()["enable_idempotence"] is False
        assert _producer(enable_idempotence=True).client_options()["enable_idempotence"] is True

    def test_options_are_all_real_producer_parameters(self) -> None:
        """A misspelt option would be rejected by aiokafka at run time; catch it here."""
        accepted = inspect.signature(aiokafka.AIOKafkaProducer).parameters
        assert set(_producer().client_options()) <= set(accepted)

    def test_timeouts_and_sizes_are_explicit(self) -> None:
        """Request timeout, batching and size limits never fall back to library defaults."""
        options = _producer().client_options()
        for name in ("request_timeout_ms", "linger_ms", "max_batch_size", "max_request_size"):
            assert isinstance(options[name], int)

    @pytest.mark.parametrize(
        ("field", "value"),
        [("request_timeout_ms", 0), ("max_batch_size", -1), ("linger_ms", -1)],
    )
    def test_impossible_values_are_usage_errors(self, field: str, value: int) -> None:
        """A non-positive timeout or size is refused when the settings are built."""
        with pytest.raises(UsageError, match=field):
            ProducerSettings(bootstrap="b:1", client_id="p", **{field: value})  # type: ignore[arg-type]


class TestConsumerSettings:
    def test_offsets_are_never_committed_automatically(self) -> None:
        """Offsets are committed only after the effect is durable: no auto-commit."""
        assert _consumer().client_options()["enable_auto_commit"] is False

    def test_a_new_group_reads_from_the_earliest_record(self) -> None:
        """``latest`` is wrong on the embedded broker and would skip records anyway."""
        assert _consumer().client_options()["auto_offset_reset"] == "earliest"

    def test_options_are_all_real_consumer_parameters(self) -> None:
        """A misspelt option would be rejected by aiokafka at run time; catch it here."""
        accepted = inspect.signature(aiokafka.AIOKafkaConsumer).parameters
        assert set(_consumer().client_options()) <= set(accepted)

    def test_an_explicit_heartbeat_is_kept(self) -> None:
        """A heartbeat given explicitly is used as is."""
        options = _consumer(session_timeout_ms=4_000, heartbeat_interval_ms=500).client_options()
        assert options["session_timeout_ms"] == 4_000
        assert options["heartbeat_interval_ms"] == 500

    @given(session=st.integers(min_value=2, max_value=10_000_000))
    def test_the_default_heartbeat_is_a_quarter_of_the_session(self, session: int) -> None:
        """Without an explicit heartbeat it is session / 4, and always inside the session."""
        heartbeat = _consumer(session_timeout_ms=session).client_options()["heartbeat_interval_ms"]
        assert isinstance(heartbeat, int)
        assert heartbeat == max(1, session // 4)
        assert 0 < heartbeat < session

    @pytest.mark.parametrize(
        "overrides",
        [
            pytest.param({"session_timeout_ms": 0}, id="no-session"),
            pytest.param({"session_timeout_ms": 3_000, "heartbeat_interval_ms": 3_000}, id="hb=s"),
            pytest.param({"heartbeat_interval_ms": 0}, id="no-heartbeat"),
            pytest.param({"request_timeout_ms": -5}, id="negative-request-timeout"),
        ],
    )
    def test_impossible_values_are_usage_errors(self, overrides: dict[str, int]) -> None:
        """Timeouts must be positive and the heartbeat shorter than the session."""
        with pytest.raises(UsageError):
            _consumer(**overrides)


class TestUnreachableBroker:
    """Without a broker, every client fails with our TransportError, naming what it tried."""

    async def test_a_producer(self) -> None:
        settings = ProducerSettings(bootstrap=f"{HOST}:{free_port()}", client_id="p")
        with pytest.raises(TransportError, match="connecting a producer"):
            async with open_producer(settings):
                pass

    async def test_a_consumer(self) -> None:
        settings = ConsumerSettings(bootstrap=f"{HOST}:{free_port()}", group_id="g", client_id="c")
        with pytest.raises(TransportError, match="connecting a consumer"):
            async with open_consumer(settings, ["t"]):
                pass

    async def test_topic_creation(self) -> None:
        with pytest.raises(TransportError, match="admin client"):
            await create_topics(f"{HOST}:{free_port()}", [TopicSpec("t")])
