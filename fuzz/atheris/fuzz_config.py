"""Coverage-guided fuzzing of daemon configuration YAML (broker.config.load_config on a file).

``python fuzz/atheris/fuzz_config.py -max_total_time=600``
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from _harness import atheris, fuzz

with atheris.instrument_imports(include=["broker"]):
    from broker.config import load_config
    from tests.fuzz.seeds import config_seeds

_DIR = tempfile.TemporaryDirectory()
_PATH = pathlib.Path(_DIR.name) / "broker.yaml"


def target(data: bytes) -> None:
    _PATH.write_bytes(data)
    load_config(_PATH, env={})


if __name__ == "__main__":
    fuzz("config", target, config_seeds)
    sys.exit(0)
