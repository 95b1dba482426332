"""Is a Kafka-protocol broker answering? One ApiVersions v0 round trip, standard library only.

An open port proves little (a broker accepts connections before it serves requests); a
correct ApiVersions answer proves the broker parses and answers the Kafka protocol. This is
synchronous on purpose: process supervision and test fixtures call it outside any event loop.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Final

__all__ = ["answers_api_versions"]

_API_VERSIONS: Final = 18
_CORRELATION_ID: Final = 0x62726B72
_CLIENT_ID: Final = b"broker-probe"
# header v1: api_key, api_version, correlation_id, client_id; ApiVersions v0 has an empty body
_REQUEST: Final = struct.pack(
    f">hhih{len(_CLIENT_ID)}s", _API_VERSIONS, 0, _CORRELATION_ID, len(_CLIENT_ID), _CLIENT_ID
)
_MAX_RESPONSE: Final = 1 << 20


def answers_api_versions(
    host: str, port: int, *, timeout_s: float, tls: ssl.SSLContext | None = None
) -> bool:
    """Whether ``host:port`` answers an ApiVersions request without error within ``timeout_s``.

    With ``tls``, over TLS first (a ``SASL_SSL`` listener answers ApiVersions before any
    authentication, as clients ask for it before the SASL handshake).
    """
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as raw,
            raw if tls is None else tls.wrap_socket(raw, server_hostname=host) as sock,
        ):
            sock.sendall(struct.pack(">i", len(_REQUEST)) + _REQUEST)
            (size,) = struct.unpack(">i", _read_exactly(sock, 4))
            if not 6 <= size <= _MAX_RESPONSE:
                return False
            correlation_id, error_code = struct.unpack(">ih", _read_exactly(sock, 6))
    except (OSError, EOFError):
        return False
    return bool(correlation_id == _CORRELATION_ID and error_code == 0)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data
