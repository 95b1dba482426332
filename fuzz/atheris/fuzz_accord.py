"""Coverage-guided fuzzing of accord YAML: parse_accord() must return or raise PolicyError, and
lint_accord() must return its list of problems without raising at all.

``python fuzz/atheris/fuzz_accord.py -max_total_time=600``
"""

from __future__ import annotations

import contextlib
import sys

from _harness import atheris, fuzz

with atheris.instrument_imports(include=["broker"]):
    from broker.errors import BrokerError
    from broker.policy import lint_accord, parse_accord
    from tests.fuzz.seeds import accord_seeds


def target(data: bytes) -> None:
    problems = lint_accord(data, source="fuzz.yaml")
    if not isinstance(problems, list):
        raise TypeError(f"lint_accord returned {type(problems).__name__}")
    with contextlib.suppress(BrokerError):
        parse_accord(data, source="fuzz.yaml")


if __name__ == "__main__":
    # lint_accord() may not raise even our own errors: nothing is a refusal at the top.
    fuzz("accord", target, accord_seeds, refuse=())
    sys.exit(0)
