"""The metrics registry renders the Prometheus text format 0.0.4 and refuses misuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.runtime import Metrics


def test_render_has_help_type_and_one_line_per_series() -> None:
    """Each metric renders HELP, TYPE and one sample per label set, sorted."""
    metrics = Metrics()
    delivered = metrics.counter("xb_delivered_total", "Envelopes delivered.", ("recipient",))
    depth = metrics.gauge("xb_queue_depth", "Records in flight.")
    delivered.inc(recipient="RS")
    delivered.inc(2, recipient="MK")
    depth.set(7)
    depth.dec()
    assert metrics.render() == (
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
    assert metrics.render().splitlines() == [
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
