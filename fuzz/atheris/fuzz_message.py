"""Coverage-guided fuzzing of message JSON (broker.schema.parse_message) and of adapter spool
submissions, which wrap a message (broker.adapter.spool.parse_submission).

The first input byte picks the parser. ``python fuzz/atheris/fuzz_message.py -max_total_time=600``
"""

from __future__ import annotations

import sys

from _harness import atheris, fuzz

with atheris.instrument_imports(include=["broker"]):
    from broker.adapter.spool import parse_submission
    from broker.schema import parse_message
    from tests.fuzz.seeds import message_seeds, submission_seeds


def target(data: bytes) -> None:
    if data[:1] == b"s":
        parse_submission(data[1:])
    else:
        parse_message(data[1:])


def seeds() -> list[bytes]:
    return [b"m" + m for m in message_seeds()] + [b"s" + s for s in submission_seeds()]


if __name__ == "__main__":
    fuzz("message", target, seeds)
    sys.exit(0)
