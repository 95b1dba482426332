"""Hostile envelope bytes: parse(), verify() and open() refuse them with our errors, never crash.

Seeds are real GB -> RS envelopes sealed by the sending pipeline. Blind mutations attack the
framing; structural ones rewrite the signed header or the ciphertext and sign them again with
GB's real key, which is what a hostile but registered partner can send, so the checks after
the signature (header schema, times, keys, decryption, padding, content commitments) are
fuzzed too, not just the signature.
"""

from __future__ import annotations

import contextlib
import functools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import crypto, envelope, errors
from broker.envelope._format import decode_frame, pad, unpad
from tests.fuzz.mutations import (
    CAMPAIGN,
    byte_mutants,
    hostile,
    json_mutants,
    refused_or_accepted,
)
from tests.fuzz.seeds import GB, LATER, RS, resign_envelope, world

# A failing example can be megabytes of nesting; its repr must not hide the real failure.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


def _headers() -> tuple[bytes, ...]:
    return tuple(decode_frame(e).header for e in world().envelopes)


@st.composite
def resigned(draw: st.DrawFn) -> bytes:
    """A real envelope with a mutated header or ciphertext, correctly signed by GB."""
    frame = decode_frame(draw(st.sampled_from(world().envelopes)))
    header, ciphertext = frame.header, frame.ciphertext
    if draw(st.booleans()):
        header = draw(json_mutants(_headers(), styles=("canonical",)))
    else:
        ciphertext = draw(byte_mutants([ciphertext]) | st.binary(max_size=600))
    return resign_envelope(header=header, ciphertext=ciphertext, key=world().partners[GB].signing)


@functools.cache
def _bodies() -> tuple[bytes, ...]:
    """The decrypted, unpadded bodies of the seeds (canonical JSON: key, message, salts)."""
    rs = world().partners[RS].decryption
    return tuple(
        unpad(crypto.hpke_open(rs, f.ciphertext, info=crypto.sha256(f.header)))
        for f in map(decode_frame, world().envelopes)
    )


@st.composite
def regrafted(draw: st.DrawFn) -> bytes:
    """A real header over a hostile body, encrypted to RS and signed by GB: a lying sender."""
    frame = decode_frame(draw(st.sampled_from(world().envelopes)))
    body = draw(json_mutants(_bodies(), styles=("canonical",)) | byte_mutants(_bodies()))
    plaintext = pad(body) if draw(st.booleans()) else body
    rs_key = world().partners[RS].decryption.public_key()
    ciphertext = crypto.hpke_seal(rs_key, plaintext, info=crypto.sha256(frame.header))
    return resign_envelope(
        header=frame.header, ciphertext=ciphertext, key=world().partners[GB].signing
    )


def _open(data: bytes) -> None:
    envelope.open(
        data,
        registry=world().registry,
        recipient=RS,
        decryption_keys=world().rs_keys,
        now=LATER,
    )


@CAMPAIGN
@given(data=hostile(world().envelopes))
def test_parse_refuses_mangled_envelopes_with_envelope_errors(data: bytes) -> None:
    """parse() of any bytes returns a ParsedEnvelope or raises EnvelopeError, nothing else."""
    with contextlib.suppress(errors.EnvelopeError):
        envelope.parse(data)


@CAMPAIGN
@given(data=hostile(world().envelopes) | resigned())
def test_verify_never_crashes(data: bytes) -> None:
    """verify() of mangled or re-signed envelopes either verifies or raises our error."""
    refused_or_accepted(lambda: envelope.verify(data, registry=world().registry, now=LATER))


@CAMPAIGN
@given(data=regrafted() | resigned() | hostile(world().envelopes))
def test_open_never_crashes(data: bytes) -> None:
    """open() never crashes on a body, header or ciphertext a registered sender rewrote."""
    refused_or_accepted(lambda: _open(data))


def test_the_seeds_open() -> None:
    """The campaign starts from envelopes that really open, so mutations start deep."""
    for sealed in world().envelopes:
        opened = envelope.open(
            sealed,
            registry=world().registry,
            recipient=RS,
            decryption_keys=world().rs_keys,
            now=LATER,
        )
        assert json.loads(opened.message_bytes)["type"]
