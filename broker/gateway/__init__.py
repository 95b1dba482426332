"""The policy gateway daemon (``broker gateway run``) and the operator's quarantine tools.

:func:`serve_gateway` is the daemon's ``serve(stop)``: it consumes every registered partner's
outbox in one consumer group, routes each record through the pure
:func:`broker.pipeline.gateway.route`, produces deliveries, quarantine and audit records with
acks=all, and only then records de-duplication entries and commits offsets.
:mod:`broker.gateway.quarantine` lists, shows and releases quarantined records.
"""

from __future__ import annotations

from broker.gateway._daemon import GatewayMetrics, serve_gateway
from broker.gateway._trust import TrustState
from broker.gateway.quarantine import list_quarantine, read_quarantine, release

__all__ = [
    "GatewayMetrics",
    "TrustState",
    "list_quarantine",
    "read_quarantine",
    "release",
    "serve_gateway",
]
