"""A small in-process registry of counters and gauges, rendered in the Prometheus text
exposition format 0.0.4.

    >>> metrics = Metrics()
    >>> delivered = metrics.counter("xb_delivered_total", "Envelopes delivered.", ("recipient",))
    >>> delivered.inc(recipient="RS")
    >>> print(metrics.render(), end="")
    # HELP xb_delivered_total Envelopes delivered.
    # TYPE xb_delivered_total counter
    xb_delivered_total{recipient="RS"} 1.0

Label values are whatever the daemon passes: partner codes, reason codes, topic names.
Never pass message content; the set of label values must stay small and bounded.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from typing import Final, Literal

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Metrics"]

#: the Content-Type of :meth:`Metrics.render`'s output
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LabelKey = tuple[str, ...]


class _Metric:
    kind: Literal["counter", "gauge"]

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.help = help_text
        self.labels = labels
        self._values: dict[_LabelKey, float] = {}
        self._lock = threading.Lock()
        if not labels:
            self._values[()] = 0.0  # an unlabelled metric is exposed from the start

    def _key(self, labels: dict[str, str]) -> _LabelKey:
        if set(labels) != set(self.labels):
            raise ValueError(
                f"{self.name} takes labels {sorted(self.labels)}, got {sorted(labels)}"
            )
        return tuple(str(labels[name]) for name in self.labels)

    def value(self, **labels: str) -> float:
        """The current value for ``labels`` (0 if never touched)."""
        return self._values.get(self._key(labels), 0.0)

    def _add(self, amount: float, labels: dict[str, str]) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def samples(self) -> list[tuple[_LabelKey, float]]:
        with self._lock:
            return sorted(self._values.items())


class Counter(_Metric):
    """A value that only goes up; by convention its name ends in ``_total``."""

    kind = "counter"

    def inc(self, amount: float = 1.0, /, **labels: str) -> None:
        """Add ``amount`` (default 1, never negative) to the series named by ``labels``."""
        if not (amount >= 0 and math.isfinite(amount)):
            raise ValueError(f"a counter only goes up: {amount!r}")
        self._add(amount, labels)


class Gauge(_Metric):
    """A value that goes up and down: queue depth, readiness, last reload time."""

    kind = "gauge"

    def set(self, value: float, /, **labels: str) -> None:
        """Set the series named by ``labels`` to ``value``."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, /, **labels: str) -> None:
        """Add ``amount`` to the series named by ``labels``."""
        self._add(amount, labels)

    def dec(self, amount: float = 1.0, /, **labels: str) -> None:
        """Subtract ``amount`` from the series named by ``labels``."""
        self._add(-amount, labels)


class Metrics:
    """The registry one daemon exposes on ``/metrics``."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, help: str, labels: Iterable[str] = ()) -> Counter:
        """Register (or return the already registered) counter ``name``."""
        metric = self._register(Counter, name, help, tuple(labels))
        assert isinstance(metric, Counter)  # noqa: S101 - _register checked the kind
        return metric

    def gauge(self, name: str, help: str, labels: Iterable[str] = ()) -> Gauge:
        """Register (or return the already registered) gauge ``name``."""
        metric = self._register(Gauge, name, help, tuple(labels))
        assert isinstance(metric, Gauge)  # noqa: S101 - _register checked the kind
        return metric

    def _register(
        self, kind: type[_Metric], name: str, help_text: str, labels: tuple[str, ...]
    ) -> _Metric:
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"{name!r} is not a Prometheus metric name")
        for label in labels:
            if not _LABEL_RE.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"{label!r} is not a Prometheus label name")
        if len(set(labels)) != len(labels):
            raise ValueError(f"{name}: duplicate label names {labels}")
        with self._lock:
            existing = self._metrics.get(name)
            if existing is not None:
                if type(existing) is not kind or existing.labels != labels:
                    raise ValueError(f"{name} is already registered with another type or labels")
                return existing
            metric = kind(name, help_text, labels)
            self._metrics[name] = metric
            return metric

    def render(self) -> str:
        """Every metric in the text exposition format 0.0.4, sorted by name."""
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda metric: metric.name)
        lines: list[str] = []
        for metric in metrics:
            lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            for key, value in metric.samples():
                lines.append(f"{metric.name}{_label_text(metric.labels, key)} {_number(value)}")
        return "".join(line + "\n" for line in lines)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(names: tuple[str, ...], values: _LabelKey) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
