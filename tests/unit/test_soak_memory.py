"""The soak's memory figure: each daemon's growth from its own first reading after warm-up,
so a daemon a fault killed just then still has one."""

from __future__ import annotations

from types import SimpleNamespace

from benchmarks.soak.runner import SoakResult


def test_a_daemon_down_at_the_end_of_warm_up_is_measured_from_its_next_reading() -> None:
    soak = SimpleNamespace(
        profile=SimpleNamespace(duration_s=90),
        rss_mb=[
            (10.0, {"GB": 90.0, "gateway": 70.0}),
            (19.0, {"GB": 100.0}),  # warm-up ends at 18 s; the gateway was just killed
            (24.0, {"GB": 101.0, "gateway": 80.0}),
            (89.0, {"GB": 105.0, "gateway": 84.0}),
            (95.0, {"GB": 500.0, "gateway": 500.0}),  # after the load: not counted
        ],
    )
    assert SoakResult.rss_growth(soak) == {"GB": 5.0, "gateway": 5.0}  # type: ignore[arg-type]
