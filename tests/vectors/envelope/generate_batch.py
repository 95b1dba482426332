"""Regenerate the batch signature vector: ``python tests/vectors/envelope/generate_batch.py``.

Three envelopes' parts are fixed bytes (a header and a ciphertext each: the batch signature
does not look inside them) and the signer is a fixed Ed25519 seed, whose signatures are
deterministic; so every leaf, the head, each path, the signed bytes, the signature and each
framed envelope come out the same on every run (docs/PROTOCOL.md, sections 1 and 5).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from broker import crypto
from broker.envelope import Unsigned, sign_all
from broker.envelope._format import decode_frame, signing_input

HERE = Path(__file__).parent
SEED = bytes(range(32, 64))
PARTS = [
    (b'{"n":1,"vector":"batch"}', b"ciphertext one"),
    (b'{"n":2,"vector":"batch"}', b"ciphertext two"),
    (b'{"n":3,"vector":"batch"}', b"ciphertext three"),
]


def vector() -> dict[str, Any]:
    key = crypto.SigningKey._from_seeds(crypto.Suite.CLASSIC, ed25519_seed=SEED)
    envelopes = sign_all([Unsigned(header, ciphertext, key, "RS") for header, ciphertext in PARTS])
    frames = [decode_frame(data) for data in envelopes]
    inputs = [signing_input(h, hashlib.sha256(c).digest()) for h, c in PARTS]
    return {
        "ed25519_seed": SEED.hex(),
        "public_key": key.public_key().to_bytes().hex(),
        "envelopes": [
            {
                "header": header.decode(),
                "ciphertext": ciphertext.hex(),
                "signing_input": signing_input_.hex(),
                "leaf": hashlib.sha256(b"\x00" + signing_input_).hexdigest(),
                "index": i,
                "path": [node.hex() for node in frames[i].proof.path],  # type: ignore[union-attr]
                "envelope": data.hex(),
            }
            for i, ((header, ciphertext), signing_input_, data) in enumerate(
                zip(PARTS, inputs, envelopes, strict=True)
            )
        ],
        "size": len(PARTS),
        "signature": frames[0].signature.hex(),
    }


if __name__ == "__main__":
    (HERE / "batch-v2.json").write_text(json.dumps(vector(), indent=2) + "\n")
