"""Envelopes signed in a batch (docs/PROTOCOL.md, section 5): one signature over the Merkle
head of many envelopes' signing inputs, each envelope carrying its inclusion path, and the one
check of a sender's signature every verifier of either framing shares.

A sender seals a spool chunk's views without signing them (:class:`Unsigned`), then signs each
signing key's views under one head (:func:`sign_all`). A verifier recomputes the head from the
envelope's own signing input and path and checks the signature over it; the memo of verified
signatures makes the other envelopes of the batch cost a hash walk instead of a signature
check. Each envelope still proves alone who sent it: the path and the signature are in it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from broker import crypto, errors, merkle
from broker.envelope._format import (
    MAX_BATCH,
    BatchProof,
    Frame,
    batch_input,
    encode_frame,
    framed_size,
    signing_input,
)

__all__ = ["Unsigned", "check_sender_signature", "sign_all"]

#: every verifier in this process shares it: a batch's signature is checked once
_VERIFIED = crypto.VerifiedSignatures(capacity=4096)


@dataclasses.dataclass(frozen=True, slots=True)
class Unsigned:
    """A sealed envelope's header and ciphertext, waiting for ``signer``'s signature."""

    header: bytes
    ciphertext: bytes
    signer: crypto.SigningKey = dataclasses.field(repr=False)

    @property
    def signed_size_bound(self) -> int:
        """Its size once signed, at most: alone, or in the largest batch (the longest path)."""
        size = self.signer.signature_size
        return framed_size(len(self.header), len(self.ciphertext), size, MAX_BATCH)

    @property
    def leaf(self) -> bytes:
        """The RFC 6962 leaf hash of its signing input."""
        return merkle.leaf_hash(signing_input(self.header, crypto.sha256(self.ciphertext)))


def sign_all(unsigned: Sequence[Unsigned]) -> list[bytes]:
    """The envelopes of ``unsigned``, in order: each signing key signs its envelopes under one
    head (framing version 2; at most :data:`MAX_BATCH` per head), and an envelope alone under
    its key is signed alone (version 1), which costs its verifiers no path."""
    groups: dict[bytes, list[int]] = {}
    for position, item in enumerate(unsigned):
        groups.setdefault(item.signer.public_key().to_bytes(), []).append(position)
    envelopes: list[bytes] = [b""] * len(unsigned)
    for positions in groups.values():
        for start in range(0, len(positions), MAX_BATCH):
            chunk = positions[start : start + MAX_BATCH]
            for position, envelope in zip(chunk, _sign([unsigned[p] for p in chunk]), strict=True):
                envelopes[position] = envelope
    return envelopes


def _sign(batch: Sequence[Unsigned]) -> list[bytes]:
    signer = batch[0].signer
    if len(batch) == 1:
        (only,) = batch
        signature = signer.sign(signing_input(only.header, crypto.sha256(only.ciphertext)))
        return [encode_frame(Frame(only.header, only.ciphertext, signature))]
    root, paths = merkle.inclusion_proofs([item.leaf for item in batch])
    signature = signer.sign(batch_input(len(batch), root))
    return [
        encode_frame(
            Frame(item.header, item.ciphertext, signature, BatchProof(len(batch), index, path))
        )
        for index, (item, path) in enumerate(zip(batch, paths, strict=True))
    ]


def check_sender_signature(
    key: crypto.VerifyKey,
    *,
    header: bytes,
    ciphertext_digest: bytes,
    signature: bytes,
    proof: BatchProof | None,
) -> None:
    """Return if ``signature`` is the sender's over this envelope (signed alone, or in a batch
    whose head ``proof`` leads to); raise the one opaque VerificationError otherwise."""
    direct = signing_input(header, ciphertext_digest)
    if proof is None:
        key.verify(signature=signature, message=direct)
        return
    try:
        root = merkle.root_from_inclusion(
            merkle.leaf_hash(direct), proof.index, proof.size, proof.path
        )
    except errors.AuditError:
        raise errors.VerificationError("signature does not verify") from None
    _VERIFIED.verify(key, signature=signature, message=batch_input(proof.size, root))
