"""C2SP signed notes (https://c2sp.org/signed-note): parse, sign, verify, key IDs and vkeys.

A signed note is a text ending in a newline, a blank line, then one or more signature lines::

    <text, ending in "\\n">
    (blank line)
    — <key name> <base64(4-byte key ID || signature)>

It is valid UTF-8 with no ASCII control character but the newline; the text is separated from
the signatures by the *last* blank line. The key ID is the first four bytes of
``SHA-256(key name || 0x0A || signature type || public key)``. Two signature types are used
here, both Ed25519 over the 32-byte Ed25519 public key (the first half of a pq-hybrid key):

- ``0x01`` (:class:`Ed25519NoteKey`): a plain Ed25519 signature over the text; the gateway
  signs checkpoints with it;
- ``0x04`` (:class:`CosignatureKey`, https://c2sp.org/tlog-cosignature): a witness's
  timestamped co-signature, ``u64be(timestamp) || Ed25519(key, "cosignature/v1\\ntime <t>\\n"
  || text)``.

Verification follows the spec and ``golang.org/x/mod/sumdb/note``'s ``Open``: lines by keys
the caller does not know are ignored; a known key's line must verify or the whole note is
refused; a second line by the same known key is ignored. Which keys must have signed is the
caller's policy (see :mod:`broker.audit.checkpoint`). Malformed input is an AuditError.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Final, Protocol

from broker import errors
from broker.crypto import SigningKey, VerifyKey, sha256

__all__ = [
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "SIGNATURE_COSIGNATURE_V1",
    "SIGNATURE_ED25519",
    "CosignatureKey",
    "Ed25519NoteKey",
    "Note",
    "NoteKey",
    "NoteSignature",
    "is_key_name",
    "note_key_id",
    "open_note",
    "parse_note",
]

#: signed-note signature type of a plain Ed25519 signature over the note text
SIGNATURE_ED25519: Final = 0x01
#: signed-note signature type of a tlog-cosignature/v1 (timestamped Ed25519)
SIGNATURE_COSIGNATURE_V1: Final = 0x04
#: golang.org/x/mod/sumdb/note refuses more; the spec asks verifiers to accept at least 16
MAX_SIGNATURES: Final = 100
#: a checkpoint body is four short lines; this leaves room for every allowed signature
MAX_NOTE_BYTES: Final = 64 * 1024

_DASH: Final = "\u2014 "
_KEY_ID_SIZE: Final = 4
_ED25519_SIGNATURE: Final = 64
_TIMESTAMP_SIZE: Final = 8
_MAX_TIMESTAMP: Final = (1 << 63) - 1
_COSIGNATURE_HEADER: Final = b"cosignature/v1\ntime "


def is_key_name(name: object) -> bool:
    """Whether ``name`` may name a note key: non-empty, no Unicode space, no ``+``."""
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)
    )


def note_key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || signature type || public key)[:4]``: the spec's key ID."""
    if not is_key_name(name):
        raise errors.UsageError(f"{name!r} is not a note key name")
    return sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key)[:4]


@dataclasses.dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: the key name, the 4-byte key ID and the signature bytes after it."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> bytes:
        """``— <name> <base64(key ID || signature)>\\n``."""
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{_DASH}{self.name} {blob}\n".encode()


@dataclasses.dataclass(frozen=True, slots=True)
class Note:
    """A parsed note: the exact text bytes that are signed, and every signature line."""

    text: bytes
    signatures: tuple[NoteSignature, ...]

    def to_bytes(self) -> bytes:
        """The note as it travels: text, blank line, signature lines."""
        return self.text + b"\n" + b"".join(s.line() for s in self.signatures)

    def with_signatures(self, added: Iterable[NoteSignature]) -> Note:
        """This note with ``added`` appended, leaving out a key (name and ID) already present."""
        present = {(s.name, s.key_id) for s in self.signatures}
        extra: list[NoteSignature] = []
        for signature in added:
            if (signature.name, signature.key_id) not in present:
                present.add((signature.name, signature.key_id))
                extra.append(signature)
        if len(self.signatures) + len(extra) > MAX_SIGNATURES:
            raise errors.AuditError(f"a note carries at most {MAX_SIGNATURES} signatures")
        return Note(self.text, self.signatures + tuple(extra))


