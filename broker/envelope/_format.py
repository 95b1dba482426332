"""The exact bytes of an envelope: framing (version 1 signed alone, version 2 signed in a
batch), canonical JSON, length prefixes, padding.

Everything here is pure and deterministic; docs/PROTOCOL.md describes the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any

from broker import errors, limits, strictjson
from broker.crypto import MAX_BATCH, BatchProof

__all__ = [
    "BATCH_PREFIX",
    "DST_BATCH",
    "DST_FIELD",
    "DST_KEY_COMMITMENT",
    "DST_SIGNATURE",
    "MAGIC",
    "MAX_BATCH",
    "MAX_BODY_BYTES",
    "MAX_ENVELOPE_BYTES",
    "MAX_HEADER_BYTES",
    "VERSION",
    "VERSION_BATCH",
    "BatchProof",
    "Frame",
    "bucket_size",
    "canonical_json",
    "canonical_loads",
    "decode_frame",
    "encode_frame",
    "framed_size",
    "length_prefixed",
    "pad",
    "signing_input",
    "strict_json_loads",
    "unpad",
]

MAGIC = b"\x89XBE"
VERSION = 1
#: the framing of an envelope signed in a batch: version 1's, then its place in the batch
VERSION_BATCH = 2
DST_SIGNATURE = b"broker-envelope/v1 signature"
DST_BATCH = b"broker-envelope/v2 batch"
DST_FIELD = b"broker-envelope/v1 field"
DST_KEY_COMMITMENT = b"broker-envelope/v1 key-commitment"

MIN_BUCKET = 512
# The format's bounds come from the one table of limits (broker.limits).
MAX_BODY_BYTES = limits.ENVELOPE_BODY_MAX_BYTES
MAX_HEADER_BYTES = limits.ENVELOPE_HEADER_MAX_BYTES
MAX_SIGNATURE_BYTES = limits.ENVELOPE_SIGNATURE_MAX_BYTES
#: checked before any parsing; generous enough for the largest bucket plus hybrid overheads
MAX_ENVELOPE_BYTES = limits.ENVELOPE_FORMAT_MAX_BYTES
#: nested arrays and objects; was 32 counting the innermost scalar as a level too, so no
#: document refused then is accepted now
_MAX_JSON_DEPTH = 31

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


def length_prefixed(data: bytes) -> bytes:
    """``data`` preceded by its length as a 4-byte big-endian unsigned integer."""
    return _U32.pack(len(data)) + data


#: what an envelope batch's signature covers begins so: lp(DST_BATCH) (docs/PROTOCOL.md, 5)
BATCH_PREFIX = length_prefixed(DST_BATCH)


def signing_input(header: bytes, ciphertext_digest: bytes) -> bytes:
    """What the sender signs: lp(DST) || lp(header bytes) || lp(SHA-256 of the ciphertext)."""
    return (
        length_prefixed(DST_SIGNATURE)
        + length_prefixed(header)
        + length_prefixed(ciphertext_digest)
    )


def canonical_json(value: Any) -> bytes:
    """The one canonical form (sorted keys, no whitespace, UTF-8), no NaN or Infinity; a
    message's decimals are kept, as the body and its committed fields hold them."""
    try:
        return strictjson.canonical(value, allow_floats=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise errors.SchemaError(f"value cannot be encoded as canonical JSON: {exc}") from exc


def strict_json_loads(data: bytes, *, what: str) -> Any:
    """Parse UTF-8 JSON, refusing duplicate keys, non-finite numbers, lone surrogates and
    over-deep nesting (see :func:`broker.strictjson.loads`)."""
    try:
        return strictjson.loads(data, max_depth=_MAX_JSON_DEPTH, allow_floats=True)
    except strictjson.StrictJSONError as exc:
        if exc.reason == "depth":
            raise errors.SchemaError(f"{what}: nested deeper than {_MAX_JSON_DEPTH}") from None
        if exc.reason in ("duplicate", "number"):
            raise errors.SchemaError(f"{what}: {exc}") from None
        raise errors.SchemaError(f"{what}: not valid JSON") from exc


def canonical_loads(data: bytes, *, what: str) -> Any:
    """Parse JSON that must be exactly in canonical form, else SchemaError.

    Re-encoding must reproduce ``data`` byte for byte, which also refuses duplicate keys
    (the re-encoding has fewer), NaN and Infinity (not encodable), whitespace and any other
    spelling; so the plain C parser suffices and no per-object hook is needed.
    """
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise errors.SchemaError(f"{what}: not valid JSON") from exc
    if canonical_json(value) != data:
        raise errors.SchemaError(f"{what}: not in canonical form")
    return value


def bucket_size(length: int) -> int:
    """The padded size for a body of ``length`` bytes: a power of two, at least 512."""
    size = MIN_BUCKET
    while size < length + 4:
        size <<= 1
    return size


def pad(body: bytes) -> bytes:
    """u32 length || body || zero bytes, to the body's bucket size."""
    size = bucket_size(len(body))
    if size > MAX_BODY_BYTES:
        raise errors.EnvelopeError(f"message too large: {len(body)} bytes")
    return _U32.pack(len(body)) + body + bytes(size - 4 - len(body))


def unpad(padded: bytes) -> bytes:
    """Invert :func:`pad`, refusing any other padding (wrong bucket, non-zero fill)."""
    if len(padded) < 4:
        raise errors.VerificationError("envelope content does not verify")
    (length,) = _U32.unpack_from(padded)
    if length > len(padded) - 4 or bucket_size(length) != len(padded):
        raise errors.VerificationError("envelope content does not verify")
    if any(padded[4 + length :]):
        raise errors.VerificationError("envelope content does not verify")
    return padded[4 : 4 + length]


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """The parts of the wire form, as bytes; nothing in them is verified yet. ``proof`` is
    set for an envelope signed in a batch (framing version 2), whose ``signature`` is then
    over the batch's head."""

    header: bytes
    ciphertext: bytes
    signature: bytes
    proof: BatchProof | None = None


def encode_frame(frame: Frame) -> bytes:
    """MAGIC || version || lp(header) || lp(ciphertext) || u16 len(signature) || signature,
    then, signed in a batch, the proof (:meth:`BatchProof.to_bytes`)."""
    return b"".join(
        (
            MAGIC,
            bytes([VERSION if frame.proof is None else VERSION_BATCH]),
            length_prefixed(frame.header),
            length_prefixed(frame.ciphertext),
            _U16.pack(len(frame.signature)),
            frame.signature,
            b"" if frame.proof is None else frame.proof.to_bytes(),
        )
    )


def decode_frame(data: bytes) -> Frame:
    """Split the wire form, checking the total size first and every length exactly."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise errors.EnvelopeError(
            f"envelope is {len(data)} bytes, larger than the limit of {MAX_ENVELOPE_BYTES}"
        )
    if len(data) < len(MAGIC) + 1 or data[: len(MAGIC)] != MAGIC:
        raise errors.EnvelopeError("not an envelope (bad magic)")
    version = data[len(MAGIC)]
    if version not in (VERSION, VERSION_BATCH):
        raise errors.EnvelopeError(f"unsupported envelope version {version}")
    offset = len(MAGIC) + 1
    header, offset = _take_u32_prefixed(data, offset, MAX_HEADER_BYTES, "header")
    ciphertext, offset = _take_u32_prefixed(data, offset, MAX_ENVELOPE_BYTES, "ciphertext")
    if offset + 2 > len(data):
        raise errors.EnvelopeError("envelope truncated in the signature length")
    (sig_len,) = _U16.unpack_from(data, offset)
    offset += 2
    end = offset + sig_len
    if version == VERSION:
        if sig_len > MAX_SIGNATURE_BYTES or end != len(data):
            raise errors.EnvelopeError("envelope signature length does not match its size")
        return Frame(header=header, ciphertext=ciphertext, signature=data[offset:])
    if sig_len > MAX_SIGNATURE_BYTES or end > len(data):
        raise errors.EnvelopeError("envelope signature length is out of range")
    proof, after = BatchProof.read(data, end, what="envelope")
    if after != len(data):
        raise errors.EnvelopeError("envelope batch proof length does not match its size")
    return Frame(header=header, ciphertext=ciphertext, signature=data[offset:end], proof=proof)


def framed_size(header: int, ciphertext: int, signature: int) -> int:
    """The size of an envelope with parts of these sizes signed alone (framing version 1);
    signed in a batch it is longer by its proof, at most ``limits.BATCH_PROOF_MAX_BYTES``."""
    return len(MAGIC) + 1 + 4 + header + 4 + ciphertext + 2 + signature


def _take_u32_prefixed(data: bytes, offset: int, limit: int, what: str) -> tuple[bytes, int]:
    if offset + 4 > len(data):
        raise errors.EnvelopeError(f"envelope truncated in the {what} length")
    (length,) = _U32.unpack_from(data, offset)
    offset += 4
    if length > limit or offset + length > len(data):
        raise errors.EnvelopeError(f"envelope {what} length is out of range")
    return data[offset : offset + length], offset + length
