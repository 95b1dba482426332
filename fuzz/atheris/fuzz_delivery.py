"""Coverage-guided fuzzing of the receiver: accept() of any delivery frame must never raise,
not even our own errors (every failure is a Rejected).

The first input byte picks what the rest is: 0, raw frame bytes; 1, an envelope the real
gateway key attests (so the envelope checks behind the gateway signature are reached).
``python fuzz/atheris/fuzz_delivery.py -max_total_time=600``
"""

from __future__ import annotations

import datetime as dt
import sys

from _harness import atheris, fuzz

with atheris.instrument_imports(include=["broker"]):
    from broker.errors import EnvelopeError
    from broker.pipeline.receive import Accepted, Rejected, accept
    from tests.fuzz.seeds import LATER, RS, frame_for, world

WORLD = world()


def _frame(data: bytes) -> bytes:
    if data[:1] == b"\x01":
        try:
            return frame_for(WORLD, data[1:])
        except EnvelopeError:  # attest() needs a parseable header; fall back to raw bytes
            return data[1:]
    return data[1:]


def target(data: bytes) -> None:
    outcome = accept(
        _frame(data),
        me=RS,
        registry=WORLD.registry,
        decryption_keys=WORLD.rs_keys,
        accords=WORLD.counterparts,
        now=LATER,
        max_retention=dt.timedelta(days=30),
    )
    if not isinstance(outcome, Accepted | Rejected):
        raise TypeError(f"accept returned {type(outcome).__name__}")


def seeds() -> list[bytes]:
    return [b"\x00" + f for f in WORLD.frames] + [b"\x01" + e for e in WORLD.envelopes]


if __name__ == "__main__":
    fuzz("delivery", target, seeds, refuse=())
    sys.exit(0)
