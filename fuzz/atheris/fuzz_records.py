"""Coverage-guided fuzzing of what the audit and quarantine topics hold and auditors read:
quarantine records, signed audit records, checkpoint records and notes, the partner
registry, and gateway routing of arbitrary outbox records. The first input byte picks the
parser. ``python fuzz/atheris/fuzz_records.py -max_total_time=600``
"""

from __future__ import annotations

import sys

from _harness import atheris, fuzz

with atheris.instrument_imports(include=["broker"]):
    from broker.keys import verify_registry
    from broker.ledger import judge_record, open_registered_checkpoint, registered_cosigners
    from broker.pipeline import parse_quarantine_record, verify_audit_record
    from broker.pipeline.gateway import InboundRecord, route
    from tests.fuzz.seeds import NOW, world

WORLD = world()


def _route(value: bytes) -> None:
    route(
        InboundRecord(topic="xb.outbox.GB", partition=0, offset=0, value=value),
        registry=WORLD.registry,
        accords=WORLD.accords,
        gateway_key=WORLD.gateway_key,
        now=NOW,
        counters={},
        dedup=lambda _key: "new",
    )


TARGETS = {
    ord("q"): lambda d: parse_quarantine_record(d).value_prefix,
    ord("a"): lambda d: verify_audit_record(d, registry=WORLD.registry),
    # judging never raises, on any bytes: a crash here is the bug
    ord("c"): lambda d: judge_record(d, registry=WORLD.registry),
    ord("n"): lambda d: (
        open_registered_checkpoint(d, WORLD.registry),
        registered_cosigners(d, WORLD.registry),
    ),
    ord("r"): lambda d: verify_registry(d, trusted=WORLD.registry, now=NOW),
    ord("o"): _route,
}


def target(data: bytes) -> None:
    if data:
        TARGETS.get(data[0], TARGETS[ord("o")])(data[1:])


def seeds() -> list[bytes]:
    return [
        *(b"q" + r for r in WORLD.quarantine_records),
        *(b"a" + r for r in WORLD.audit_records),
        b"c" + WORLD.checkpoint_record,
        b"n" + WORLD.checkpoint_note,
        b"r" + WORLD.registry_bytes,
        *(b"o" + e for e in WORLD.envelopes),
    ]


if __name__ == "__main__":
    fuzz("records", target, seeds)
    sys.exit(0)
