"""A task a daemon cannot do without that dies makes the daemon say so, for good."""

from __future__ import annotations

import asyncio

from broker.runtime import OBSERVABILITY_HOST, Health, Metrics, serve_observability, supervise


async def _status(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(OBSERVABILITY_HOST, port)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def _dies() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("poison")


async def test_a_dead_task_fails_health_and_readiness_and_raises_metrics() -> None:
    """/healthz and /readyz turn 503 naming the task; setting ready again does not hide it."""
    health, metrics = Health(), Metrics()
    health.set_ready()
    async with serve_observability(port=0, metrics=metrics, health=health) as server:
        task = asyncio.create_task(_dies())
        supervise(task, name="audit_checkpointer", health=health, metrics=metrics)
        assert (
            metrics.gauge("xb_background_task_up", "", ("task",)).value(task="audit_checkpointer")
            == 1
        )
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)  # the done callback runs on the next turn of the loop
        health.set_ready()  # the main loop carries on setting itself ready
        assert health.failed == {"audit_checkpointer": "RuntimeError: poison"}
        for path in ("/healthz", "/readyz"):
            assert await _status(server.port, path) == (
                503,
                b"audit_checkpointer failed: RuntimeError: poison\n",
            )
        text = metrics.render()
    assert 'xb_background_task_up{task="audit_checkpointer"} 0' in text
    assert 'xb_background_task_failures_total{task="audit_checkpointer"} 1' in text


async def test_a_task_that_ends_or_is_cancelled_is_no_failure() -> None:
    """Returning normally (a drain) or being cancelled (a shutdown) leaves health alone."""
    health, metrics = Health(), Metrics()
    health.set_ready()
    finished = asyncio.create_task(asyncio.sleep(0))
    cancelled = asyncio.create_task(asyncio.sleep(3600))
    supervise(finished, name="reloader", health=health, metrics=metrics)
    supervise(cancelled, name="spool", health=health, metrics=metrics)
    cancelled.cancel()
    await asyncio.gather(finished, cancelled, return_exceptions=True)
    await asyncio.sleep(0)
    assert health.ready
    assert health.failed == {}
