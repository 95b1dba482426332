"""The metrics registry renders the Prometheus text format 0.0.4 and refuses misuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import __version__
from broker.runtime import LATENCY_BUCKETS, Metrics


def _registered(metrics: Metrics) -> str:
    """What render() says of the registered metrics, less the process and build series it
    always appends."""
    text = metrics.render()
    return text[: text.index("# HELP process_cpu_seconds_total")]


def test_render_has_help_type_and_one_line_per_series() -> None:
    """Each metric renders HELP, TYPE and one sample per label set, sorted."""
    metrics = Metrics()
    delivered = metrics.counter("xb_delivered_total", "Envelopes delivered.", ("recipient",))
    depth = metrics.gauge("xb_queue_depth", "Records in flight.")
    delivered.inc(recipient="RS")
    delivered.inc(2, recipient="MK")
    depth.set(7)
    depth.dec()
    assert _registered(metrics) == (
        "# HELP xb_delivered_total Envelopes delivered.\n"
        "# TYPE xb_delivered_total counter\n"
        'xb_delivered_total{recipient="MK"} 2.0\n'
        'xb_delivered_total{recipient="RS"} 1.0\n'
        "# HELP xb_queue_depth Records in flight.\n"
        "# TYPE xb_queue_depth gauge\n"
        "xb_queue_depth 6.0\n"
    )


def test_label_values_and_help_are_escaped() -> None:
    """Backslash, quote and newline in a label value, backslash and newline in HELP, escape."""
    metrics = Metrics()
    metrics.counter("xb_x_total", "a\\b\nc", ("reason",)).inc(reason='q"\\\n')
    assert _registered(metrics).splitlines() == [
        "# HELP xb_x_total a\\\\b\\nc",
        "# TYPE xb_x_total counter",
        'xb_x_total{reason="q\\"\\\\\\n"} 1.0',
    ]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        pytest.param(lambda m: m.counter("1bad", "h"), "metric name", id="bad-metric-name"),
        pytest.param(lambda m: m.counter("ok", "h", ("__x",)), "label name", id="reserved-label"),
        pytest.param(
            lambda m: m.counter("ok", "h", ("a",)).inc(b="x"), "takes labels", id="wrong-labels"
        ),
        pytest.param(
            lambda m: m.counter("ok", "h").inc(-1), "only goes up", id="negative-increment"
        ),
        pytest.param(
            lambda m: (m.counter("ok", "h"), m.gauge("ok", "h")),
            "already registered",
            id="type-clash",
        ),
    ],
)
def test_misuse_is_refused(action: object, message: str) -> None:
    """Bad names, wrong labels, negative counter steps and clashing registrations raise."""
    with pytest.raises(ValueError, match=message):
        action(Metrics())  # type: ignore[operator]


def test_registering_again_returns_the_same_metric() -> None:
    """Two modules asking for the same counter share its series."""
    metrics = Metrics()
    metrics.counter("xb_a_total", "A.", ("r",)).inc(r="x")
    assert metrics.counter("xb_a_total", "A.", ("r",)).value(r="x") == 1.0


@given(st.lists(st.floats(min_value=0, max_value=1e6), max_size=20))
def test_a_counter_is_the_sum_of_its_increments(steps: list[float]) -> None:
    """Property: a counter's value is the sum of what was added to it."""
    counter = Metrics().counter("xb_sum_total", "Sum.")
    for step in steps:
        counter.inc(step)
    assert counter.value() == pytest.approx(sum(steps))


def test_a_histogram_renders_cumulative_buckets_sum_and_count() -> None:
    """Each observation lands in the first bucket whose bound it does not exceed; buckets are
    cumulative, +Inf equals the count, and the sum is the sum of the observations."""
    metrics = Metrics()
    seal = metrics.histogram("xb_seal_seconds", "Sealing.", ("recipient",), buckets=(0.01, 0.1))
    for value in (0.005, 0.01, 0.05, 3.0):
        seal.observe(value, recipient="RS")
    assert _registered(metrics).splitlines() == [
        "# HELP xb_seal_seconds Sealing.",
        "# TYPE xb_seal_seconds histogram",
        'xb_seal_seconds_bucket{recipient="RS",le="0.01"} 2.0',
        'xb_seal_seconds_bucket{recipient="RS",le="0.1"} 3.0',
        'xb_seal_seconds_bucket{recipient="RS",le="+Inf"} 4.0',
        'xb_seal_seconds_sum{recipient="RS"} 3.065',
        'xb_seal_seconds_count{recipient="RS"} 4.0',
    ]
    assert (seal.count(recipient="RS"), seal.value(recipient="RS")) == (4.0, 3.065)


def test_declared_series_are_exported_at_zero_before_any_event() -> None:
    """A counter and a histogram declared with the label values the daemon knows are on the
    first scrape, at zero, so a rate over them is defined from the start."""
    metrics = Metrics()
    refused = metrics.counter("xb_refused_total", "Refused.", ("reason_code",))
    refused.declare(reason_code="no_accord")
    opened = metrics.histogram("xb_open_seconds", "Opening.", buckets=(1.0,))
    lines = _registered(metrics).splitlines()
    assert 'xb_refused_total{reason_code="no_accord"} 0.0' in lines
    assert 'xb_open_seconds_bucket{le="+Inf"} 0.0' in lines
    assert "xb_open_seconds_count 0.0" in lines
    refused.inc(reason_code="no_accord")
    refused.declare(reason_code="no_accord")  # never resets a series
    assert refused.value(reason_code="no_accord") == 1.0
    assert opened.count() == 0.0


def test_process_and_build_series_are_always_exported() -> None:
    """Resident memory, CPU time, open descriptors, start time and the build's version."""
    lines = Metrics().render().splitlines()
    names = {line.split("{")[0].split(" ")[0] for line in lines if not line.startswith("#")}
    assert names == {
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "xb_build_info",
    }
    (build,) = [line for line in lines if line.startswith("xb_build_info{")]
    assert build.endswith(f'version="{__version__}"}} 1.0')


@pytest.mark.parametrize("buckets", [(), (0.1, 0.1), (0.2, 0.1), (0.1, float("inf"))], ids=str)
def test_histogram_buckets_must_be_finite_and_increasing(buckets: tuple[float, ...]) -> None:
    """An empty, repeated, unordered or infinite bound is refused (+Inf is always added)."""
    with pytest.raises(ValueError, match="buckets"):
        Metrics().histogram("xb_h_seconds", "H.", buckets=buckets)


def test_the_default_buckets_span_a_signature_to_a_slow_hop() -> None:
    """From half a millisecond to thirty seconds, strictly increasing."""
    assert LATENCY_BUCKETS[0] == 0.0005
    assert LATENCY_BUCKETS[-1] == 30.0
    assert list(LATENCY_BUCKETS) == sorted(set(LATENCY_BUCKETS))
