"""The Kafka probe says yes only to something that answers the Kafka protocol."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from broker.transport.embedded import HOST, free_port
from broker.transport.probe import answers_api_versions


def _serve_once(reply: Callable[[socket.socket], None]) -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind((HOST, 0))
        server.listen()

        def accept() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(1024)
                reply(connection)

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        yield server.getsockname()[1]
        thread.join(timeout=5)


@pytest.fixture(
    params=[
        pytest.param(lambda c: None, id="closes-without-answer"),
        pytest.param(lambda c: c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"), id="http"),
        pytest.param(lambda c: c.sendall(b"\x00\x00\x00\x06" + b"\x00" * 6), id="wrong-id"),
        pytest.param(lambda c: c.sendall(b"\x00\x00\x00\x06brkr\x00#"), id="error-code"),
    ]
)
def not_kafka(request: pytest.FixtureRequest) -> Iterator[int]:
    """A port whose listener reads the request and answers something other than Kafka."""
    yield from _serve_once(request.param)


def test_nothing_listening_is_not_kafka() -> None:
    """A closed port is not a broker."""
    assert answers_api_versions(HOST, free_port(), timeout_s=1.0) is False


def test_a_listener_that_is_not_kafka_is_not_kafka(not_kafka: int) -> None:
    """An open port that does not answer ApiVersions correctly is not a broker."""
    assert answers_api_versions(HOST, not_kafka, timeout_s=2.0) is False


def test_a_correct_api_versions_answer_is_kafka() -> None:
    """Our correlation id and error code 0 in the reply: this is a broker."""
    reply = b"\x00\x00\x00\x0a" + b"brkr" + b"\x00\x00" + b"\x00\x00\x00\x00"
    for port in _serve_once(lambda c: c.sendall(reply)):
        assert answers_api_versions(HOST, port, timeout_s=2.0) is True
