"""Coverage-guided fuzzing of envelope bytes: parse(), verify() and open().

The first input byte picks what the rest is: 0, raw envelope bytes; 1, a header that GB's
real key signs over a real ciphertext; 2, a body HPKE-sealed to RS under a real header and
signed by GB. Modes 1 and 2 are a hostile but registered sender, so the checks after the
signature are reached. ``python fuzz/atheris/fuzz_envelope.py -max_total_time=600``
"""

from __future__ import annotations

import sys

from _harness import atheris, fuzz

with atheris.instrument_imports(include=["broker"]):
    from broker import crypto, envelope
    from broker.envelope._format import decode_frame, pad, unpad
    from tests.fuzz.seeds import GB, LATER, RS, resign_envelope, world

WORLD = world()
FRAME = decode_frame(WORLD.envelopes[0])
SIGNER = WORLD.partners[GB].signing
RS_KEY = WORLD.partners[RS].decryption


def _envelope(data: bytes) -> bytes:
    mode, rest = (data[0] % 3, data[1:]) if data else (0, b"")
    if mode == 1:
        return resign_envelope(header=rest, ciphertext=FRAME.ciphertext, key=SIGNER)
    if mode == 2:
        info = crypto.sha256(FRAME.header)
        ciphertext = crypto.hpke_seal(RS_KEY.public_key(), pad(rest), info=info)
        return resign_envelope(header=FRAME.header, ciphertext=ciphertext, key=SIGNER)
    return rest


def target(data: bytes) -> None:
    # open() runs parse() and verify() first, so one call covers all three.
    envelope.open(
        _envelope(data),
        registry=WORLD.registry,
        recipient=RS,
        decryption_keys=WORLD.rs_keys,
        now=LATER,
    )


def seeds() -> list[bytes]:
    body = unpad(crypto.hpke_open(RS_KEY, FRAME.ciphertext, info=crypto.sha256(FRAME.header)))
    return [b"\x00" + e for e in WORLD.envelopes] + [b"\x01" + FRAME.header, b"\x02" + body]


if __name__ == "__main__":
    fuzz("envelope", target, seeds)
    sys.exit(0)
