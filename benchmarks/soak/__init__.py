"""The soak runner: ``python -m benchmarks.soak --profile ci|long`` (docs/RELIABILITY.md)."""
