"""The daemon lifecycle: a stop request drains, a slow drain is cut off, failures map to codes."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from broker.errors import PolicyError
from broker.runtime import (
    EXIT_DRAIN_TIMEOUT,
    EXIT_FAILURE,
    EXIT_FORCED,
    EXIT_OK,
    Service,
    StopSignal,
)


async def test_a_stop_request_lets_serve_drain_and_exit_zero() -> None:
    """serve sees the stop, finishes its in-flight work, and the service exits 0."""
    stop = StopSignal()
    drained: list[str] = []

    async def serve(signal_: StopSignal) -> None:
        await signal_.wait()
        drained.append("committed")

    service = Service(name="test", drain_timeout_s=5)
    task = asyncio.create_task(service.run_async(serve, stop=stop))
    stop.set("test")
    assert await task == EXIT_OK
    assert drained == ["committed"]
    assert stop.reason == "test"


async def test_a_drain_longer_than_the_timeout_is_cancelled_with_its_own_code() -> None:
    """A serve that ignores the stop is cancelled after drain_timeout_s: exit 75."""
    stop = StopSignal()
    cancelled = asyncio.Event()

    async def serve(_: StopSignal) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(
        Service(name="test", drain_timeout_s=0.05).run_async(serve, stop=stop)
    )
    stop.set()
    assert await task == EXIT_DRAIN_TIMEOUT
    assert cancelled.is_set()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        pytest.param(PolicyError("no accord"), PolicyError.exit_code, id="our-error-own-code"),
        pytest.param(RuntimeError("bug"), EXIT_FAILURE, id="any-other-exception-exit-1"),
    ],
)
async def test_a_failing_serve_becomes_an_exit_code(error: Exception, code: int) -> None:
    """serve raising ends the service with the error's exit code (ours) or 1, not a traceback."""

    async def serve(_: StopSignal) -> None:
        raise error

    assert await Service(name="test", drain_timeout_s=1).run_async(serve) == code


async def test_stop_sleep_returns_early_on_stop_and_false_on_timeout() -> None:
    """StopSignal.sleep is an interruptible wait: False after the time, True once stopped."""
    stop = StopSignal()
    assert await stop.sleep(0) is False
    stop.set()
    assert await stop.sleep(3600) is True


def test_sigterm_sets_the_stop_and_the_process_exits_zero() -> None:
    """run() turns SIGTERM into a stop request; a serve that drains exits 0 with reason SIGTERM."""
    reasons: list[str | None] = []

    async def serve(stop: StopSignal) -> None:
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        await stop.wait()
        reasons.append(stop.reason)

    assert Service(name="test", drain_timeout_s=5).run(serve) == EXIT_OK
    assert reasons == ["SIGTERM"]
    # the handlers are removed afterwards: the default disposition is back
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_second_sigint_forces_the_stop() -> None:
    """Ctrl-C twice: the first asks for a drain, the second cancels it at once (exit 130)."""
    cancelled: list[bool] = []

    async def serve(stop: StopSignal) -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(os.kill, os.getpid(), signal.SIGINT)
        await stop.wait()
        loop.call_soon(os.kill, os.getpid(), signal.SIGINT)
        try:
            await asyncio.Event().wait()  # a drain that would never end on its own
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    assert Service(name="test", drain_timeout_s=3600).run(serve) == EXIT_FORCED
    assert cancelled == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_non_positive_drain_timeout_is_refused() -> None:
    """drain_timeout_s must be positive; 0 would cancel every drain at once."""
    with pytest.raises(ValueError, match="positive"):
        Service(name="test", drain_timeout_s=0)
