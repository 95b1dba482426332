"""seal / verify / open / disclose: what a correct envelope gives each reader."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import crypto, envelope, errors, schema
from broker.envelope._format import canonical_json
from broker.ids import MessageId

from .conftest import (
    ACCORD_DIGEST,
    NOW,
    SAMPLE_LABELS,
    SAMPLE_MESSAGE,
    Party,
    TinyRegistry,
    make_party,
    open_document,
    sample_bytes,
    seal_document,
    seal_from,
)


def test_the_recipient_opens_exactly_the_message_that_was_sealed(
    sealed: bytes, registry: TinyRegistry, rs: Party, gb: Party
) -> None:
    """open() returns the schema-validated message and a header built from the signed bytes."""
    opened = envelope.open(
        sealed, registry=registry, recipient=rs.code, decryption_keys=rs.decryption_keys, now=NOW
    )
    expected = schema.parse_message(sample_bytes())
    assert opened.message == expected
    assert json.loads(opened.message_bytes) == json.loads(schema.message_bytes(expected))
    header = opened.header
    assert (header.sender, header.recipient) == (gb.code, rs.code)
    assert header.sender_key_id == gb.signing.public_key().key_id
    assert header.recipient_key_id == rs.decryption.key_id
    assert header.message_id == "01900000-0000-7000-8000-000000000001"
    assert header.case_id == "GB-NCA-2026-0417"
    assert header.labels == SAMPLE_LABELS
    assert (header.created, header.expires) == (NOW, NOW + dt.timedelta(days=7))
    assert header.accord_id == "gb-rs"
    assert header.accord_digest == ACCORD_DIGEST.hex()
    assert header.suite is crypto.Suite.CLASSIC


def test_the_gateway_verifies_without_any_private_key(
    sealed: bytes, registry: TinyRegistry
) -> None:
    """verify() needs only the registry's public keys, and yields the signed labels."""
    header = envelope.verify(sealed, registry=registry, now=NOW)
    assert header.labels == SAMPLE_LABELS
    assert header.envelope_digest == crypto.sha256(sealed)


def test_the_clear_header_reveals_no_content(sealed: bytes) -> None:
    """No field value of the message appears anywhere in the envelope's bytes."""
    for needle in (b"Presevo", b"KESTREL", b"Example", b"staging"):
        assert needle not in sealed


def test_results_have_no_truth_value(sealed: bytes, registry: TinyRegistry, rs: Party) -> None:
    """`if verify(...)` is a bug; using a result as a boolean raises TypeError."""
    header = envelope.verify(sealed, registry=registry, now=NOW)
    opened = envelope.open(
        sealed, registry=registry, recipient=rs.code, decryption_keys=rs.decryption_keys, now=NOW
    )
    for result in (header, opened, envelope.parse(sealed)):
        with pytest.raises(TypeError):
            bool(result)


@pytest.mark.parametrize(
    ("filler", "bucket"), [(0, 512), (400, 1024), (1500, 2048), (3000, 4096), (7000, 8192)]
)
def test_ciphertext_lengths_fall_into_power_of_two_buckets(
    gb: Party, rs: Party, filler: int, bucket: int
) -> None:
    """The body is padded to a power of two (at least 512 B) before HPKE, hiding its length."""
    sealed = seal_document(gb, rs, {"type": "x", "body": {"note": "a" * filler}})
    overhead = 32 + 16  # X25519 encapsulated key + Poly1305 tag
    assert len(envelope.parse(sealed).ciphertext) == bucket + overhead


def test_a_pq_hybrid_envelope_round_trips() -> None:
    """The hybrid suite seals with ML-KEM-768+X25519 and needs both signatures."""
    sender = make_party("GB", crypto.Suite.PQ_HYBRID)
    recipient = make_party("RS", crypto.Suite.PQ_HYBRID)
    registry = TinyRegistry()
    registry.add(sender)
    registry.add(recipient)
    sealed = seal_from(sender, recipient)
    opened = envelope.open(
        sealed,
        registry=registry,
        recipient=recipient.code,
        decryption_keys=recipient.decryption_keys,
        now=NOW,
    )
    assert opened.header.suite is crypto.Suite.PQ_HYBRID
    assert opened.message == schema.parse_message(sample_bytes())


def test_a_disclosure_reveals_chosen_fields_only(
    sealed: bytes, registry: TinyRegistry, rs: Party
) -> None:
    """A third party checks revealed fields against the sender's signature; others stay hidden."""
    opened = envelope.open(
        sealed, registry=registry, recipient=rs.code, decryption_keys=rs.decryption_keys, now=NOW
    )
    disclosure = envelope.disclose(opened, ["body.hubs", "classification"])
    wire = disclosure.to_json()
    assert b"Presevo" not in wire
    assert b"Example" not in wire
    revealed = envelope.verify_disclosure(
        envelope.Disclosure.from_json(wire), registry=registry, now=NOW + dt.timedelta(days=400)
    )
    assert revealed == {
        "body.hubs": SAMPLE_MESSAGE["body"]["hubs"],  # type: ignore[index]
        "classification": "OFFICIAL-SENSITIVE",
    }


