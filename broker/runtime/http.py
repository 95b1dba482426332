"""Health, readiness and metrics over HTTP, on 127.0.0.1 unless configured otherwise.

The endpoints are for the local supervisor (systemd, a Kubernetes probe through the pod's
loopback, a Prometheus agent beside the daemon) and have no authentication, so the server
binds the loopback unless the configuration names another address
(``observability.host``: a pod's address, for a Prometheus that scrapes pods).
It speaks just enough HTTP/1.0 for GET and HEAD, answers every request with
``Connection: close``, and bounds the request size and the time a client may take.

* ``/healthz``: 200 ``ok`` while the daemon is ready (serving or finishing its drain), else 503
  (also, for good, once a task it cannot do without has failed: see ``runtime.tasks``);
* ``/readyz``: 200 ``ready`` while ready and not draining (take new work), else 503; also 503
  (``degraded: ...``) while something the daemon cannot do without is about to expire
  (``runtime.expiry``), though it goes on working;
* ``/metrics``: the :class:`~broker.runtime.metrics.Metrics` registry, format 0.0.4.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import structlog

from broker.errors import UsageError
from broker.runtime.metrics import CONTENT_TYPE, Metrics

__all__ = ["OBSERVABILITY_HOST", "Health", "ObservabilityServer", "serve_observability"]

#: the address the server binds unless told otherwise: it has no authentication
OBSERVABILITY_HOST: Final = "127.0.0.1"

_MAX_REQUEST_BYTES: Final = 8_192
_TEXT: Final = "text/plain; charset=utf-8"
_REQUEST_TIMEOUT_S: Final = 5.0
_log = structlog.get_logger("broker.runtime.http")


class Health:
    """Readiness as the daemon reports it: not ready until it says so, then draining at stop."""

    def __init__(self) -> None:
        self._ready = False
        self._draining = False
        self._why = "starting"
        self._failed: dict[str, str] = {}
        self._degraded: str | None = None

    @property
    def ready(self) -> bool:
        """Whether ``/healthz`` answers 200: ready, and no part of the daemon has failed."""
        return self._ready and not self._failed

    @property
    def failed(self) -> dict[str, str]:
        """The parts of the daemon that failed for good, with why."""
        return dict(self._failed)

    @property
    def degraded(self) -> str | None:
        """Why ``/readyz`` answers 503 although the daemon works (something it cannot do
        without is about to expire), or None."""
        return self._degraded

    def set_degraded(self, why: str | None) -> None:
        """Degrade readiness for ``why``, or end it with None; ``/healthz`` is not affected."""
        self._degraded = why

    @property
    def draining(self) -> bool:
        """Whether the daemon has stopped taking new work."""
        return self._draining

    @property
    def why(self) -> str:
        """Why the daemon is not ready, shown in 503 bodies: a failed part first, else the
        reason given by the last state change."""
        if self._failed:
            return "; ".join(f"{name} failed: {why}" for name, why in self._failed.items())
        return self._why

    def set_ready(self) -> None:
        """The daemon is connected and processing."""
        self._ready, self._why = True, "ok"

    def set_not_ready(self, why: str) -> None:
        """The daemon cannot process now (lost its broker, bad configuration, ...)."""
        self._ready, self._why = False, why

    def set_failed(self, part: str, why: str) -> None:
        """A part the daemon cannot do without has died: not ready until the process restarts
        (setting ready again does not clear it)."""
        self._failed[part] = why

    def set_draining(self) -> None:
        """The daemon stopped intake and is finishing its in-flight work."""
        self._draining, self._why = True, "draining"


class ObservabilityServer:
    """The running server; :attr:`port` is the bound port (useful when asked for port 0)."""

    def __init__(self, server: asyncio.Server, port: int, host: str = OBSERVABILITY_HOST) -> None:
        self._server = server
        self.port = port
        self.host = host

    @property
    def url(self) -> str:
        """``http://<host>:<port>``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and wait for open connections to finish."""
        self._server.close()
        await self._server.wait_closed()


@contextlib.asynccontextmanager
async def serve_observability(
    *, port: int, metrics: Metrics, health: Health, host: str = OBSERVABILITY_HOST
) -> AsyncIterator[ObservabilityServer]:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` on ``host``:``port`` for the block.

    ``port`` 0 picks a free port. A port already in use raises :class:`UsageError`.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = "GET"
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT_S):
                method, path = await _read_request(reader)
            status, body, content_type = _respond(method, path, metrics=metrics, health=health)
        except (TimeoutError, ValueError, UnicodeDecodeError, ConnectionError):
            status, body, content_type = 400, "bad request\n", _TEXT
        try:
            data = body.encode()
            writer.write(
                f"HTTP/1.0 {status} {_REASONS[status]}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            if method != "HEAD":  # HEAD gets GET's headers without the body
                writer.write(data)
            await writer.drain()
        except ConnectionError:
            pass  # the client went away; nothing to tell it
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    try:
        server = await asyncio.start_server(handle, host=host, port=port)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port} for health and metrics: {exc.strerror}"
        ) from exc
    bound = server.sockets[0].getsockname()[1]
    _log.info("observability_listening", host=host, port=bound)
    running = ObservabilityServer(server, bound, host)
    try:
        yield running
    finally:
        await running.close()


_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    raw = await _read_head(reader)
    request_line = raw.split(b"\n", 1)[0].rstrip(b"\r").decode("ascii")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("malformed request line")
    return parts[0], parts[1].split("?", 1)[0]


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head and b"\n\n" not in head:
        chunk = await reader.read(1_024)
        if not chunk:
            raise ValueError("connection closed before the request ended")
        head += chunk
        if len(head) > _MAX_REQUEST_BYTES:
            raise ValueError("request head too large")
    return head


def _respond(method: str, path: str, *, metrics: Metrics, health: Health) -> tuple[int, str, str]:
    if method not in ("GET", "HEAD"):
        return 405, "only GET and HEAD\n", _TEXT
    if path == "/healthz":
        return (200, "ok\n", _TEXT) if health.ready else (503, f"{health.why}\n", _TEXT)
    if path == "/readyz":
        if health.ready and not health.draining and health.degraded is None:
            return 200, "ready\n", _TEXT
        if health.ready and not health.draining:
            return 503, f"degraded: {health.degraded}\n", _TEXT
        return 503, f"{health.why}\n", _TEXT
    if path == "/metrics":
        return 200, metrics.render(), CONTENT_TYPE
    return 404, "not found\n", _TEXT
