"""/healthz, /readyz and /metrics over HTTP on 127.0.0.1, following the daemon's state."""

from __future__ import annotations

import asyncio

import pytest

from broker.errors import UsageError
from broker.runtime import OBSERVABILITY_HOST, Health, Metrics, serve_observability


async def _request(port: int, raw: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(OBSERVABILITY_HOST, port)
    writer.write(raw)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def _get(port: int, path: str) -> tuple[int, bytes]:
    return await _request(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


async def test_health_and_readiness_follow_the_lifecycle() -> None:
    """Starting: both 503; ready: both 200; draining: healthz 200, readyz 503."""
    health = Health()
    async with serve_observability(port=0, metrics=Metrics(), health=health) as server:
        assert await _get(server.port, "/healthz") == (503, b"starting\n")
        assert (await _get(server.port, "/readyz"))[0] == 503
        health.set_ready()
        assert await _get(server.port, "/healthz") == (200, b"ok\n")
        assert await _get(server.port, "/readyz") == (200, b"ready\n")
        health.set_draining()
        assert await _get(server.port, "/healthz") == (200, b"ok\n")
        assert await _get(server.port, "/readyz") == (503, b"draining\n")
        health.set_not_ready("kafka unreachable")
        assert await _get(server.port, "/healthz") == (503, b"kafka unreachable\n")


async def test_metrics_endpoint_serves_the_registry() -> None:
    """/metrics returns Metrics.render(): the registry's series, then the process's (read at
    each scrape, so only their names are compared)."""
    metrics = Metrics()
    metrics.counter("xb_seen_total", "Seen.").inc()
    async with serve_observability(port=0, metrics=metrics, health=Health()) as server:
        status, body = await _get(server.port, "/metrics")
    assert status == 200
    served, rendered = body.decode().splitlines(), metrics.render().splitlines()
    assert (
        served[:3]
        == rendered[:3]
        == [
            "# HELP xb_seen_total Seen.",
            "# TYPE xb_seen_total counter",
            "xb_seen_total 1.0",
        ]
    )
    assert [line.split(" ")[0] for line in served] == [line.split(" ")[0] for line in rendered]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param(b"GET /nope HTTP/1.0\r\n\r\n", 404, id="unknown-path"),
        pytest.param(b"POST /healthz HTTP/1.0\r\n\r\n", 405, id="post"),
        pytest.param(b"garbage\r\n\r\n", 400, id="malformed-line"),
        pytest.param(b"GET /" + b"a" * 10_000, 400, id="oversized-head"),
        pytest.param(b"\xff\xfe /healthz HTTP/1.0\r\n\r\n", 400, id="not-ascii"),
    ],
)
async def test_bad_requests_get_a_status_not_a_crash(raw: bytes, status: int) -> None:
    """Bad requests are answered with a 4xx, and the server keeps serving afterwards."""
    health = Health()
    health.set_ready()
    async with serve_observability(port=0, metrics=Metrics(), health=health) as server:
        assert (await _request(server.port, raw))[0] == status
        assert (await _get(server.port, "/healthz"))[0] == 200


async def test_head_has_no_body() -> None:
    """HEAD answers with the GET status and no body."""
    async with serve_observability(port=0, metrics=Metrics(), health=Health()) as server:
        assert await _request(server.port, b"HEAD /healthz HTTP/1.0\r\n\r\n") == (503, b"")


async def test_the_server_binds_the_address_configured_and_no_other() -> None:
    """Told another address (here 127.0.0.2, another loopback one), it listens there only."""
    async with serve_observability(
        port=0, metrics=Metrics(), health=Health(), host="127.0.0.2"
    ) as server:
        assert server.url == f"http://127.0.0.2:{server.port}"
        _, writer = await asyncio.open_connection("127.0.0.2", server.port)
        writer.close()
        await writer.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", server.port)


async def test_the_server_binds_loopback_only() -> None:
    """By default the listening socket is on 127.0.0.1, never a wildcard address."""
    async with serve_observability(port=0, metrics=Metrics(), health=Health()) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert writer.get_extra_info("peername")[0] == "127.0.0.1"
        writer.close()
        await writer.wait_closed()


async def test_a_port_in_use_is_a_usage_error() -> None:
    """A second server on a taken port raises UsageError with the address."""
    async with serve_observability(port=0, metrics=Metrics(), health=Health()) as server:
        with pytest.raises(UsageError, match=str(server.port)):
            async with serve_observability(port=server.port, metrics=Metrics(), health=Health()):
                pass