class NoteKey(Protocol):
    """A public key that can check its own signature lines."""

    @property
    def name(self) -> str:
        """The key name its lines carry."""
        ...

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID its lines carry."""
        ...

    def verifies(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the bytes after the key ID) is this key's over ``text``."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Ed25519NoteKey:
    """A type 0x01 key: plain Ed25519 over the note text (a log's checkpoint signature)."""

    name: str
    key: VerifyKey

    @property
    def key_id(self) -> bytes:
        """The spec's key ID for this name and key."""
        return note_key_id(self.name, SIGNATURE_ED25519, self.key.ed25519_bytes())

    def vkey(self) -> str:
        """The verifier key text ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        return _vkey(self.name, self.key_id, SIGNATURE_ED25519, self.key.ed25519_bytes())

    def verifies(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is a valid Ed25519 signature over ``text``."""
        try:
            self.key.verify_ed25519(signature=signature, message=text)
        except errors.VerificationError:
            return False
        return True

    @staticmethod
    def sign(text: bytes, *, name: str, key: SigningKey) -> NoteSignature:
        """The signature line of ``key`` (named ``name``) over ``text``."""
        public = Ed25519NoteKey(name, key.public_key())
        return NoteSignature(name, public.key_id, key.sign_ed25519(text))


@dataclasses.dataclass(frozen=True, slots=True)
class CosignatureKey:
    """A type 0x04 key: a witness's timestamped cosignature/v1 (c2sp.org/tlog-cosignature)."""

    name: str
    key: VerifyKey

    @property
    def key_id(self) -> bytes:
        """The spec's key ID for this name and key (type byte 0x04)."""
        return note_key_id(self.name, SIGNATURE_COSIGNATURE_V1, self.key.ed25519_bytes())

    def vkey(self) -> str:
        """The verifier key text ``<name>+<hex key ID>+<base64(0x04 || public key)>``."""
        return _vkey(self.name, self.key_id, SIGNATURE_COSIGNATURE_V1, self.key.ed25519_bytes())

    def verifies(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is ``u64be(t) || Ed25519`` over the cosigned message at t."""
        if len(signature) != _TIMESTAMP_SIZE + _ED25519_SIGNATURE:
            return False
        timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
        if timestamp > _MAX_TIMESTAMP:
            return False
        try:
            self.key.verify_ed25519(
                signature=signature[_TIMESTAMP_SIZE:],
                message=cosigned_message(text, timestamp=timestamp),
            )
        except errors.VerificationError:
            return False
        return True

    @staticmethod
    def timestamp_of(signature: NoteSignature) -> int:
        """The POSIX time a cosignature line says it was made (unverified until checked)."""
        if len(signature.signature) != _TIMESTAMP_SIZE + _ED25519_SIGNATURE:
            raise errors.AuditError(f"cosignature by {signature.name} has the wrong length")
        return int.from_bytes(signature.signature[:_TIMESTAMP_SIZE], "big")

    @staticmethod
    def sign(text: bytes, *, name: str, key: SigningKey, timestamp: int) -> NoteSignature:
        """The cosignature line of ``key`` (named ``name``) over ``text`` at ``timestamp``."""
        if type(timestamp) is not int or not 0 <= timestamp <= _MAX_TIMESTAMP:
            raise errors.UsageError("a cosignature timestamp is an integer from 0 to 2**63-1")
        public = CosignatureKey(name, key.public_key())
        signature = key.sign_ed25519(cosigned_message(text, timestamp=timestamp))
        return NoteSignature(name, public.key_id, timestamp.to_bytes(8, "big") + signature)


def cosigned_message(text: bytes, *, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: ``cosignature/v1\\ntime <t>\\n`` then the note text."""
    return _COSIGNATURE_HEADER + str(timestamp).encode("ascii") + b"\n" + text


def parse_note(data: bytes) -> Note:
    """The text and signature lines of ``data``; AuditError unless it is a well-formed note."""
    if not isinstance(data, bytes):
        raise errors.AuditError("a note is bytes")
    if len(data) > MAX_NOTE_BYTES:
        raise errors.AuditError(f"a note is at most {MAX_NOTE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.AuditError("malformed note: not UTF-8") from None
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise errors.AuditError("malformed note: a control character other than newline")
    split = data.rfind(b"\n\n")
    if split < 0:
        raise errors.AuditError("malformed note: no blank line before the signatures")
    body, lines = data[: split + 1], data[split + 2 :]
    if not lines.endswith(b"\n"):
        raise errors.AuditError("malformed note: no signature line, or no final newline")
    raw_lines = lines[:-1].split(b"\n")
    if len(raw_lines) > MAX_SIGNATURES:
        raise errors.AuditError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return Note(body, tuple(_parse_signature_line(line) for line in raw_lines))


def open_note(data: bytes | Note, *, keys: Sequence[NoteKey]) -> tuple[Note, tuple[NoteKey, ...]]:
    """Parse ``data`` and check the lines of every key in ``keys``.

    Returns the note and the keys whose signature verified, in line order (possibly none).
    Raises AuditError if the note is malformed, if two of ``keys`` share a name and key ID,
    or if a line of a known key does not verify: such a note is refused whole.
    """
    note = data if isinstance(data, Note) else parse_note(data)
    known: dict[tuple[str, bytes], NoteKey] = {}
    for key in keys:
        slot = (key.name, key.key_id)
        if slot in known and known[slot] is not key:
            raise errors.AuditError(f"ambiguous note key {key.name}+{key.key_id.hex()}")
        known[slot] = key
    verified: list[NoteKey] = []
    seen: set[tuple[str, bytes]] = set()
    for signature in note.signatures:
        slot = (signature.name, signature.key_id)
        signer = known.get(slot)
        if signer is None or slot in seen:
            continue  # unknown keys are ignored; a known key counts once
        seen.add(slot)
        if not signer.verifies(note.text, signature.signature):
            raise errors.AuditError(
                f"the signature of note key {signature.name}+{signature.key_id.hex()} "
                "does not verify"
            )
        verified.append(signer)
    return note, tuple(verified)


def _parse_signature_line(line: bytes) -> NoteSignature:
    if not line.startswith(_DASH.encode("utf-8")):
        raise errors.AuditError("malformed note: a signature line does not start with '— '")
    name, space, blob_text = line[len(_DASH.encode("utf-8")) :].decode("utf-8").partition(" ")
    if not space or not is_key_name(name) or not blob_text:
        raise errors.AuditError("malformed note: a signature line needs a key name and base64")
    try:
        blob = base64.b64decode(blob_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise errors.AuditError("malformed note: a signature is not base64") from None
    if base64.b64encode(blob).decode("ascii") != blob_text:
        raise errors.AuditError("malformed note: a signature is not canonical base64")
    if len(blob) <= _KEY_ID_SIZE:
        raise errors.AuditError("malformed note: a signature shorter than its key ID")
    return NoteSignature(name, blob[:_KEY_ID_SIZE], blob[_KEY_ID_SIZE:])


def _vkey(name: str, key_id: bytes, signature_type: int, public_key: bytes) -> str:
    encoded = base64.b64encode(bytes([signature_type]) + public_key).decode("ascii")
    return f"{name}+{key_id.hex()}+{encoded}"
