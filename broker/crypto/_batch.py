"""Batch signatures: one signature over the RFC 6962 head of many messages, each message
carrying its inclusion path, so that each still proves alone who signed it.

Used for envelopes (a sender's spool chunk, docs/PROTOCOL.md section 5) and for the gateway's
delivery attestations (docs/GATEWAY.md): each names its own ``prefix``, the bytes before
``u32(size) || head`` in what is signed, so a head signed for one can never pass for the
other. A member is checked by walking its path up to the head and verifying the signature over
it, through a memo of signatures already verified (:mod:`broker.crypto._memo`): a batch costs
its verifier one signature check.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence

from broker import errors, merkle
from broker.crypto._memo import VerifiedSignatures
from broker.crypto._signing import SigningKey, VerifyKey

__all__ = ["MAX_BATCH", "MAX_PATH", "BatchProof", "sign_batch", "verify_member"]

#: messages signed under one head at most; an inclusion path then has at most 12 hashes
MAX_BATCH = 4096
#: the longest inclusion path a batch of MAX_BATCH can need
MAX_PATH = (MAX_BATCH - 1).bit_length()
_HASH = 32
_U32 = struct.Struct(">I")
#: every verifier in this process shares it: a batch's signature is checked once
_VERIFIED = VerifiedSignatures(capacity=4096)


@dataclasses.dataclass(frozen=True, slots=True)
class BatchProof:
    """A member's place in its batch: leaf ``index`` of ``size``, and the inclusion ``path``
    from its leaf to the signed head."""

    size: int
    index: int
    path: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        """u32(size) || u32(index) || u8(len(path)) || the path's 32-byte hashes."""
        return b"".join(
            (_U32.pack(self.size), _U32.pack(self.index), bytes([len(self.path)]), *self.path)
        )

    @classmethod
    def read(cls, data: bytes, offset: int, *, what: str) -> tuple[BatchProof, int]:
        """The proof :meth:`to_bytes` wrote at ``offset`` of ``data``, and the offset after
        it; its shape is checked (whether the path fits the size is :func:`verify_member`'s).
        EnvelopeError names ``what`` for anything out of range."""
        if offset + 9 > len(data):
            raise errors.EnvelopeError(f"{what} truncated in its batch proof")
        (size,) = _U32.unpack_from(data, offset)
        (index,) = _U32.unpack_from(data, offset + 4)
        count = data[offset + 8]
        offset += 9
        if not 0 < size <= MAX_BATCH or index >= size or count > MAX_PATH:
            raise errors.EnvelopeError(f"{what} batch proof is out of range")
        end = offset + count * _HASH
        if end > len(data):
            raise errors.EnvelopeError(f"{what} truncated in its batch proof")
        path = tuple(data[offset + i * _HASH : offset + (i + 1) * _HASH] for i in range(count))
        return cls(size=size, index=index, path=path), end


def sign_batch(
    key: SigningKey, messages: Sequence[bytes], *, prefix: bytes
) -> tuple[bytes, list[BatchProof]]:
    """One signature by ``key`` over ``prefix || u32(n) || head`` of the tree whose leaves are
    ``messages`` in order, and each message's proof."""
    if not 0 < len(messages) <= MAX_BATCH:
        raise errors.UsageError(f"a batch holds 1 to {MAX_BATCH} messages, not {len(messages)}")
    head, paths = merkle.inclusion_proofs([merkle.leaf_hash(m) for m in messages])
    signature = key.sign(prefix + _U32.pack(len(messages)) + head)
    size = len(messages)
    return signature, [BatchProof(size, i, path) for i, path in enumerate(paths)]


def verify_member(
    key: VerifyKey, *, signature: bytes, message: bytes, proof: BatchProof, prefix: bytes
) -> None:
    """Return if ``signature`` by ``key`` covers the head ``proof`` leads to from
    ``message``; raise the one opaque VerificationError otherwise."""
    try:
        head = merkle.root_from_inclusion(
            merkle.leaf_hash(message), proof.index, proof.size, proof.path
        )
    except errors.AuditError:
        raise errors.VerificationError("signature does not verify") from None
    _VERIFIED.verify(key, signature=signature, message=prefix + _U32.pack(proof.size) + head)
