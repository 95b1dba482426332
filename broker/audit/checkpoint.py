"""Signed checkpoints of the audit log, and witness co-signatures.

A checkpoint commits to the log's origin, size, root hash and time. It travels as a text note
in the shape of a C2SP tlog-checkpoint (a body, a blank line, then one signature line per
signer), so an auditor can read it and check it offline::

    xb.example/audit/gateway
    100000
    3sn/oFRwlxGDAabLMjCt1ChOHUlKPPI9uhDGuPRnSdA=
    time 2026-11-28T16:00:00Z

    — gateway/5c0e9b6f2d1a4c3e8f7a6b5c4d3e2f10 <base64 signature>
    — witness/0a1b2c3d4e5f60718293a4b5c6d7e8f9 <base64 8-byte time, then signature>

The gateway signs, and each witness co-signs, a domain-separated, length-prefixed input built
from the body's exact bytes (never a re-serialised object). A witness co-signs only after
checking that the new checkpoint is consistent with the last one it signed: the log grew, the
old tree is a prefix of the new one, and no second root exists for the same size.

Everything that fails to verify raises :class:`~broker.errors.AuditError`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from broker import errors
from broker.audit import merkle
from broker.crypto import SigningKey, VerifyKey
from broker.ids import KeyId

__all__ = [
    "CHECKPOINT_CONTEXT",
    "COSIGNATURE_CONTEXT",
    "Checkpoint",
    "Cosignature",
    "add_cosignatures",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_log_signature",
    "witness_cosign",
]

#: Domain separation for the gateway's checkpoint signature.
CHECKPOINT_CONTEXT = b"broker/audit/checkpoint/v1"
#: Domain separation for a witness co-signature: a different purpose, a different prefix, so a
#: co-signature can never pass as the log's own signature or the reverse.
COSIGNATURE_CONTEXT = b"broker/audit/cosignature/v1"

_DASH = "\u2014"  # the em dash that opens every signature line of a signed note
_MAX_NOTE_BYTES = 256 * 1024
_MAX_SIGNATURES = 256
_ORIGIN_RE = re.compile(r"[\x21-\x7e]{1,255}")
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,19}")
_TIME_RE = re.compile(r"time ([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)")
_SIGNATURE_RE = re.compile(_DASH + r" (gateway|witness)/([0-9a-f]{32}) ([A-Za-z0-9+/]+={0,2})")
_DEFAULT_MAX_SKEW = dt.timedelta(minutes=5)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a signed checkpoint commits to. The time is kept to whole seconds in UTC, the
    precision the note carries."""

    origin: str
    size: int
    root: bytes
    timestamp: dt.datetime

    def __post_init__(self) -> None:
        if not _is_origin(self.origin):
            raise errors.AuditError(
                "a checkpoint origin is 1 to 255 visible ASCII characters without spaces"
            )
        if not _is_size(self.size):
            raise errors.AuditError("a checkpoint size is an integer from 0 to 2**64-1")
        if not _is_root(self.root):
            raise errors.AuditError(f"a checkpoint root is {merkle.HASH_SIZE} bytes")
        if self.size == 0 and self.root != merkle.EMPTY_ROOT:
            raise errors.AuditError("an empty log's checkpoint root must be the empty-tree hash")
        object.__setattr__(self, "timestamp", _whole_seconds(self.timestamp, "checkpoint time"))

    def __bool__(self) -> bool:
        # A checkpoint is the result of verification: "if verify(...)" must not read as a test.
        raise TypeError("a Checkpoint has no truth value; verification raises on failure")

    def body(self) -> bytes:
        """The exact bytes that are signed: origin, size, base64 root and time, one per line."""
        root = base64.b64encode(self.root).decode("ascii")
        when = self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.origin}\n{self.size}\n{root}\ntime {when}\n".encode("ascii")


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One witness's co-signature over a checkpoint body, made at ``timestamp``."""

    key_id: KeyId
    timestamp: dt.datetime
    signature: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp", _whole_seconds(self.timestamp, "co-signature time"))

    def line(self) -> str:
        """The note's signature line for this co-signature (without the newline)."""
        blob = _seconds(self.timestamp).to_bytes(8, "big") + self.signature
        return f"{_DASH} witness/{self.key_id} {base64.b64encode(blob).decode('ascii')}"


def sign_checkpoint(checkpoint: Checkpoint, *, key: SigningKey) -> bytes:
    """The signed note for ``checkpoint``: its body, a blank line and the gateway's signature."""
    body = checkpoint.body()
    signature = key.sign(_signing_input(CHECKPOINT_CONTEXT, body))
    line = f"{_DASH} gateway/{key.public_key().key_id} {base64.b64encode(signature).decode()}"
    return body + b"\n" + line.encode("utf-8") + b"\n"


