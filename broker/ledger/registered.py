"""Which registered keys may sign and cosign the audit log's checkpoints, and when.

A checkpoint is the log's when a gateway key that the partner registry lists, valid at the
checkpoint's ``time`` line, signed it under the key name of the origin. A cosignature counts
when a witness key the registry lists, valid at the cosignature's own timestamp, made it
under the key name the registry gives that witness (its ``name``: for an existing C2SP
witness, the name it signs with). A witness whose registered name is not a valid note key
name (it has a space or a ``+``) can cosign nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from broker import errors
from broker.audit import (
    Checkpoint,
    CosignatureKey,
    checkpoint_cosigners,
    open_checkpoint,
    read_checkpoint,
)
from broker.audit.note import is_key_name
from broker.crypto import VerifyKey
from broker.ids import KeyId
from broker.keys import Registry

__all__ = ["Cosigner", "log_keys_at", "open_registered_checkpoint", "registered_cosigners"]


@dataclasses.dataclass(frozen=True, slots=True)
class Cosigner:
    """A registered witness whose cosignature verified, and when it says it cosigned."""

    name: str
    key_id: KeyId
    timestamp: dt.datetime


def log_keys_at(registry: Registry, *, at: dt.datetime) -> list[VerifyKey]:
    """Every gateway key the registry lists as valid at ``at``."""
    keys: list[VerifyKey] = []
    for record in registry.key_records():
        if record.role == "gateway":
            try:
                keys.append(registry.gateway_key(record.key_id, at=at))
            except errors.KeyTrustError:
                continue  # not valid then
    return keys


def open_registered_checkpoint(note: bytes, registry: Registry) -> Checkpoint:
    """The checkpoint in ``note`` once a gateway key registered at its time has signed it."""
    claimed, _ = read_checkpoint(note)
    keys = log_keys_at(registry, at=claimed.timestamp)
    if not keys:
        raise errors.AuditError("no gateway key is registered at the checkpoint's time")
    return open_checkpoint(note, log_keys=keys)


def registered_cosigners(note: bytes, registry: Registry) -> tuple[Cosigner, ...]:
    """The registered witnesses whose cosignature on ``note`` verifies, each with a key valid
    at the time its cosignature carries. A failing line by a registered witness key is an
    AuditError; the log's own signature is not checked here."""
    _, parsed = read_checkpoint(note)
    candidates: dict[tuple[str, bytes], tuple[CosignatureKey, KeyId, dt.datetime]] = {}
    wanted = {(s.name, s.key_id): s for s in parsed.signatures}
    for record in registry.key_records():
        if record.role != "witness" or not is_key_name(record.owner):
            continue
        for (name, line_id), line in wanted.items():
            if name != record.owner:
                continue
            try:
                stamp = dt.datetime.fromtimestamp(CosignatureKey.timestamp_of(line), tz=dt.UTC)
                key = registry.witness_key(record.key_id, at=stamp)
            except (errors.AuditError, errors.KeyTrustError, ValueError, OverflowError, OSError):
                continue  # not a cosignature line, or this key was not valid then
            note_key = CosignatureKey(record.owner, key)
            if note_key.key_id == line_id:
                candidates[name, line_id] = (note_key, record.key_id, stamp)
    verified = checkpoint_cosigners(note, witnesses=[c[0] for c in candidates.values()])
    return tuple(
        Cosigner(key.name, candidates[key.name, key.key_id][1], candidates[key.name, key.key_id][2])
        for key in verified
    )
