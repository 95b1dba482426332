"""A small in-process registry of counters, gauges and histograms, rendered in the Prometheus
text exposition format 0.0.4: the one metrics concept of every daemon.

    >>> metrics = Metrics()
    >>> delivered = metrics.counter("xb_delivered_total", "Envelopes delivered.", ("recipient",))
    >>> delivered.inc(recipient="RS")
    >>> print(metrics.render(), end="")
    # HELP xb_delivered_total Envelopes delivered.
    # TYPE xb_delivered_total counter
    xb_delivered_total{recipient="RS"} 1.0

Label values are whatever the daemon passes: partner codes, reason codes, topic names.
Never pass message content; the set of label values must stay small and bounded. A series
that exists only after its first event hides the difference between "none yet" and "not
exported", and makes a rate over it undefined: daemons :meth:`~_Metric.declare` the label
values they know at start (every reason code, every partner), so each series is exported at
zero from the first scrape.

Every registry also exports the process (``process_*``: resident memory, CPU seconds, open
file descriptors, start time) and ``xb_build_info{version,python}``, read at each scrape.
"""

from __future__ import annotations

import bisect
import math
import os
import platform
import re
import resource
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Final, Literal

from broker import __version__

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "Counter", "Gauge", "Histogram", "Metrics"]

#: seconds: from a signature check (well under a millisecond) to a hop through Kafka (seconds)
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

#: the Content-Type of :meth:`Metrics.render`'s output
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LabelKey = tuple[str, ...]


class _Metric:
    kind: Literal["counter", "gauge", "histogram"]

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

    def declare(self, **labels: str) -> None:
        """Export the series named by ``labels`` at zero until its first event."""
        key = self._key(labels)
        with self._lock:
            self._values.setdefault(key, 0.0)

    def samples(self) -> list[tuple[_LabelKey, float]]:
        with self._lock:
            return sorted(self._values.items())

    def lines(self) -> list[str]:
        """The sample lines of this metric, format 0.0.4."""
        return [
            f"{self.name}{_label_text(self.labels, key)} {_number(value)}"
            for key, value in self.samples()
        ]


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


class Histogram(_Metric):
    """Observations counted into cumulative buckets (``le``), with their sum and count: how
    long each stage takes, so a percentile can be read over any window."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...],
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labels)
        bounds = tuple(float(b) for b in buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or not all(map(math.isfinite, bounds)):
            raise ValueError(f"{name}: buckets must be finite and strictly increasing")
        self.buckets = bounds
        # per label set: one count per bucket (+Inf last), then the sum
        self._observations: dict[_LabelKey, list[float]] = {}
        self._values.clear()
        if not labels:
            self._observations[()] = [0.0] * (len(bounds) + 2)

    def declare(self, **labels: str) -> None:
        """Export the series named by ``labels`` (every bucket at zero) until observed."""
        key = self._key(labels)
        with self._lock:
            self._observations.setdefault(key, [0.0] * (len(self.buckets) + 2))

    def observe(self, value: float, /, **labels: str) -> None:
        """Count one observation of ``value`` (seconds, for a latency)."""
        if math.isnan(value):
            raise ValueError(f"{self.name}: cannot observe NaN")
        key = self._key(labels)
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            counts = self._observations.setdefault(key, [0.0] * (len(self.buckets) + 2))
            counts[index] += 1
            counts[-1] += value

    def count(self, **labels: str) -> float:
        """How many observations the series named by ``labels`` has had."""
        with self._lock:
            counts = self._observations.get(self._key(labels))
        return 0.0 if counts is None else sum(counts[:-1])

    def value(self, **labels: str) -> float:
        """The sum of the observations of the series named by ``labels``."""
        with self._lock:
            counts = self._observations.get(self._key(labels))
        return 0.0 if counts is None else counts[-1]

    def lines(self) -> list[str]:
        with self._lock:
            observed = sorted((key, list(counts)) for key, counts in self._observations.items())
        lines: list[str] = []
        names = (*self.labels, "le")
        for key, counts in observed:
            cumulative = 0.0
            for bound, count in zip((*self.buckets, math.inf), counts[:-1], strict=True):
                cumulative += count
                le = "+Inf" if math.isinf(bound) else repr(bound)
                lines.append(
                    f"{self.name}_bucket{_label_text(names, (*key, le))} {_number(cumulative)}"
                )
            lines.append(f"{self.name}_sum{_label_text(self.labels, key)} {_number(counts[-1])}")
            lines.append(f"{self.name}_count{_label_text(self.labels, key)} {_number(cumulative)}")
        return lines


class Metrics:
    """The registry one daemon exposes on ``/metrics``."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()
        self._started = time.time()

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

    def histogram(
        self,
        name: str,
        help: str,
        labels: Iterable[str] = (),
        *,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        """Register (or return the already registered) histogram ``name``; its name ends in
        the unit (``_seconds``)."""
        metric = self._register(Histogram, name, help, tuple(labels), buckets=tuple(buckets))
        assert isinstance(metric, Histogram)  # noqa: S101 - _register checked the kind
        return metric

    def _register(
        self,
        kind: type[_Metric],
        name: str,
        help_text: str,
        labels: tuple[str, ...],
        *,
        buckets: tuple[float, ...] | None = None,
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
            if buckets is not None and "le" in labels:
                raise ValueError(f"{name}: a histogram cannot have a label named le")
            metric = (
                Histogram(name, help_text, labels, buckets)
                if buckets is not None
                else kind(name, help_text, labels)
            )
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
            lines.extend(metric.lines())
        lines.extend(self._process_lines())
        return "".join(line + "\n" for line in lines)

    def _process_lines(self) -> list[str]:
        """The process and build series, read now (Prometheus's conventional names)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        series: list[tuple[str, str, str, str, float]] = [
            ("process_cpu_seconds_total", "counter", "User and system CPU time.", "",
             usage.ru_utime + usage.ru_stime),
            ("process_start_time_seconds", "gauge", "When the process started (Unix time).", "",
             self._started),
            ("xb_build_info", "gauge", "1, labelled with the broker's version and Python's.",
             _label_text(("python", "version"), (platform.python_version(), __version__)), 1.0),
        ]  # fmt: skip
        resident = _resident_bytes()
        if resident is not None:
            series.append(("process_resident_memory_bytes", "gauge", "Resident memory.", "",
                           float(resident)))  # fmt: skip
        descriptors = _open_descriptors()
        if descriptors is not None:
            series.append(("process_open_fds", "gauge", "Open file descriptors.", "",
                           float(descriptors)))  # fmt: skip
        lines: list[str] = []
        for name, kind, help_text, labels, value in sorted(series):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
                      f"{name}{labels} {_number(value)}"]  # fmt: skip
        return lines


def _resident_bytes() -> int | None:
    """Resident memory now, from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _open_descriptors() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


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