@pytest.mark.parametrize(
    ("name", "path", "new_value"),
    [
        ("changed value", "classification", "OFFICIAL"),
        ("field never committed", "body.extra", "x"),
    ],
)
def test_a_forged_disclosure_is_refused(
    sealed: bytes, registry: TinyRegistry, rs: Party, name: str, path: str, new_value: str
) -> None:
    """A holder cannot reveal a value the originator did not sign."""
    opened = envelope.open(
        sealed, registry=registry, recipient=rs.code, decryption_keys=rs.decryption_keys, now=NOW
    )
    honest = envelope.disclose(opened, ["classification"])
    salt = honest.revealed["classification"][0]
    forged = envelope.Disclosure(
        header_bytes=honest.header_bytes,
        ciphertext_digest=honest.ciphertext_digest,
        signature=honest.signature,
        revealed={path: (salt, new_value)},
    )
    with pytest.raises(errors.VerificationError):
        envelope.verify_disclosure(forged, registry=registry)


def test_disclosing_an_unknown_field_is_a_usage_error(
    sealed: bytes, registry: TinyRegistry, rs: Party
) -> None:
    """Only committed paths can be disclosed."""
    opened = envelope.open(
        sealed, registry=registry, recipient=rs.code, decryption_keys=rs.decryption_keys, now=NOW
    )
    with pytest.raises(errors.UsageError):
        envelope.disclose(opened, ["body.nope"])


JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=40)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(
    top=st.dictionaries(FIELD_NAMES.filter(lambda n: n != "body"), JSON_VALUES, max_size=5),
    body=st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=6),
)
def test_round_trip_property(top: dict[str, object], body: dict[str, object]) -> None:
    """For any JSON object, open(seal(m)) gives m's canonical bytes back (format level)."""
    sender, recipient = _PARTIES
    message = {**top, "body": body}
    opened = open_document(seal_document(sender, recipient, message), _REGISTRY, recipient)
    assert opened.message_bytes == canonical_json(message)


_PARTIES = (make_party("GB"), make_party("RS"))
_REGISTRY = TinyRegistry()
for _party in _PARTIES:
    _REGISTRY.add(_party)


def test_sealing_refuses_mismatched_recipient_key_id(gb: Party, rs: Party, mk: Party) -> None:
    """The recipient key id must be the id of the key actually used."""
    with pytest.raises(errors.UsageError):
        seal_from(gb, rs, recipient_key_id=mk.decryption.key_id)


@pytest.mark.parametrize("ttl", [dt.timedelta(0), dt.timedelta(seconds=-1), dt.timedelta(days=31)])
def test_sealing_refuses_a_ttl_out_of_range(gb: Party, rs: Party, ttl: dt.timedelta) -> None:
    """A lifetime must be positive and at most 30 days."""
    with pytest.raises(errors.UsageError):
        seal_from(gb, rs, ttl=ttl)


@pytest.mark.parametrize(
    "message", [b"[1,2]", b'{"a":1,"a":2}', b'{"a":NaN}', b"not json", b"\xff"]
)
def test_sealing_refuses_messages_that_are_not_strict_json_objects(
    gb: Party, rs: Party, message: bytes
) -> None:
    """Duplicate keys, NaN, non-objects and invalid UTF-8 are SchemaErrors before sealing."""
    with pytest.raises(errors.SchemaError):
        seal_from(gb, rs, message)


def test_each_seal_has_a_fresh_message_id_and_ciphertext(gb: Party, rs: Party) -> None:
    """Two seals of one message differ; ids are UUIDv7 stamped with the creation time."""
    first, second = (envelope.parse(seal_from(gb, rs)) for _ in range(2))
    assert first.header.message_id != second.header.message_id
    assert first.ciphertext != second.ciphertext
    assert MessageId(first.header.message_id)[14] == "7"


def test_public_surface_is_pinned() -> None:
    """The names other packages may use."""
    assert sorted(envelope.__all__) == sorted(
        [
            "DEFAULT_MAX_AGE",
            "DEFAULT_MAX_SKEW",
            "MAX_BATCH",
            "MAX_ENVELOPE_BYTES",
            "BatchProof",
            "Disclosure",
            "EnvelopeHeader",
            "KeyRegistry",
            "Origin",
            "OpenedEnvelope",
            "ParsedEnvelope",
            "Unsigned",
            "VerifiedHeader",
            "check_revealed",
            "disclose",
            "disclose_kept",
            "open",
            "parse",
            "parse_header",
            "seal",
            "seal_revealing",
            "seal_unsigned",
            "sign_all",
            "verify",
            "verify_disclosure",
        ]
    )


def test_sample_is_what_the_fixture_seals() -> None:
    """Guard for the fixtures themselves: the sample is a JSON object with a body."""
    assert json.loads(sample_bytes()) == SAMPLE_MESSAGE
