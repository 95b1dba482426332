"""``xb_consumer_lag_records``: how far each daemon's reading is behind the topics it reads,
defined once for the adapter, the gateway and the witness."""

from __future__ import annotations

from collections.abc import Mapping

from broker.runtime.metrics import Metrics

__all__ = ["ConsumerLag"]


class ConsumerLag:
    """The gauge of records not yet fetched, per topic; set after each fetch from what the
    consumer knows (:meth:`broker.transport.kafka.Consumer.lag`)."""

    def __init__(self, metrics: Metrics) -> None:
        self._gauge = metrics.gauge(
            "xb_consumer_lag_records",
            "Records on each topic this daemon reads that it has not fetched yet, as the "
            "broker last reported the end of each partition assigned to it.",
            ("topic",),
        )

    def observe(self, behind: Mapping[str, int]) -> None:
        """Record the lag of each topic ``behind`` names; the others keep their last value."""
        for topic, records in behind.items():
            self._gauge.set(records, topic=topic)
