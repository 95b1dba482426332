"""Audit-log verification speed, as a ratio against bare SHA-256 over the same bytes.

Builds a log of 100,000 records of about 300 bytes, signs a C2SP checkpoint and has a witness
cosign it, then times what an auditor does offline: verify the signed checkpoint and its
cosignature, recompute every leaf hash and the tree head, and compare. The baseline, measured
in the same run on the same records, is one SHA-256 per record and nothing else. Rounds
alternate between the two so that machine noise hits both alike; the median of each is
reported.

A second part times ``broker audit verify`` and ``broker audit replay`` on a real bundle of
``--bundle-records`` gateway-signed audit records with a checkpoint every 1,000 and an unsigned
tail of one record in 200: read and hash every line, check every checkpoint's signature and
root and every tail record's own signature (default), or every record's own signature as well
(``thorough``), or re-evaluate every decision under its accord (replay). Each is printed as a
ratio against bare SHA-256 over the same record bytes, measured in the same run.

    /tmp/venv/bin/python benchmarks/audit_bench.py [--quick] [--records N] [--rounds R]
        [--bundle-records M] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import pathlib
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from broker import errors
from broker.audit import (
    Checkpoint,
    CosignatureKey,
    MerkleLog,
    add_signatures,
    checkpoint_cosigners,
    consistency_proof,
    cosign_checkpoint,
    inclusion_proof,
    leaf_hash,
    open_checkpoint,
    root_hash,
    sign_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from broker.cosign import accord_digest
from broker.crypto import SigningKey, Suite, VerifyKey
from broker.ids import PartnerCode
from broker.keys import Registry
from broker.keys.testing import build_registry
from broker.ledger import encode_checkpoint_record
from broker.pipeline.records import AuditKind, format_time, sign_audit_record
from broker.policy import Request, evaluate, load_accord
from broker.replay import (
    BundleHeader,
    Entry,
    iter_entries,
    read_header,
    replay_entries,
    verify_entries,
)
from broker.replay.bundle import write_bundle
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)

ORIGIN = "xb.example/audit/bench"
WITNESS = "witness.example/bench"
GOAL = 0.5
#: the binary bundle: verify at least this share of bare SHA-256 over the same record bytes
BINARY_GOAL = 0.3
TAIL_SHARE = 200  # one record in 200 after the last checkpoint: 500 of 100,000
NOW = dt.datetime(2026, 11, 28, 16, 0, tzinfo=dt.UTC)


def make_records(count: int, *, seed: int = 6962) -> list[bytes]:
    """Deterministic records of 280 to 320 bytes: the size of a labels-and-digests record."""
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(280, 320)) for _ in range(count)]


def verify_log(
    records: Sequence[bytes], note: bytes, *, gateway: VerifyKey, witness: VerifyKey
) -> Checkpoint:
    """What the auditor runs: signatures first, then every record against the signed head."""
    checkpoint = open_checkpoint(note, log_keys=[gateway])
    if not checkpoint_cosigners(note, witnesses=[CosignatureKey(WITNESS, witness)]):
        raise errors.AuditError("the witness did not cosign")
    head = root_hash([leaf_hash(record) for record in records])
    if len(records) != checkpoint.size or head != checkpoint.root:
        raise errors.AuditError("the records do not match the signed checkpoint")
    return checkpoint


def bare_sha256(records: Sequence[bytes]) -> list[bytes]:
    """The baseline: one SHA-256 per record, the least any integrity check could cost."""
    return [hashlib.sha256(record).digest() for record in records]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def best_of(action: Callable[[], object], *, times: int = 5) -> float:
    """The fastest of a few runs: for single operations, where one pause would dominate."""
    return min(timed(action) for _ in range(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--records", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--bundle-records", type=int)
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    args = parser.parse_args()
    quick = {"records": 20_000, "rounds": 3, "bundle_records": 5_000}
    full = {"records": 100_000, "rounds": 7, "bundle_records": 100_000}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    records = make_records(args.records)
    total_bytes = sum(map(len, records))

    gateway, witness = SigningKey.generate(Suite.CLASSIC), SigningKey.generate(Suite.CLASSIC)
    log = MerkleLog()
    build_start = time.perf_counter()
    for record in records:
        log.append_data(record)
    checkpoint = Checkpoint(origin=ORIGIN, size=log.size, root=log.root(), timestamp=NOW)
    note = sign_checkpoint(checkpoint, key=gateway)
    seen = open_checkpoint(note, log_keys=[gateway.public_key()])
    cosignature = cosign_checkpoint(seen, key=witness, name=WITNESS, timestamp=int(NOW.timestamp()))
    note = add_signatures(note, [cosignature])
    build_seconds = time.perf_counter() - build_start

    verify_times, baseline_times = [], []
    for _ in range(args.rounds):
        verify_times.append(
            timed(
                lambda: verify_log(
                    records, note, gateway=gateway.public_key(), witness=witness.public_key()
                )
            )
        )
        baseline_times.append(timed(lambda: bare_sha256(records)))
    verify_rate = len(records) / statistics.median(verify_times)
    baseline_rate = len(records) / statistics.median(baseline_times)

    hashes = [leaf_hash(record) for record in records]
    index, old_size = len(records) // 3, len(records) // 2
    proof_seconds = best_of(lambda: inclusion_proof(hashes, index, len(hashes)))
    proof = inclusion_proof(hashes, index, len(hashes))
    check_seconds = best_of(
        lambda: verify_inclusion(hashes[index], index, len(hashes), proof, checkpoint.root)
    )
    consistency = consistency_proof(hashes, old_size, len(hashes))
    old_root = root_hash(hashes[:old_size])
    consistency_seconds = best_of(
        lambda: verify_consistency(old_size, len(hashes), old_root, checkpoint.root, consistency)
    )

    print(f"records: {len(records):,} ({total_bytes / len(records):.0f} B average)")
    print(f"build (append + sign + co-sign): {len(records) / build_seconds:12,.0f} records/s")
    print(f"verify (checkpoint + leaves + head): {verify_rate:10,.0f} records/s")
    print(f"baseline (bare SHA-256 per record):  {baseline_rate:10,.0f} records/s")
    print(f"ratio verify / baseline: {verify_rate / baseline_rate:.2f} (goal >= 0.5)")
    print(
        f"inclusion proof from a store of {len(hashes):,}: build {proof_seconds * 1e3:.1f} ms, "
        f"verify {check_seconds * 1e6:.0f} us ({len(proof)} hashes)"
    )
    print(
        f"consistency proof {old_size:,} -> {len(hashes):,}: verify "
        f"{consistency_seconds * 1e6:.0f} us ({len(consistency)} hashes)"
    )
    rows = [_row("verify in memory (checkpoint + leaves + head)", verify_rate, baseline_rate)]
    if args.bundle_records:
        rows += bundle_bench(args.bundle_records, rounds=max(1, args.rounds // 2))
    if args.json:
        document = {"benchmark": "audit", "unit": "records/s", "rows": rows}
        args.json.write_text(json.dumps(document, indent=2) + "\n")


def _row(
    metric: str, ours: float, baseline: float, *, judged: bool = True, goal: float = GOAL
) -> dict[str, Any]:
    """One result; ``judged`` rows are the ones a goal (>= ``goal`` of SHA-256) applies to."""
    ratio = ours / baseline
    return {
        "metric": metric,
        "ours": ours,
        "baseline": baseline,
        "baseline_name": "bare SHA-256",
        "ratio": ratio,
        "goal_ratio": goal if judged else None,
        "goal": f">= {goal} of SHA-256" if judged else "",
        "met": ratio >= goal if judged else None,
    }


def bundle_bench(count: int, *, rounds: int) -> list[dict[str, Any]]:
    """Time verify (default and thorough) and replay of a bundle of ``count`` signed records
    against bare SHA-256 over the same record bytes; medians of ``rounds`` where affordable."""
    with tempfile.TemporaryDirectory() as scratch:
        path = pathlib.Path(scratch) / "audit.bundle"
        binary = pathlib.Path(scratch) / "audit.bin"
        registry, values = write_signed_bundle(path, count, binary=binary)

        def verify(*, thorough: bool, bundle: pathlib.Path = path) -> None:
            report = verify_entries(iter_entries(bundle), registry=registry, thorough=thorough)
            if not report.intact:
                raise errors.AuditError("the benchmark bundle does not verify")

        default_times, binary_times, baseline_times = [], [], []
        for _ in range(rounds):
            default_times.append(timed(lambda: verify(thorough=False)))
            binary_times.append(timed(lambda: verify(thorough=False, bundle=binary)))
            baseline_times.append(timed(lambda: bare_sha256(values)))
        # One signature per record: one round is long enough to be steady.
        thorough_seconds = timed(lambda: verify(thorough=True))
        baseline_times.append(timed(lambda: bare_sha256(values)))
        accords = read_header(path).accords()
        replay_seconds = timed(lambda: replay_entries(iter_entries(path), accords=accords))
    default_rate = count / statistics.median(default_times)
    binary_rate = count / statistics.median(binary_times)
    thorough_rate, replay_rate = count / thorough_seconds, count / replay_seconds
    baseline_rate = count / statistics.median(baseline_times)
    tail = max(1, count // TAIL_SHARE)
    print(f"bundle of {count:,} signed records (checkpoint every 1,000, {tail} unsigned):")
    print(f"  audit verify (checkpoints, leaves, tail signatures): {default_rate:10,.0f} records/s")
    print(f"  audit verify, binary form (the same checks):        {binary_rate:10,.0f} records/s")
    print(f"  audit verify --thorough (every record's signature): {thorough_rate:10,.0f} records/s")
    print(f"  audit replay (re-evaluate every decision):          {replay_rate:10,.0f} records/s")
    print(f"  baseline (bare SHA-256 per record):                 {baseline_rate:10,.0f} records/s")
    print(f"  ratio verify / baseline:            {default_rate / baseline_rate:.4f}")
    print(f"  ratio verify --thorough / baseline: {thorough_rate / baseline_rate:.4f}")
    print(f"  ratio verify binary / baseline:     {binary_rate / baseline_rate:.4f}")
    return [
        _row("bundle verify (default)", default_rate, baseline_rate),
        _row("bundle verify, binary form", binary_rate, baseline_rate, goal=BINARY_GOAL),
        _row("bundle verify --thorough", thorough_rate, baseline_rate, judged=False),
        _row("bundle replay", replay_rate, baseline_rate, judged=False),
    ]


def write_signed_bundle(
    path: pathlib.Path, count: int, *, binary: pathlib.Path | None = None
) -> tuple[Registry, list[bytes]]:
    """A bundle of ``count`` gateway-signed disclosures under gb-rs, checkpointed every 1,000
    except for the last ``count // TAIL_SHARE``, which no checkpoint covers yet (and the same
    bundle in the binary form at ``binary``)."""
    tail = max(1, count // TAIL_SHARE)
    fixture = build_registry(now=NOW)
    key = next(iter(fixture.gateways.values()))
    policies = pathlib.Path(__file__).resolve().parents[1] / "policies"
    accord = load_accord(policies / "gb-rs.yaml")
    labels = Labels(
        message_type=MessageType.PERSON_ALERT,
        schema_version=1,
        classification=Classification.OFFICIAL,
        tlp=TLP.AMBER,
        handling=HandlingCode.H1,
        purposes=frozenset({Purpose.PEOPLE_SMUGGLING}),
        data_categories=frozenset({DataCategory.OPERATIONAL, DataCategory.IDENTITY}),
    )
    request = Request(labels=labels, sender=PartnerCode("GB"), recipient=PartnerCode("RS"))
    decision = evaluate(accord, request, now=NOW, counters={})
    rng = random.Random(6962)
    values: list[bytes] = []
    log, pending = MerkleLog(), []
    entries: list[Entry] = []
    for i in range(count):
        fields: dict[str, Any] = {
            "kind": AuditKind.DISCLOSURE,
            "message_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "sender": "GB",
            "recipient": "RS",
            "labels": labels,
            "envelope_sha256": rng.randbytes(32).hex(),
            "decision": "allow",
            "reason_code": None,
            "rule_ids": decision.rule_ids,
            "reasons": decision.reasons,
            "accord_id": accord.accord,
            "accord_version": accord.version,
            "accord_digest": accord_digest(accord),
            "justification": {"purposes": ("people-smuggling",), "flow": decision.flow},
            "decided_at": format_time(NOW),
        }
        value = sign_audit_record(fields, gateway_key=key).to_bytes()
        values.append(value)
        entries.append(Entry(len(entries), value))
        leaf = leaf_hash(value)
        log.append(leaf)
        pending.append(leaf)
        if (log.size % 1000 == 0 and i < count - tail) or i == count - tail - 1:
            checkpoint = Checkpoint(origin=ORIGIN, size=log.size, root=log.root(), timestamp=NOW)
            note = sign_checkpoint(checkpoint, key=key)
            first = log.size - len(pending)
            record = encode_checkpoint_record(
                note, first=first, leaves=pending, refused=[], through=len(entries)
            )
            entries.append(Entry(len(entries), record))
            pending = []
    header = BundleHeader.build(
        topic="xb.audit",
        exported_at=format_time(NOW),
        registry_bytes=fixture.data,
        accords=[accord],
    )
    with path.open("wb") as out:
        write_bundle(out, header, entries)
    if binary is not None:
        with binary.open("wb") as out:
            write_bundle(out, header, entries, binary=True)
    return fixture.registry, values


if __name__ == "__main__":
    main()
