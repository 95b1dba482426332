"""The daemon lifecycle: one event loop, signals turned into a stop request, a bounded drain.

A daemon is one coroutine, ``serve(stop)``. It takes work until ``stop`` is set, then stops
intake, finishes what is in flight, commits, and returns. :func:`run` owns the loop and the
signals around it: the first SIGTERM or SIGINT sets ``stop``; a second SIGINT (a person
pressing Ctrl-C again) cancels ``serve`` at once; a drain that outlives ``drain_timeout_s``
is cancelled too, and the exit status says which of these happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Final

import structlog

from broker.errors import BrokerError

__all__ = [
    "EXIT_DRAIN_TIMEOUT",
    "EXIT_FAILURE",
    "EXIT_FORCED",
    "EXIT_OK",
    "Serve",
    "Service",
    "StopSignal",
    "run",
]

#: ``serve`` returned after a stop request, or on its own
EXIT_OK: Final = 0
#: ``serve`` raised something that is not one of our errors (ours exit with their own code)
EXIT_FAILURE: Final = 1
#: the drain outlived ``drain_timeout_s`` and was cancelled (EX_TEMPFAIL: safe to restart)
EXIT_DRAIN_TIMEOUT: Final = 75
#: a second SIGINT cancelled the drain (128 + SIGINT, as shells report it)
EXIT_FORCED: Final = 130

_log = structlog.get_logger("broker.runtime")


class StopSignal:
    """A one-way stop request that a daemon's loops await instead of sleeping.

    Made by :func:`run` from SIGTERM/SIGINT; tests make their own and call :meth:`set`.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._reason: str | None = None

    @property
    def reason(self) -> str | None:
        """Why the stop was requested (e.g. ``"SIGTERM"``); ``None`` while running."""
        return self._reason

    def set(self, reason: str = "requested") -> None:
        """Request the stop; later calls keep the first reason."""
        if self._reason is None:
            self._reason = reason
        self._event.set()

    def is_set(self) -> bool:
        """Whether a stop has been requested."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Return once a stop has been requested."""
        await self._event.wait()

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until the stop request, whichever is first; ``True`` if stopped.

        For polling loops: ``while not await stop.sleep(interval): poll()``.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self._event.wait()
        return self._event.is_set()


Serve = Callable[[StopSignal], Awaitable[None]]
"""A daemon body: runs until the stop signal, then drains and returns."""


class Service:
    """Runs one ``serve`` coroutine under the lifecycle rules above.

    :meth:`run` owns a fresh event loop and the process signals; :meth:`run_async` does the
    same inside a running loop without touching signals (for tests, which set ``stop``).
    """

    def __init__(self, *, name: str, drain_timeout_s: float) -> None:
        if not drain_timeout_s > 0:
            raise ValueError("drain_timeout_s must be positive")
        self.name = name
        self.drain_timeout_s = float(drain_timeout_s)

    def run(self, serve: Serve) -> int:
        """Run ``serve`` to completion in a new event loop; return the process exit status."""
        return asyncio.run(self.run_async(serve, install_signals=True))

    async def run_async(
        self, serve: Serve, *, stop: StopSignal | None = None, install_signals: bool = False
    ) -> int:
        """Run ``serve`` in the current loop; return the exit status :func:`run` would."""
        stop = stop if stop is not None else StopSignal()
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._guarded(serve, stop), name=f"{self.name}.serve")
        forced = asyncio.Event()
        installed = install_signals and _install_signals(loop, stop, forced, task)
        try:
            return await self._supervise(task, stop, forced)
        finally:
            if installed:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)

    async def _supervise(
        self, task: asyncio.Task[int], stop: StopSignal, forced: asyncio.Event
    ) -> int:
        stop_waiter = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_waiter.cancel()
        if task.done():
            return task.result()
        _log.info("service_draining", service=self.name, reason=stop.reason)
        forced_waiter = asyncio.ensure_future(forced.wait())
        try:
            await asyncio.wait(
                {task, forced_waiter},
                timeout=self.drain_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            forced_waiter.cancel()
        if task.done():
            return task.result()
        status = EXIT_FORCED if forced.is_set() else EXIT_DRAIN_TIMEOUT
        _log.warning(
            "service_drain_cancelled",
            service=self.name,
            cause="forced" if forced.is_set() else "drain_timeout",
            drain_timeout_s=self.drain_timeout_s,
        )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return status

    async def _guarded(self, serve: Serve, stop: StopSignal) -> int:
        # One line per failure, never a traceback on the terminal of a supervisor reading JSON.
        _log.info("service_started", service=self.name)
        try:
            await serve(stop)
        except BrokerError as exc:
            _log.error("service_failed", service=self.name, error=exc.diagnostics())
            # and the one plain line every command promises (docs/CLI.md), for a person
            print(f"error: {exc.diagnostics()}", file=sys.stderr, flush=True)
            return exc.exit_code
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a crash becomes one log line and exit 1
            _log.exception("service_crashed", service=self.name)
            return EXIT_FAILURE
        _log.info("service_stopped", service=self.name, reason=stop.reason)
        return EXIT_OK


def run(serve: Serve, *, drain_timeout_s: float, name: str = "service") -> int:
    """Run ``serve`` as a daemon in a new event loop and return its exit status.

    0 after a clean drain (or when ``serve`` returns on its own); a :class:`BrokerError`'s
    own exit code if ``serve`` raised one; 1 for any other exception; 75 if the drain outlived
    ``drain_timeout_s``; 130 if a second SIGINT forced the stop.
    """
    return Service(name=name, drain_timeout_s=drain_timeout_s).run(serve)


def _install_signals(
    loop: asyncio.AbstractEventLoop,
    stop: StopSignal,
    forced: asyncio.Event,
    task: asyncio.Task[int],
) -> bool:
    # Signal handlers can only be installed from the main thread; elsewhere the caller stops
    # the service through its StopSignal.
    if threading.current_thread() is not threading.main_thread():
        return False

    def on_term() -> None:
        stop.set("SIGTERM")

    def on_int() -> None:
        if stop.is_set() and not task.done():
            forced.set()
        stop.set("SIGINT")

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, on_int)
    return True
