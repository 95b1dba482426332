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

from broker import crypto, limits
from broker.envelope._format import (
    BATCH_PREFIX,
    MAX_BATCH,
    BatchProof,
    Frame,
    encode_frame,
    framed_size,
    signing_input,
)

__all__ = ["Unsigned", "check_sender_signature", "sign_all"]


@dataclasses.dataclass(frozen=True, slots=True)
class Unsigned:
    """A sealed envelope's header and ciphertext, waiting for ``signer``'s signature."""

    header: bytes
    ciphertext: bytes
    signer: crypto.SigningKey = dataclasses.field(repr=False)
    #: whom it is sealed for: a batch holds one recipient's envelopes only
    recipient: str

    @property
    def signed_size_bound(self) -> int:
        """Its size once signed, at most: alone, or in the largest batch (the longest path)."""
        size = self.signer.signature_size
        alone = framed_size(len(self.header), len(self.ciphertext), size)
        return alone + limits.BATCH_PROOF_MAX_BYTES

    @property
    def signing_input(self) -> bytes:
        """What it is signed over alone, and its leaf in a batch (docs/PROTOCOL.md, 5)."""
        return signing_input(self.header, crypto.sha256(self.ciphertext))


def sign_all(unsigned: Sequence[Unsigned]) -> list[bytes]:
    """The envelopes of ``unsigned``, in order: each signing key signs its envelopes to each
    recipient under one head (framing version 2; at most :data:`MAX_BATCH` per head), and an
    envelope alone so is signed alone (version 1), which costs its verifiers no path.

    Never one head over several recipients' envelopes: the batch size and the shared signature
    in each envelope would tell each recipient (and whoever it discloses to) how much went to
    the others, and that two of them got views of one submission."""
    groups: dict[tuple[bytes, str], list[int]] = {}
    for position, item in enumerate(unsigned):
        key = (item.signer.public_key().to_bytes(), item.recipient)
        groups.setdefault(key, []).append(position)
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
        signature = signer.sign(only.signing_input)
        return [encode_frame(Frame(only.header, only.ciphertext, signature))]
    signature, proofs = crypto.sign_batch(
        signer, [item.signing_input for item in batch], prefix=BATCH_PREFIX
    )
    return [
        encode_frame(Frame(item.header, item.ciphertext, signature, proof))
        for item, proof in zip(batch, proofs, strict=True)
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
    else:
        crypto.verify_member(
            key, signature=signature, message=direct, proof=proof, prefix=BATCH_PREFIX
        )
