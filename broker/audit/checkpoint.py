"""Signed checkpoints of the audit log and witness co-signatures, in the C2SP formats.

A checkpoint is a C2SP signed note (c2sp.org/signed-note) whose text is a c2sp.org/tlog-checkpoint
body: the origin, the tree size, the base64 RFC 6962 root, and one extension line with the
time the gateway signed it::

    broker/xb.audit
    100000
    3sn/oFRwlxGDAabLMjCt1ChOHUlKPPI9uhDGuPRnSdA=
    time 2026-11-28T16:00:00Z

    — broker/xb.audit <base64(key ID || Ed25519 signature over the four lines above)>
    — witness-rs <base64(key ID || u64be(t) || Ed25519 over "cosignature/v1\\ntime t\\n" + body)>

The gateway's line is a plain Ed25519 note signature (type 0x01) under the key name of the
origin; each witness's line is a c2sp.org/tlog-cosignature ``cosignature/v1`` (type 0x04)
under the witness's own key name. Any note verifier and witness that speaks those specs reads
them; docs/AUDIT.md writes the signed bytes out.

Everything that fails to verify raises :class:`~broker.errors.AuditError`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from broker import errors, merkle
from broker.audit.note import (
    CosignatureKey,
    Ed25519NoteKey,
    Note,
    NoteSignature,
    open_note,
    parse_note,
)
from broker.crypto import SigningKey, VerifyKey

__all__ = [
    "Checkpoint",
    "add_signatures",
    "checkpoint_cosigners",
    "cosign_checkpoint",
    "open_checkpoint",
    "read_checkpoint",
    "sign_checkpoint",
]

_ORIGIN_RE = re.compile(r"[\x21-\x2a\x2c-\x7e]{1,255}")  # visible ASCII but '+'
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,19}")
_TIME_RE = re.compile(r"time ([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)")
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
                "a checkpoint origin is 1 to 255 visible ASCII characters, no space, no '+'"
            )
        if type(self.size) is not int or not 0 <= self.size < 1 << 64:
            raise errors.AuditError("a checkpoint size is an integer from 0 to 2**64-1")
        if not _is_root(self.root):
            raise errors.AuditError(f"a checkpoint root is {merkle.HASH_SIZE} bytes")
        if self.size == 0 and self.root != merkle.EMPTY_ROOT:
            raise errors.AuditError("an empty log's checkpoint root must be the empty-tree hash")
        object.__setattr__(self, "timestamp", _whole_seconds(self.timestamp))

    def __bool__(self) -> bool:
        # A checkpoint is the result of verification: "if open_checkpoint(...)" is no test.
        raise TypeError("a Checkpoint has no truth value; verification raises on failure")

    def body(self) -> bytes:
        """The note text: origin, size, base64 root and time, one per line, each ending in
        a newline. This is what the gateway signs and what each cosignature covers."""
        root = base64.b64encode(self.root).decode("ascii")
        when = self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.origin}\n{self.size}\n{root}\ntime {when}\n".encode("ascii")


def sign_checkpoint(checkpoint: Checkpoint, *, key: SigningKey) -> bytes:
    """The signed note for ``checkpoint``: its body, a blank line and the log's signature,
    made with the Ed25519 key ``key`` under the key name of the checkpoint's origin."""
    body = checkpoint.body()
    signature = Ed25519NoteKey.sign(body, name=checkpoint.origin, key=key)
    return Note(body, (signature,)).to_bytes()


def read_checkpoint(note: bytes) -> tuple[Checkpoint, Note]:
    """The checkpoint a note states and the parsed note, WITHOUT checking any signature.

    For choosing which keys to check it with (its time) and for sorting; anything that must
    be trusted comes from :func:`open_checkpoint`.
    """
    parsed = parse_note(note)
    return _checkpoint_of(parsed.text), parsed