def verify_log_signature(note: bytes, *, gateway_keys: Collection[VerifyKey]) -> Checkpoint:
    """The checkpoint in ``note`` once a trusted gateway key's signature over it verifies.

    This proves only that the log signed it: a witness calls it before :func:`witness_cosign`;
    everyone else needs :func:`verify_checkpoint` and its witness threshold.
    """
    checkpoint, body, lines = _parse_note(note)
    _verify_gateway(body, lines, gateway_keys)
    return checkpoint


def verify_checkpoint(
    note: bytes,
    *,
    gateway_keys: Collection[VerifyKey],
    witness_keys: Collection[VerifyKey],
    witness_threshold: int,
) -> Checkpoint:
    """The checkpoint in ``note`` once a trusted gateway signature and at least
    ``witness_threshold`` distinct trusted witnesses' co-signatures verify.

    Signature lines by keys outside both sets are ignored (other parties may co-sign too); a
    line by a trusted key that does not verify fails the whole note.
    """
    witnesses = {key.key_id: key for key in witness_keys}
    if not _is_threshold(witness_threshold, len(witnesses)):
        raise errors.UsageError(
            f"the witness threshold must be from 1 to the {len(witnesses)} distinct witness "
            f"keys, got {witness_threshold!r}"
        )
    checkpoint, body, lines = _parse_note(note)
    _verify_gateway(body, lines, gateway_keys)
    cosigned = 0
    for role, key_id, blob in lines:
        witness = witnesses.get(key_id)
        if role != "witness" or witness is None:
            continue
        if len(blob) <= 8:
            raise errors.AuditError(f"co-signature by witness {key_id} is truncated")
        message = _signing_input(COSIGNATURE_CONTEXT, blob[:8], body)
        try:
            witness.verify(signature=blob[8:], message=message)
        except errors.VerificationError as exc:
            raise errors.AuditError(f"co-signature by witness {key_id} does not verify") from exc
        cosigned += 1
    if cosigned < witness_threshold:
        raise errors.AuditError(
            f"checkpoint has {cosigned} trusted witness co-signatures, {witness_threshold} needed"
        )
    return checkpoint


def witness_cosign(
    checkpoint: Checkpoint,
    *,
    previous: Checkpoint | None,
    consistency_proof: Sequence[bytes],
    key: SigningKey,
    now: dt.datetime,
    max_skew: dt.timedelta = _DEFAULT_MAX_SKEW,
) -> Cosignature:
    """Co-sign ``checkpoint`` (already verified with :func:`verify_log_signature`) as a witness.

    ``previous`` is the last checkpoint this witness co-signed for the same log, ``None`` the
    first time (trust on first use, so no proof is taken). Refuses with AuditError when the
    origin differs, the log shrank, the same size has a different root (a fork), the proof does
    not verify, time runs backwards, or the checkpoint is dated more than ``max_skew`` after
    ``now``.
    """
    when = _whole_seconds(now, "now")
    if previous is None:
        if consistency_proof:
            raise errors.UsageError("no previous checkpoint, so a consistency proof means nothing")
    else:
        if previous.origin != checkpoint.origin:
            raise errors.AuditError(
                f"checkpoint is for log {checkpoint.origin!r}, not {previous.origin!r}"
            )
        if checkpoint.size < previous.size:
            raise errors.AuditError(
                f"the log shrank from {previous.size} to {checkpoint.size} entries"
            )
        if checkpoint.size == previous.size and checkpoint.root != previous.root:
            raise errors.AuditError(f"a second root for size {checkpoint.size}: the log forked")
        merkle.verify_consistency(
            previous.size, checkpoint.size, previous.root, checkpoint.root, consistency_proof
        )
        if checkpoint.timestamp < previous.timestamp:
            raise errors.AuditError("checkpoint is dated before the previous one")
    if checkpoint.timestamp > when + max_skew:
        raise errors.AuditError("checkpoint is dated in the future")
    stamp = _seconds(when).to_bytes(8, "big")
    signature = key.sign(_signing_input(COSIGNATURE_CONTEXT, stamp, checkpoint.body()))
    return Cosignature(key_id=key.public_key().key_id, timestamp=when, signature=signature)


def add_cosignatures(note: bytes, cosignatures: Iterable[Cosignature]) -> bytes:
    """``note`` with a line for each co-signature whose witness has not signed it yet."""
    _, _, lines = _parse_note(note)
    present = {key_id for role, key_id, _ in lines if role == "witness"}
    added = []
    for cosignature in cosignatures:
        if cosignature.key_id not in present:
            added.append(cosignature.line() + "\n")
            present.add(cosignature.key_id)
    return note + "".join(added).encode("utf-8")


