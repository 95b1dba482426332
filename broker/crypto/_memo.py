"""Signatures already verified, so that one signature over a batch is checked once.

A batch-signed envelope or attestation carries the signature over its batch's Merkle head, the
same signature every other member of the batch carries. Verifying it once per batch instead of
once per member is the point of batch signatures; this memo makes that so for any verifier.

It remembers only successes, keyed by a hash of the key, the message and the exact signature
bytes: verification is a pure function of those three, so a hit answers exactly what a full
check would. A member that carries other signature bytes (a garbled copy, another signature
by the same key) misses and is checked in full. Bounded: the least recently used entries go.
"""

from __future__ import annotations

import collections
import hashlib
import struct
import threading

from broker.crypto._signing import VerifyKey

__all__ = ["VerifiedSignatures"]

_U32 = struct.Struct(">I")


class VerifiedSignatures:
    """A bounded, thread-safe memo of signatures that verified."""

    __slots__ = ("_capacity", "_lock", "_seen")

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._seen: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def verify(self, key: VerifyKey, *, signature: bytes, message: bytes) -> None:
        """:meth:`VerifyKey.verify`, answered from the memo when these exact bytes verified
        before under this key; raises VerificationError otherwise."""
        raw = key.to_bytes()
        token = hashlib.sha256(
            b"".join((_U32.pack(len(raw)), raw, _U32.pack(len(signature)), signature, message))
        ).digest()
        with self._lock:
            if token in self._seen:
                self._seen.move_to_end(token)
                return
        key.verify(signature=signature, message=message)
        with self._lock:
            self._seen[token] = None
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