def open_checkpoint(note: bytes, *, log_keys: Collection[VerifyKey]) -> Checkpoint:
    """The checkpoint in ``note`` once a signature by one of ``log_keys`` verifies.

    A log key signs under the checkpoint's origin as key name. A line by one of ``log_keys``
    that does not verify fails the whole note; lines by other keys are ignored here.
    """
    if not log_keys:
        raise errors.UsageError("at least one trusted log key is needed")
    checkpoint, parsed = read_checkpoint(note)
    candidates = [Ed25519NoteKey(checkpoint.origin, key) for key in _distinct(log_keys)]
    _, verified = open_note(parsed, keys=candidates)
    if not verified:
        raise errors.AuditError("checkpoint carries no signature by a trusted log key")
    return checkpoint


def cosign_checkpoint(
    checkpoint: Checkpoint, *, key: SigningKey, name: str, timestamp: int
) -> NoteSignature:
    """A witness's cosignature/v1 line over ``checkpoint`` at POSIX time ``timestamp``.

    Only a witness that has checked the checkpoint's consistency with everything it saw of
    the log may call this (see :mod:`broker.audit.witness`).
    """
    return CosignatureKey.sign(checkpoint.body(), name=name, key=key, timestamp=timestamp)


def checkpoint_cosigners(
    note: bytes, *, witnesses: Sequence[CosignatureKey]
) -> tuple[CosignatureKey, ...]:
    """The ``witnesses`` whose cosignature on ``note`` verifies (the log's own signature is
    not checked here: see :func:`open_checkpoint`). A failing line by one of them fails all."""
    _, parsed = read_checkpoint(note)
    _, verified = open_note(parsed, keys=witnesses)
    return tuple(key for key in verified if isinstance(key, CosignatureKey))


def add_signatures(note: bytes, signatures: Iterable[NoteSignature]) -> bytes:
    """``note`` with ``signatures`` appended, leaving out keys that have signed it already."""
    return parse_note(note).with_signatures(signatures).to_bytes()


def _checkpoint_of(text: bytes) -> Checkpoint:
    """Parse a checkpoint body in its one canonical form."""
    lines = text.split(b"\n")
    if len(lines) != 5 or lines[4] != b"":
        raise errors.AuditError("checkpoint body is four lines: origin, size, root, time")
    try:
        origin, size_text, root_text, time_line = (line.decode("ascii") for line in lines[:4])
    except UnicodeDecodeError:
        raise errors.AuditError("checkpoint body is not ASCII") from None
    if not _SIZE_RE.fullmatch(size_text):
        raise errors.AuditError("checkpoint size line is not a decimal integer")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise errors.AuditError("checkpoint root line is not base64") from None
    if base64.b64encode(root).decode("ascii") != root_text:
        raise errors.AuditError("checkpoint root line is not canonical base64")
    time_match = _TIME_RE.fullmatch(time_line)
    if time_match is None:
        raise errors.AuditError("checkpoint time line is not 'time YYYY-MM-DDTHH:MM:SSZ'")
    try:
        when = dt.datetime.strptime(time_match[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise errors.AuditError("checkpoint time is not a valid date") from None
    checkpoint = Checkpoint(origin=origin, size=int(size_text), root=root, timestamp=when)
    if checkpoint.body() != text:
        raise errors.AuditError("checkpoint body is not in canonical form")
    return checkpoint


def _is_origin(value: object) -> bool:
    return isinstance(value, str) and _ORIGIN_RE.fullmatch(value) is not None


def _is_root(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == merkle.HASH_SIZE


def _distinct(keys: Iterable[VerifyKey]) -> list[VerifyKey]:
    # One key listed twice must not read as two keys sharing a name and key ID.
    return list(dict.fromkeys(keys))


def _whole_seconds(value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise errors.UsageError("checkpoint time must be a timezone-aware datetime")
    utc = value.astimezone(dt.UTC).replace(microsecond=0)
    if utc < _EPOCH:
        raise errors.AuditError("checkpoint time is before 1970")
    return utc
