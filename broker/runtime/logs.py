"""Daemon logging helpers: ids bound per message, library logs routed into the JSON stream.

The entry point configures structlog once (``broker.logging.configure(style="json")``), then
calls :func:`route_library_logs` so aiokafka's standard-library warnings come out as the same
JSON lines a supervisor reads. Each record's handling runs inside
``with bind_ids(message_id=..., sender=...)`` so every line it logs carries the ids.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import structlog

__all__ = ["bind_ids", "route_library_logs"]


class _ToStructlog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            structlog.get_logger(record.name).log(
                record.levelno, record.getMessage(), logger=record.name
            )
        except Exception:  # noqa: BLE001 - logging must never take the daemon down
            self.handleError(record)


def route_library_logs(*, level: str = "WARNING") -> None:
    """Send standard-library log records at ``level`` and above through structlog.

    Call after ``broker.logging.configure``; calling it again replaces the earlier route.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ToStructlog):
            root.removeHandler(handler)
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    root.addHandler(_ToStructlog(level=numeric))
    root.setLevel(numeric)


@contextlib.contextmanager
def bind_ids(**ids: object) -> Iterator[None]:
    """Bind ``ids`` (message_id, sender, recipient, topic, offset...) to every log line inside.

    Pass identifiers only: never message content, keys or passphrases.
    """
    with structlog.contextvars.bound_contextvars(**ids):
        yield
