"""Process-wide structlog set-up, configured once by the entry point.

Daemons log JSON lines (one canonical line per message, ids bound through contextvars);
people at a terminal get a readable console renderer. Library modules only ever call
``structlog.get_logger()``; they never configure logging themselves.

Nothing here logs keys or plaintext: the redaction processor drops any event field whose
name says it holds secret material, as a last line of defence behind the rule that callers
never pass such values at all.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

__all__ = ["configure", "drop_secret_fields"]

_SECRET_WORDS = ("private", "secret", "passphrase", "password", "plaintext", "body")


def drop_secret_fields(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of any field whose name suggests secret material with ``[redacted]``."""
    for name in list(event_dict):
        if any(word in name.lower() for word in _SECRET_WORDS):
            event_dict[name] = "[redacted]"
    return event_dict


def configure(*, style: Literal["json", "console"] = "console", level: str = "INFO") -> None:
    """Configure structlog for this process. Call once, from the entry point."""
    renderer: structlog.typing.Processor
    if style == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            drop_secret_fields,
            structlog.processors.format_exc_info if style == "json" else _identity,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _identity(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return event_dict
