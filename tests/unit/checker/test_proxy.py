"""The fault proxy against a loopback echo server: it forwards in order, holds bytes during
a black-hole and releases them on heal, delays under latency, and resets on demand."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from broker.checker import FaultProxy, Mode
from broker.errors import UsageError


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    """A started proxy in front of a loopback echo server."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with FaultProxy(upstream_port=server.server_address[1]) as running:
        yield running
    server.shutdown()
    server.server_close()


def _connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=10)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _broken(sock: socket.socket) -> bool:
    """Whether the connection turns out reset or closed within a few round trips."""
    try:
        for _ in range(50):
            sock.sendall(b"y")
            if not sock.recv(1):
                return True
    except ConnectionError:
        return True
    return False


@pytest.mark.parametrize("mode", [Mode.PASS, Mode.LATENCY])
def test_bytes_are_forwarded_whole_and_in_order(proxy: FaultProxy, mode: Mode) -> None:
    """Pass and latency both deliver every byte, in order, both ways."""
    proxy.set_mode(mode, latency_s=0.05 if mode is Mode.LATENCY else 0.0)
    payload = bytes(range(256)) * 400
    with _connect(proxy) as sock:
        for start in range(0, len(payload), 10_000):
            sock.sendall(payload[start : start + 10_000])
        assert _recv_exactly(sock, len(payload)) == payload


def test_a_black_hole_holds_bytes_until_the_partition_heals(proxy: FaultProxy) -> None:
    """Nothing crosses a black-hole; on heal the held bytes arrive, in order."""
    with _connect(proxy) as sock:
        sock.sendall(b"before")
        assert _recv_exactly(sock, 6) == b"before"
        proxy.set_mode(Mode.BLACKHOLE)
        sock.sendall(b"during")
        sock.settimeout(0.5)  # proving an absence needs a bounded wait
        with pytest.raises(TimeoutError):
            sock.recv(6)
        sock.settimeout(10)
        proxy.set_mode(Mode.PASS)
        assert _recv_exactly(sock, 6) == b"during"


def test_reset_breaks_open_connections_and_refuses_new_ones(proxy: FaultProxy) -> None:
    """Under reset a client sees its connection reset or closed, old and new alike."""
    with _connect(proxy) as sock:
        sock.sendall(b"x")
        assert _recv_exactly(sock, 1) == b"x"
        proxy.set_mode(Mode.RESET)
        assert _broken(sock)
    try:
        fresh = _connect(proxy)
    except ConnectionError:
        pass  # reset while connecting (the proxy resets before the handshake settles)
    else:
        with fresh:
            assert _broken(fresh)
    proxy.set_mode(Mode.PASS)
    with _connect(proxy) as healed:
        healed.sendall(b"ok")
        assert _recv_exactly(healed, 2) == b"ok"


def test_latency_mode_needs_a_positive_latency(proxy: FaultProxy) -> None:
    """A zero latency is a usage error, not a silent pass-through."""
    with pytest.raises(UsageError):
        proxy.set_mode(Mode.LATENCY)


def test_an_unstarted_proxy_has_no_port() -> None:
    """Asking for the port before start is a usage error."""
    with pytest.raises(UsageError):
        _ = FaultProxy(upstream_port=1).port
