"""A client's history of sends, as JSON lines: ``invoke``, then ``ok``, ``fail`` or ``info``.

One line per event. A driver writes ``invoke`` before it hands a message to its adapter, and
later one outcome: ``ok`` (the adapter durably accepted it for ``recipients``; any it refused
are listed in ``refused``), ``fail`` (definitely not sent: refused for every recipient), or
``info`` (the outcome is unknown, e.g. the driver gave up waiting). ``key`` names the logical
message: the case id the driver gave it, which travels inside the sealed message and comes
back out of each recipient's inbox store, so one key may cover several envelopes.

``allowed`` on ``invoke`` is the driver's model of the accords: which of the requested
recipients may receive the message. A driver that seals envelopes itself can name them in
``envelopes`` (recipient -> message id) so that their rejections can be traced one by one.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from broker import errors

__all__ = ["Event", "EventType", "HistoryWriter", "read_history"]


class EventType(enum.StrEnum):
    """The four events of a client history (Jepsen's invoke / ok / fail / info)."""

    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclasses.dataclass(frozen=True)
class Event:
    """One line of a history."""

    type: EventType
    client: str
    key: str
    #: unix time in seconds (the driver's wall clock, comparable with the stores' times)
    time: float
    recipients: tuple[str, ...] = ()
    allowed: tuple[str, ...] | None = None
    refused: tuple[str, ...] = ()
    envelopes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    detail: str = ""

    def to_json(self) -> str:
        """The event as one compact JSON line (without the newline)."""
        document: dict[str, Any] = {
            "type": self.type.value,
            "client": self.client,
            "key": self.key,
            "time": self.time,
            "recipients": list(self.recipients),
        }
        if self.allowed is not None:
            document["allowed"] = list(self.allowed)
        if self.refused:
            document["refused"] = list(self.refused)
        if self.envelopes:
            document["envelopes"] = dict(self.envelopes)
        if self.detail:
            document["detail"] = self.detail
        return json.dumps(document, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, line: str, *, where: str = "history") -> Event:
        """Parse one line; SchemaError naming ``where`` on anything malformed."""
        try:
            raw = _object(json.loads(line))
            allowed = raw.get("allowed")
            return cls(
                type=EventType(raw["type"]),
                client=_text(raw["client"]),
                key=_text(raw["key"]),
                time=float(raw["time"]),
                recipients=_codes(raw.get("recipients", [])),
                allowed=None if allowed is None else _codes(allowed),
                refused=_codes(raw.get("refused", [])),
                envelopes={_text(k): _text(v) for k, v in dict(raw.get("envelopes", {})).items()},
                detail=_text(raw.get("detail", "")),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise errors.SchemaError(f"{where}: not a history event ({exc})") from None


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _codes(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError("expected a list of partner codes")
    return tuple(_text(item) for item in value)


class HistoryWriter:
    """Appends events to a JSON-lines file, flushed per line so a crash keeps what was written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] = path.open("a", encoding="utf-8")

    def write(self, event: Event) -> None:
        """Append one event."""
        self._handle.write(event.to_json() + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_history(paths: Iterable[Path]) -> Iterator[Event]:
    """Every event of the given history files, file by file, in the order written.

    A torn last line (a driver killed mid-write) is skipped; any other bad line is a
    SchemaError naming the file and line.
    """
    for path in paths:
        lines = path.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if number == len(lines) and not line.endswith("}"):
                continue  # torn final write
            yield Event.from_json(line, where=f"{path}:{number}")
