"""A TCP fault proxy on 127.0.0.1 between Kafka clients and a broker, for fault tests.

Modes (:class:`Mode`), switchable at any time from any thread:

- ``pass``: bytes flow both ways untouched;
- ``blackhole``: a network partition: bytes are held, not forwarded (as a dead link's
  retransmissions would be), and flow again, in order, when the mode changes; clients see
  timeouts, and connections they close meanwhile are gone for good;
- ``latency``: every chunk is forwarded ``latency_s`` after it arrived, order kept;
- ``reset``: every open connection is reset (RST), and so is every new one, until the mode
  changes.

The broker must advertise the proxy's port, or clients would reconnect around it after the
first metadata request (``EmbeddedBroker(advertised_port=proxy.port)``). The proxy runs its
own event loop in a daemon thread, so synchronous tests and the soak runner can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import threading
import time
from types import TracebackType
from typing import Final, Self

from broker.errors import UsageError

__all__ = ["FaultProxy", "Mode"]

HOST: Final = "127.0.0.1"
_CHUNK: Final = 65_536


class Mode(enum.StrEnum):
    """What the proxy does to the traffic."""

    PASS = "pass"  # noqa: S105 - a mode's name, not a secret
    BLACKHOLE = "blackhole"
    LATENCY = "latency"
    RESET = "reset"


class FaultProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:upstream_port`` with injected faults.

    ``upstream_port`` may be set after :meth:`start` (the broker must know the proxy's port
    before it starts, to advertise it), but before the first client connects.
    """

    def __init__(self, *, upstream_port: int | None = None, port: int = 0) -> None:
        self.upstream_port = upstream_port
        self._requested_port = port
        self._port: int | None = None
        self._mode = Mode.PASS
        self._latency_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing: asyncio.Event | None = None
        self.connections = 0

    @property
    def port(self) -> int:
        """The port clients connect to (known once started)."""
        if self._port is None:
            raise UsageError("the fault proxy has not been started")
        return self._port

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    def start(self) -> None:
        """Bind and start forwarding in a background thread."""
        if self._thread is not None:
            raise UsageError("the fault proxy is already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen())
            except OSError as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise UsageError(f"the fault proxy cannot listen: {failure[0]}")

    def stop(self) -> None:
        """Close every connection and the listener; join the thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None

    def set_mode(self, mode: Mode, *, latency_s: float = 0.0) -> None:
        """Switch to ``mode`` (``latency_s`` only for ``latency``)."""
        if mode is Mode.LATENCY and latency_s <= 0:
            raise UsageError("latency mode needs a positive latency_s")
        if self._loop is None:
            raise UsageError("the fault proxy has not been started")
        self._loop.call_soon_threadsafe(self._apply, Mode(mode), latency_s)

    def _apply(self, mode: Mode, latency_s: float) -> None:
        self._mode, self._latency_s = mode, latency_s
        assert self._flowing is not None  # noqa: S101 - set by _listen before any mode change
        if mode is Mode.BLACKHOLE:
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode is Mode.RESET:
            for writer in list(self._writers):
                _reset(writer)

    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, HOST, self._requested_port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            _reset(writer)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._mode is Mode.RESET or self.upstream_port is None:
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            _reset(writer)
            return
        pair = (writer, up_writer)
        self._writers.update(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except asyncio.CancelledError:
            # Only _shutdown cancels: end the handler normally, or asyncio's stream callback
            # logs the cancellation as an error for every connection still open.
            pass
        finally:
            for end in pair:
                self._writers.discard(end)
                end.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction, chunk by chunk, through an ordered queue of arrival times."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        forward = asyncio.create_task(self._forward(queue, writer))
        try:
            while chunk := await reader.read(_CHUNK):
                queue.put_nowait((time.monotonic(), chunk))
            await queue.join()
        except (ConnectionError, OSError):
            pass
        finally:
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forward
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()

    async def _forward(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        assert self._flowing is not None  # noqa: S101 - set by _listen
        while True:
            arrived, chunk = await queue.get()
            await self._flowing.wait()
            if self._mode is Mode.LATENCY:
                await asyncio.sleep(max(0.0, arrived + self._latency_s - time.monotonic()))
            try:
                writer.write(chunk)
                await writer.drain()
            except (ConnectionError, OSError):
                return
            finally:
                queue.task_done()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN, as a reset link would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
