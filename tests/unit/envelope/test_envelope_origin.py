"""Header version 2: the officer, agency and unit who submitted a view, signed by its sender
(docs/PROTOCOL.md section 2.2, ``origin``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from broker import crypto, envelope, errors
from broker.envelope import Origin
from broker.envelope._format import Frame, canonical_json, decode_frame, encode_frame

from .conftest import NOW, Party, TinyRegistry, seal_from

ORIGIN = Origin(agency="Border Force", unit="Maritime Intelligence", officer="a.jones")


def _header(sealed: bytes) -> dict[str, Any]:
    return dict(json.loads(envelope.parse(sealed).header_bytes))


def test_a_view_with_an_origin_is_a_version_2_header_that_names_it(
    registry: TinyRegistry, gb: Party, rs: Party
) -> None:
    sealed = seal_from(gb, rs, origin=ORIGIN)
    opened = envelope.open(
        sealed, registry=registry, recipient=rs.code, decryption_keys=rs.decryption_keys, now=NOW
    )
    assert envelope.parse(sealed).header.version == 2
    assert opened.header.origin == ORIGIN
    assert opened.header.origin.label == "a.jones (Border Force, Maritime Intelligence)"
    assert _header(sealed)["origin"] == {
        "agency": "Border Force",
        "officer": "a.jones",
        "unit": "Maritime Intelligence",
    }


def test_a_view_without_one_stays_version_1_and_has_no_origin_member(gb: Party, rs: Party) -> None:
    header = _header(seal_from(gb, rs))
    assert header["version"] == 1
    assert "origin" not in header


def _mutated(sealed: bytes, change: dict[str, Any], drop: tuple[str, ...] = ()) -> bytes:
    header = {**_header(sealed), **change}
    for name in drop:
        del header[name]
    return canonical_json(header)


@pytest.mark.parametrize(
    ("change", "drop", "why"),
    [
        ({"version": 1}, (), "must not name an origin"),
        ({"version": 2}, ("origin",), "must name an origin"),
        ({"origin": None}, (), "origin"),
        ({"version": True}, (), "unsupported header version"),
        ({"version": 3}, (), "unsupported header version"),
        ({"origin": {**ORIGIN.model_dump(), "rank": "DS"}}, (), "origin.rank"),
        ({"origin": {**ORIGIN.model_dump(), "officer": "A.Jones"}}, (), "origin.officer"),
        ({"origin": {**ORIGIN.model_dump(), "unit": " Maritime"}}, (), "origin.unit"),
        ({"origin": {**ORIGIN.model_dump(), "agency": "x" * 121}}, (), "origin.agency"),
        ({"origin": {**ORIGIN.model_dump(), "agency": "a\u0000b"}}, (), "origin.agency"),
        ({"origin": {**ORIGIN.model_dump(), "unit": "Maritime\u200b"}}, (), "origin.unit"),
        ({"origin": {**ORIGIN.model_dump(), "agency": "Granic\u030cna"}}, (), "origin.agency"),
    ],
)
def test_every_other_form_of_an_origin_is_refused(
    gb: Party, rs: Party, change: dict[str, Any], drop: tuple[str, ...], why: str
) -> None:
    sealed = seal_from(gb, rs, origin=ORIGIN)
    with pytest.raises(errors.EnvelopeError, match=why):
        envelope.parse_header(_mutated(sealed, change, drop))


def test_a_version_1_header_with_a_null_origin_is_a_second_byte_form_and_refused(
    gb: Party, rs: Party
) -> None:
    with pytest.raises(errors.EnvelopeError, match="must not name an origin"):
        envelope.parse_header(_mutated(seal_from(gb, rs), {"origin": None}))


def test_the_signature_covers_the_origin(registry: TinyRegistry, gb: Party, rs: Party) -> None:
    """Another officer written into a signed header no longer verifies."""
    sealed = seal_from(gb, rs, origin=ORIGIN)
    other = _mutated(sealed, {"origin": {**ORIGIN.model_dump(), "officer": "b.smith"}})
    frame = decode_frame(sealed)
    forged = encode_frame(Frame(other, frame.ciphertext, frame.signature))
    with pytest.raises(errors.VerificationError):
        envelope.verify(forged, registry=registry, now=NOW)


def test_the_verified_header_carries_the_origin(
    registry: TinyRegistry, gb: Party, rs: Party
) -> None:
    sealed = seal_from(gb, rs, origin=ORIGIN)
    header = envelope.verify(sealed, registry=registry, now=NOW)
    assert header.origin == ORIGIN
    assert header.envelope_digest == crypto.sha256(sealed)
    assert envelope.verify(seal_from(gb, rs), registry=registry, now=NOW).origin is None


def test_a_view_whose_origin_is_in_cyrillic_is_disclosed_and_verified(
    registry: TinyRegistry, gb: Party, rs: Party
) -> None:
    """Every header was ASCII before origins: a disclosure carries the header's exact text,
    which is now UTF-8, and must come back to the same bytes for the signature to hold."""
    origin = Origin(agency="Гранична полиција", unit="Управа", officer="m.petrovic")
    sealed = seal_from(gb, rs, origin=origin)
    opened = envelope.open(
        sealed, registry=registry, recipient=rs.code, decryption_keys=rs.decryption_keys, now=NOW
    )
    shown = envelope.Disclosure.from_json(envelope.disclose(opened, ["classification"]).to_json())
    assert shown.header_bytes == opened.header.header_bytes
    assert "Гранична полиција".encode() in shown.header_bytes
    revealed = envelope.verify_disclosure(shown, registry=registry, now=NOW)
    assert revealed == {"classification": "OFFICIAL-SENSITIVE"}


def test_a_stored_origin_is_read_as_kept_and_anything_else_is_refused() -> None:
    """What a store kept was checked on the way in, perhaps under an earlier rule: it is read
    back as it was; text that is no origin at all is a ValueError, never a partial one."""
    legacy = Origin.stored('{"agency":"Granic\\u030cna","officer":"m.p","unit":"Analysis"}')
    assert (legacy.agency, legacy.officer, legacy.unit) == ("Granic\u030cna", "m.p", "Analysis")
    assert Origin.stored(ORIGIN.model_dump_json()) == ORIGIN
    for text in ("", "[]", '{"agency":"A","unit":"U"}', '{"agency":1,"unit":"U","officer":"o"}'):
        with pytest.raises(ValueError, match="a stored origin is not one"):
            Origin.stored(text)
