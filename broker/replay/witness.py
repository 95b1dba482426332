"""A partner's witness: co-sign the log's newest checkpoint once it is consistent with the last
checkpoint this witness signed.

The witness keeps its state in a directory it owns: ``<origin>.last`` holds the last note it
co-signed for each log. The first time, it trusts the checkpoint as it finds it (trust on
first use); after that it refuses a log that shrank, forked or rewrote its prefix, so two
auditors shown different histories can tell. The consistency proof is computed from the log's
records and then checked against the two signed roots, so a damaged copy cannot pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import pathlib
import re
from collections.abc import Iterable

from broker import errors
from broker.audit import (
    Checkpoint,
    add_cosignatures,
    consistency_proof,
    verify_log_signature,
    witness_cosign,
)
from broker.crypto import SigningKey
from broker.keys import Registry
from broker.replay.bundle import Entry
from broker.replay.verify import checkpoint_keys, scan

__all__ = ["WitnessResult", "witness_log"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclasses.dataclass(frozen=True)
class WitnessResult:
    """What the witness signed: the checkpoint, the size it was consistent with, and where the
    co-signed note was written."""

    checkpoint: Checkpoint
    previous_size: int | None
    note: bytes
    path: pathlib.Path

    def __bool__(self) -> bool:
        raise TypeError("a WitnessResult has no truth value; witness_log() raises on refusal")


def witness_log(
    entries: Iterable[Entry],
    *,
    registry: Registry,
    key: SigningKey,
    state_dir: pathlib.Path,
    now: dt.datetime,
) -> WitnessResult:
    """Co-sign the newest checkpoint the log reproduces; AuditError if it is not consistent."""
    found = scan(entries, registry=registry, check_records=False)
    observed = found.observed
    candidates = [c for c, r in found.checkpoints if c.size <= len(observed)]
    if not candidates:
        raise errors.AuditError("the log has no checkpoint signed by a registered gateway")
    newest = max(candidates, key=lambda c: c.size)
    note = next(r.note for c, r in found.checkpoints if c is newest)
    state = state_dir / f"{_SAFE.sub('_', newest.origin)}.last"
    previous = _load_previous(state, registry)
    proof = () if previous is None else consistency_proof(observed, previous.size, newest.size)
    # witness_cosign checks origin, growth, fork and the proof against both signed roots.
    cosignature = witness_cosign(
        newest, previous=previous, consistency_proof=proof, key=key, now=now
    )
    cosigned = add_cosignatures(note, [cosignature])
    state_dir.mkdir(parents=True, exist_ok=True)
    out = state_dir / f"{_SAFE.sub('_', newest.origin)}.{newest.size}.cosigned"
    _write_atomic(out, cosigned)
    _write_atomic(state, cosigned)
    return WitnessResult(newest, None if previous is None else previous.size, cosigned, out)


def _load_previous(state: pathlib.Path, registry: Registry) -> Checkpoint | None:
    try:
        note = state.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise errors.UsageError(f"cannot read witness state {state}: {exc.strerror}") from exc
    # Our own state is re-verified: a witness that trusted an edited state file would sign anything.
    return verify_log_signature(note, gateway_keys=checkpoint_keys(note, registry))


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
