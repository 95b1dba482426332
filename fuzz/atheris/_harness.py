"""What every coverage-guided harness here shares: imports under instrumentation, a seeded
corpus, and the one rule of the campaign.

The rule: any exception that is not a :class:`broker.errors.BrokerError` is a crash (libFuzzer
stops and writes ``crash-<sha1>``), and so are a hang (``-timeout``) and running out of memory
(``-rss_limit_mb``). Harnesses for code that must never raise at all (the receiver's
``accept()``) pass ``refuse=()``, so even our own errors count as crashes there.

Run from the repository root, e.g. ``python fuzz/atheris/fuzz_envelope.py -max_total_time=600``
(see fuzz/README.md). Without a corpus directory on the command line the harness uses
``$BROKER_FUZZ_CORPUS/<name>`` (default: the system temp directory), seeded on first use with
the same valid inputs the hypothesis campaigns in tests/fuzz/ start from.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import sys
import tempfile
from collections.abc import Callable, Iterable

import atheris  # type: ignore[import-untyped]

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    # The harnesses reuse the seed builders of tests/fuzz/seeds.py.
    sys.path.insert(0, str(REPO))

__all__ = ["REPO", "atheris", "fuzz"]


def _corpus_dir(name: str, argv: list[str]) -> list[str]:
    """``argv`` with a corpus directory appended when none was given."""
    if any(not arg.startswith("-") for arg in argv[1:]):
        return argv
    base = pathlib.Path(os.environ.get("BROKER_FUZZ_CORPUS", tempfile.gettempdir()))
    return [*argv, str(base / f"broker-fuzz-{name}")]


def _seed(directory: pathlib.Path, seeds: Iterable[bytes]) -> None:
    if directory.is_file():
        return  # replaying one input (a crash file), not fuzzing a corpus
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        return
    for seed in seeds:
        (directory / hashlib.sha1(seed, usedforsecurity=False).hexdigest()).write_bytes(seed)


def fuzz(
    name: str,
    target: Callable[[bytes], object],
    seeds: Callable[[], Iterable[bytes]],
    *,
    refuse: tuple[type[BaseException], ...] | None = None,
) -> None:
    """Fuzz ``target`` with libFuzzer; ``refuse`` are the exceptions that are not crashes
    (default: BrokerError)."""
    from broker.errors import BrokerError

    allowed = (BrokerError,) if refuse is None else refuse
    argv = _corpus_dir(name, sys.argv)
    corpus = next(arg for arg in argv[1:] if not arg.startswith("-"))
    _seed(pathlib.Path(corpus), seeds())

    def one_input(data: bytes) -> None:
        with contextlib.suppress(*allowed):
            target(data)

    atheris.Setup(argv, one_input)
    atheris.Fuzz()