def _verify_gateway(
    body: bytes, lines: Sequence[tuple[str, KeyId, bytes]], gateway_keys: Collection[VerifyKey]
) -> None:
    gateways = {key.key_id: key for key in gateway_keys}
    if not gateways:
        raise errors.UsageError("at least one trusted gateway key is needed")
    message = _signing_input(CHECKPOINT_CONTEXT, body)
    signed = False
    for role, key_id, blob in lines:
        gateway = gateways.get(key_id)
        if role != "gateway" or gateway is None:
            continue
        try:
            gateway.verify(signature=blob, message=message)
        except errors.VerificationError as exc:
            raise errors.AuditError(f"checkpoint signature by {key_id} does not verify") from exc
        signed = True
    if not signed:
        raise errors.AuditError("checkpoint carries no signature by a trusted gateway key")


def _parse_note(note: bytes) -> tuple[Checkpoint, bytes, list[tuple[str, KeyId, bytes]]]:
    """Split a note into its checkpoint, exact body bytes and (role, key id, signature) lines."""
    if not isinstance(note, bytes):
        raise errors.AuditError("a checkpoint note is bytes")
    if len(note) > _MAX_NOTE_BYTES:
        raise errors.AuditError(f"checkpoint note is larger than {_MAX_NOTE_BYTES} bytes")
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.AuditError("checkpoint note is not UTF-8") from exc
    head, sep, tail = text.partition("\n\n")
    if not sep or not tail.endswith("\n"):
        raise errors.AuditError("checkpoint note needs a body, a blank line and signature lines")
    body_lines = head.split("\n")
    if len(body_lines) != 4:
        raise errors.AuditError("checkpoint body is four lines: origin, size, root, time")
    origin, size_text, root_text, time_line = body_lines
    if not _SIZE_RE.fullmatch(size_text):
        raise errors.AuditError("checkpoint size line is not a decimal integer")
    root = _b64decode(root_text, "checkpoint root line")
    time_match = _TIME_RE.fullmatch(time_line)
    if time_match is None:
        raise errors.AuditError("checkpoint time line is not 'time YYYY-MM-DDTHH:MM:SSZ'")
    try:
        when = dt.datetime.strptime(time_match[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise errors.AuditError("checkpoint time is not a valid date") from exc
    checkpoint = Checkpoint(origin=origin, size=int(size_text), root=root, timestamp=when)
    body = checkpoint.body()
    if body != (head + "\n").encode("utf-8"):
        raise errors.AuditError("checkpoint body is not in canonical form")
    raw_lines = tail[:-1].split("\n")
    if len(raw_lines) > _MAX_SIGNATURES:
        raise errors.AuditError(f"checkpoint note has more than {_MAX_SIGNATURES} signatures")
    lines: list[tuple[str, KeyId, bytes]] = []
    seen: set[tuple[str, KeyId]] = set()
    for raw in raw_lines:
        match = _SIGNATURE_RE.fullmatch(raw)
        if match is None:
            raise errors.AuditError("checkpoint note has a malformed signature line")
        role, key_id, blob = match[1], KeyId(match[2]), _b64decode(match[3], "signature")
        if (role, key_id) in seen:
            raise errors.AuditError(f"checkpoint note has two signatures by {role} {key_id}")
        seen.add((role, key_id))
        lines.append((role, key_id, blob))
    return checkpoint, body, lines


def _b64decode(text: str, what: str) -> bytes:
    try:
        value = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise errors.AuditError(f"{what} is not base64") from exc
    if base64.b64encode(value).decode("ascii") != text:
        raise errors.AuditError(f"{what} is not canonical base64")
    return value


def _signing_input(context: bytes, *parts: bytes) -> bytes:
    """``context || 0x00`` then each part as an 8-byte big-endian length and its bytes."""
    out = bytearray(context)
    out += b"\x00"
    for part in parts:
        out += len(part).to_bytes(8, "big")
        out += part
    return bytes(out)


def _is_origin(value: object) -> bool:
    return isinstance(value, str) and _ORIGIN_RE.fullmatch(value) is not None


def _is_size(value: object) -> bool:
    return type(value) is int and 0 <= value < 1 << 64


def _is_root(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == merkle.HASH_SIZE


def _is_threshold(value: object, keys: int) -> bool:
    return type(value) is int and 1 <= value <= keys


def _whole_seconds(value: object, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise errors.UsageError(f"{what} must be a timezone-aware datetime")
    utc = value.astimezone(dt.UTC).replace(microsecond=0)
    # The note writes four-digit years and co-signatures carry unsigned seconds since 1970.
    if utc < _EPOCH:
        raise errors.AuditError(f"{what} is before 1970")
    return utc


def _seconds(value: dt.datetime) -> int:
    return int(value.timestamp())
