"""What every daemon shares: lifecycle, health and metrics over HTTP, logs, file reloads.

def main() -> int:
    configure_daemon_logging(style="json")
    metrics, health = Metrics(), Health()

    async def serve(stop: StopSignal) -> None:
        async with serve_observability(port=9464, metrics=metrics, health=health):
            ...                      # connect, then:
            health.set_ready()
            while not stop.is_set():
                ...                  # take and finish work
            health.set_draining()
            ...                      # finish in-flight work, commit

    return run(serve, drain_timeout_s=30, name="gateway")
"""

from __future__ import annotations

from broker.runtime._lifecycle import (
    EXIT_DRAIN_TIMEOUT,
    EXIT_FAILURE,
    EXIT_FORCED,
    EXIT_OK,
    Serve,
    Service,
    StopSignal,
    run,
)
from broker.runtime.accords import EXPIRY_WARNING, AccordReporter
from broker.runtime.expiry import (
    DEFAULT_READINESS_WINDOW,
    Expiry,
    ExpiryReporter,
    accord_expiries,
    certificate_expiries,
    registry_expiries,
)
from broker.runtime.http import OBSERVABILITY_HOST, Health, ObservabilityServer, serve_observability
from broker.runtime.lag import ConsumerLag
from broker.runtime.libc import HeapTrimmer, flush_filesystem, trim_heap
from broker.runtime.logs import bind_ids, route_library_logs
from broker.runtime.metrics import (
    CONTENT_TYPE,
    LATENCY_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    Metrics,
)
from broker.runtime.statelock import state_lock
from broker.runtime.tasks import supervise
from broker.runtime.watch import FileWatcher, OnChange, watch

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_READINESS_WINDOW",
    "EXIT_DRAIN_TIMEOUT",
    "EXIT_FAILURE",
    "EXIT_FORCED",
    "EXIT_OK",
    "EXPIRY_WARNING",
    "LATENCY_BUCKETS",
    "OBSERVABILITY_HOST",
    "AccordReporter",
    "ConsumerLag",
    "Counter",
    "Expiry",
    "ExpiryReporter",
    "FileWatcher",
    "Gauge",
    "Health",
    "HeapTrimmer",
    "Histogram",
    "Metrics",
    "ObservabilityServer",
    "OnChange",
    "Serve",
    "Service",
    "StopSignal",
    "accord_expiries",
    "bind_ids",
    "certificate_expiries",
    "flush_filesystem",
    "registry_expiries",
    "route_library_logs",
    "run",
    "serve_observability",
    "state_lock",
    "supervise",
    "trim_heap",
    "watch",
]
