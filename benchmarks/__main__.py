"""``python -m benchmarks``: every benchmark, one table, plots (see benchmarks/run_all.py)."""

from __future__ import annotations

from benchmarks.run_all import main

raise SystemExit(main())
