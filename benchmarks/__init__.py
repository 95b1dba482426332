"""Benchmarks: each script prints its figures as ratios against baselines measured in the same
run; ``python -m benchmarks`` (benchmarks/run_all.py) runs them all (docs/PERFORMANCE.md)."""
