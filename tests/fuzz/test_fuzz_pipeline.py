"""Hostile records through the pure pipeline: the gateway's route(), the receiver's accept(),
delivery frames, and quarantine and audit records.

route() and accept() are what the daemons call on every record from Kafka: route() must turn
anything into an outcome or our error, and accept() must never raise at all (its contract:
every failure is a Rejected). Frames are rebuilt around hostile envelopes and signed again by
the real gateway key, so the receiver's checks after the gateway signature are fuzzed too.
"""

from __future__ import annotations

import datetime as dt
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import errors
from broker.pipeline import (
    parse_audit_record,
    parse_quarantine_record,
    verify_audit_record,
    verify_delivery,
)
from broker.pipeline.delivery import DELIVERY_MAGIC, _signing_input
from broker.pipeline.gateway import DedupKey, InboundRecord, route
from broker.pipeline.receive import Accepted, Rejected, accept
from tests.fuzz.mutations import (
    CAMPAIGN,
    byte_mutants,
    hostile,
    json_mutants,
    refused_or_accepted,
)
from tests.fuzz.seeds import LATER, NOW, RS, frame_for, world

# A failing example can be megabytes of nesting; its repr must not hide the real failure.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

_U32 = struct.Struct(">I")


def _attestations() -> tuple[bytes, ...]:
    return tuple(_split(f)[0] for f in world().frames)


def _split(frame: bytes) -> tuple[bytes, bytes]:
    """(attestation bytes, envelope bytes) of a well-formed frame."""
    at = len(DELIVERY_MAGIC)
    (n,) = _U32.unpack_from(frame, at)
    attestation = frame[at + 4 : at + 4 + n]
    at += 4 + n
    (m,) = _U32.unpack_from(frame, at)
    return attestation, frame[at + 4 + m :]


def _gateway_frame(attestation: bytes, sealed: bytes) -> bytes:
    """A frame whose attestation, whatever it says, carries a valid gateway signature."""
    signature = world().gateway_key.sign(_signing_input(attestation))
    parts = (DELIVERY_MAGIC, _U32.pack(len(attestation)), attestation)
    return b"".join((*parts, _U32.pack(len(signature)), signature, sealed))


@st.composite
def gateway_signed(draw: st.DrawFn) -> bytes:
    """Frames the real gateway key signed: a hostile attestation, or a hostile envelope."""
    frame = draw(st.sampled_from(world().frames))
    attestation, sealed = _split(frame)
    if draw(st.booleans()):
        return _gateway_frame(draw(json_mutants(_attestations(), styles=("canonical",))), sealed)
    hostile_envelope = draw(byte_mutants(world().envelopes))
    # attest() over the hostile bytes: the digest matches, so the envelope itself is checked.
    try:
        return frame_for(world(), hostile_envelope)
    except errors.EnvelopeError:  # unparseable: keep the honest attestation over it
        return _gateway_frame(attestation, hostile_envelope)


def _frames() -> st.SearchStrategy[bytes]:
    return gateway_signed() | hostile(world().frames)


@CAMPAIGN
@given(frame=_frames())
def test_verify_delivery_never_crashes(frame: bytes) -> None:
    """verify_delivery() of any frame verifies or raises our error."""
    refused_or_accepted(
        lambda: verify_delivery(frame, registry=world().registry, recipient=RS, now=LATER)
    )


@CAMPAIGN
@given(frame=_frames())
def test_accept_never_raises(frame: bytes) -> None:
    """accept() turns every frame into Accepted or Rejected; it raises nothing at all."""
    outcome = accept(
        frame,
        me=RS,
        registry=world().registry,
        decryption_keys=world().rs_keys,
        accords=world().counterparts,
        now=LATER,
        max_retention=dt.timedelta(days=30),
    )
    assert isinstance(outcome, Accepted | Rejected)


def _never_seen(_key: DedupKey) -> str:
    return "new"


@CAMPAIGN
@given(
    value=hostile(world().envelopes) | st.none(),
    # The topic comes from the Kafka client, so it is always a legal (non-empty) topic name.
    topic=st.sampled_from(("xb.outbox.GB", "xb.outbox.RS", "xb.outbox.", "xb.outbox.GBX", "x")),
    headers=st.lists(
        st.tuples(st.sampled_from(("xb-recipient", "x", "")), st.binary(max_size=8)), max_size=3
    ),
)
def test_route_never_crashes(
    value: bytes | None, topic: str, headers: list[tuple[str, bytes]]
) -> None:
    """route() turns any outbox record into an outcome, or at worst our error."""
    record = InboundRecord(topic=topic, partition=0, offset=1, value=value, headers=tuple(headers))
    refused_or_accepted(
        lambda: route(
            record,
            registry=world().registry,
            accords=world().accords,
            gateway_key=world().gateway_key,
            now=NOW,
            counters={},
            dedup=_never_seen,  # type: ignore[arg-type]
        )
    )


@CAMPAIGN
@given(
    data=json_mutants(world().quarantine_records, styles=("canonical", "indented"))
    | hostile(world().quarantine_records)
)
def test_parse_quarantine_record_never_crashes(data: bytes) -> None:
    """Quarantine records parse or raise our error, including their value_prefix_b64."""
    refused_or_accepted(lambda: parse_quarantine_record(data).value_prefix)


@CAMPAIGN
@given(
    data=json_mutants(world().audit_records, styles=("canonical", "indented"))
    | hostile(world().audit_records)
)
def test_audit_records_never_crash(data: bytes) -> None:
    """Audit records parse and verify, or raise our error."""
    refused_or_accepted(lambda: parse_audit_record(data))
    refused_or_accepted(lambda: verify_audit_record(data, registry=world().registry))
