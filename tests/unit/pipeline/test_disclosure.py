"""Disclosure bundles: built from the evidence a recipient kept, they prove chosen fields came
from the originator through a registered gateway, and nothing else verifies.

The evidence is the real one: Serbia's adapter stores a view GB sealed and the gateway
attested, and the bundle is built from what its inbox kept.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from broker import crypto, envelope, errors, limits
from broker.adapter import Adapter, write_submission
from broker.clock import FixedClock
from broker.pipeline.disclosure import (
    BUNDLE_FORMAT,
    Evidence,
    VerifiedBundle,
    disclosure_bundle,
    verify_bundle,
)
from broker.pipeline.send import Outgoing

from ..adapter.world import GATEWAY_KEY, GB, NOW, RS, WORLD, deliver, make_adapter, report

REGISTRY = WORLD.registry
FIELDS = ("body.summary", "case_id")


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Evidence, bytes, str]:
    """What Serbia's inbox kept of one GB report: its evidence, content and id."""
    root = tmp_path_factory.mktemp("disclosure")
    clock = FixedClock(NOW)
    uk, serbia = (
        make_adapter(GB, root / "gb", clock=clock),
        make_adapter(RS, root / "rs", clock=clock),
    )
    (outgoing,) = uk.submit(report(), to=[RS])
    assert isinstance(outgoing, Outgoing)
    assert serbia.receive(deliver(outgoing.envelope, recipient=RS)) == "stored"
    evidence = Evidence.from_bytes(serbia.inbox.evidence(outgoing.message_id))
    content = serbia.inbox.get(outgoing.message_id)
    for adapter in (uk, serbia):
        _close(adapter)
    return evidence, content, outgoing.message_id


def _close(adapter: Adapter) -> None:
    adapter.journal.close()
    adapter.inbox.close()


def bundle_of(kept: tuple[Evidence, bytes, str], fields: tuple[str, ...] = FIELDS) -> bytes:
    evidence, content, _ = kept
    return disclosure_bundle(evidence, message_json=content, fields=fields, registry=REGISTRY)


def test_a_bundle_proves_exactly_the_fields_it_reveals(kept: tuple[Evidence, bytes, str]) -> None:
    verified = verify_bundle(bundle_of(kept), registry=REGISTRY)
    message = json.loads(kept[1])
    assert dict(verified.fields) == {
        "body.summary": message["body"]["summary"],
        "case_id": message["case_id"],
    }
    assert verified.header.message_id == kept[2]
    assert (verified.header.sender, verified.header.recipient) == (GB, RS)
    assert verified.attestation.gateway_key_id == GATEWAY_KEY.public_key().key_id
    assert "body.members" in verified.withheld
    assert set(verified.withheld) | set(FIELDS) == set(verified.header.commitment.fields)
    with pytest.raises(TypeError):
        bool(verified)


def test_a_bundle_holds_no_plaintext_but_what_it_reveals(
    kept: tuple[Evidence, bytes, str],
) -> None:
    """Every withheld value stays inside the ciphertext, sealed to the recipient alone."""
    bundle = bundle_of(kept, ("case_id",))
    message = json.loads(kept[1])
    frame = base64.b64decode(json.loads(bundle)["delivery"])
    withheld = [comms["value"].encode() for m in message["body"]["members"] for comms in m["comms"]]
    withheld.append(message["body"]["summary"].encode())
    assert withheld
    for value in withheld:
        assert value not in bundle + frame
    assert message["case_id"].encode() in bundle


def test_no_field_revealed_still_proves_delivery(kept: tuple[Evidence, bytes, str]) -> None:
    verified = verify_bundle(bundle_of(kept, ()), registry=REGISTRY)
    assert dict(verified.fields) == {}


def test_a_field_the_view_does_not_commit_is_refused_naming_those_it_does(
    kept: tuple[Evidence, bytes, str],
) -> None:
    with pytest.raises(errors.UsageError, match=r"no such committed field\(s\): body\.nothing"):
        bundle_of(kept, ("body.nothing", "case_id"))


def test_evidence_that_does_not_match_its_commitments_is_never_handed_out(
    kept: tuple[Evidence, bytes, str],
) -> None:
    evidence, content, _ = kept
    swapped = Evidence(
        evidence.frame, {**evidence.salts, "case_id": evidence.salts["body.summary"]}
    )
    with pytest.raises(errors.VerificationError):
        disclosure_bundle(swapped, message_json=content, fields=FIELDS, registry=REGISTRY)


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def edit(bundle: bytes) -> bytes:
        document = json.loads(bundle)
        change(document)
        return json.dumps(document).encode()

    return edit


def _frame_edit(change: Callable[[bytearray], None]) -> Callable[[bytes], bytes]:
    def edit(document: dict[str, Any]) -> None:
        frame = bytearray(base64.b64decode(document["delivery"]))
        change(frame)
        document["delivery"] = base64.b64encode(bytes(frame)).decode()

    return _edit(edit)


def _flip(at: Callable[[bytearray], int]) -> Callable[[bytearray], None]:
    def flip(frame: bytearray) -> None:
        frame[at(frame)] ^= 1

    return flip


def _value(document: dict[str, Any]) -> None:
    document["fields"]["case_id"]["value"] = "GB-NCA-2026-9999"


def _salt(document: dict[str, Any]) -> None:
    document["fields"]["case_id"]["salt"] = "00" * 16


def _moved(document: dict[str, Any]) -> None:
    document["fields"]["body.operation_name"] = document["fields"].pop("body.summary")


def _invented(document: dict[str, Any]) -> None:
    document["fields"]["body.extra"] = {"salt": "00" * 16, "value": "x"}


def _attestation_start(frame: bytearray) -> int:
    return 8 + 10  # b"XBD1", u32 length, then inside the attestation's JSON


def _envelope_byte(frame: bytearray) -> int:
    return len(frame) - 100  # inside the envelope's ciphertext


def _attested_by_a_partner(document: dict[str, Any]) -> None:
    """GB attests its own delivery, naming its own (registered, non-gateway) key."""
    frame = base64.b64decode(document["delivery"])
    length = int.from_bytes(frame[4:8], "big")
    attestation = json.loads(frame[8 : 8 + length])
    signature_length = int.from_bytes(frame[8 + length : 12 + length], "big")
    envelope = frame[12 + length + signature_length :]
    partner = WORLD.partners[GB].signing
    attestation["gateway_key_id"] = partner.public_key().key_id
    data = json.dumps(attestation, sort_keys=True, separators=(",", ":")).encode()
    signature = partner.sign(b"xb-gateway-decision-v1\x00" + len(data).to_bytes(4, "big") + data)
    document["delivery"] = base64.b64encode(
        b"XBD1"
        + len(data).to_bytes(4, "big")
        + data
        + len(signature).to_bytes(4, "big")
        + signature
        + envelope
    ).decode()


TAMPERED: dict[str, tuple[Callable[[bytes], bytes], type[errors.BrokerError]]] = {
    "a revealed value changed": (_edit(_value), errors.VerificationError),
    "a salt changed": (_edit(_salt), errors.VerificationError),
    "a value moved under another path": (_edit(_moved), errors.VerificationError),
    "an uncommitted path added": (_edit(_invented), errors.VerificationError),
    "the attestation changed": (_frame_edit(_flip(_attestation_start)), errors.BrokerError),
    "the envelope changed": (_frame_edit(_flip(_envelope_byte)), errors.VerificationError),
    "the attestation signed by a partner's key": (
        _edit(_attested_by_a_partner),
        errors.KeyTrustError,
    ),
    "another format": (
        _edit(lambda d: d.update(format="broker-disclosure/v2")),
        errors.EnvelopeError,
    ),
    "an extra member": (_edit(lambda d: d.update(note="trust me")), errors.EnvelopeError),
    "a field without its salt": (
        _edit(lambda d: d["fields"]["case_id"].pop("salt")),
        errors.EnvelopeError,
    ),
    "a salt in capitals": (
        _edit(lambda d: d["fields"]["case_id"].update(salt=d["fields"]["case_id"]["salt"].upper())),
        errors.EnvelopeError,
    ),
    "the delivery not base64": (_edit(lambda d: d.update(delivery="@@@")), errors.EnvelopeError),
    "not JSON": (lambda b: b[:-1], errors.EnvelopeError),
    "a duplicate key": (lambda b: b[:-1] + b',"format":"x"}', errors.EnvelopeError),
    "too large": (
        lambda b: b + b" " * limits.DISCLOSURE_BUNDLE_MAX_BYTES,
        errors.EnvelopeError,
    ),
}


@pytest.mark.parametrize("case", TAMPERED, ids=list(TAMPERED))
def test_a_tampered_bundle_is_refused(kept: tuple[Evidence, bytes, str], case: str) -> None:
    tamper, error = TAMPERED[case]
    with pytest.raises(error):
        verify_bundle(tamper(bundle_of(kept)), registry=REGISTRY)


def test_a_bundle_verifies_after_the_gateway_key_is_revoked(
    kept: tuple[Evidence, bytes, str],
) -> None:
    """Offline, later: the key is judged at the decision's time, not at the auditor's."""
    draft = WORLD.edit()
    later = NOW + dt.timedelta(days=2)
    draft.revoke(partner=None, key_id=GATEWAY_KEY.public_key().key_id, at=later, reason="lost")
    revoked, _ = WORLD.resign(draft, now=later + dt.timedelta(hours=1))
    verified: VerifiedBundle = verify_bundle(bundle_of(kept), registry=revoked)
    assert set(verified.fields) == set(FIELDS)


def test_the_bundle_format_is_the_documented_one(kept: tuple[Evidence, bytes, str]) -> None:
    """Canonical JSON with exactly the members docs/PROTOCOL.md section 9 names."""
    bundle = bundle_of(kept)
    document = json.loads(bundle)
    assert set(document) == {"delivery", "fields", "format"}
    assert document["format"] == BUNDLE_FORMAT == "broker-disclosure/v1"
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical.encode() == bundle
    assert crypto.sha256(base64.b64decode(document["delivery"])) == crypto.sha256(kept[0].frame)
    assert all(len(bytes.fromhex(f["salt"])) == 16 for f in document["fields"].values())


def test_kept_evidence_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    for junk in (b"", b"[]", b'{"delivery":"AA==","salts":[]}', b'{"delivery":1,"salts":{}}'):
        with pytest.raises(errors.EnvelopeError):
            Evidence.from_bytes(junk)


def test_a_view_signed_in_a_batch_is_disclosed_with_its_place_in_the_batch(
    tmp_path: Path,
) -> None:
    """GB's spool chunk signs two views to RS under one head; RS discloses one: the bundle
    verifies (its envelope carries its own path), and every other chosen field stays hidden."""
    clock = FixedClock(NOW)
    uk, serbia = (
        make_adapter(GB, tmp_path / "gb", clock=clock, spool=True),
        make_adapter(RS, tmp_path / "rs", clock=clock),
    )
    assert uk.spool is not None
    for n in range(2):
        write_submission(
            uk.spool.root, report().model_copy(update={"case_id": f"GB-CASE-B{n}"}), [RS]
        )
    assert uk.process_spool() == 2
    first, second = (e.envelope for e in uk.journal.pending())
    assert envelope.parse(first).proof is not None
    assert serbia.receive_many([deliver(first, recipient=RS), deliver(second, recipient=RS)]) == [
        "stored",
        "stored",
    ]
    message_id = envelope.parse(second).header.message_id
    evidence = Evidence.from_bytes(serbia.inbox.evidence(message_id))
    bundle = disclosure_bundle(
        evidence, message_json=serbia.inbox.get(message_id), fields=("case_id",), registry=REGISTRY
    )
    verified = verify_bundle(bundle, registry=REGISTRY)
    assert dict(verified.fields) == {"case_id": envelope.parse(second).header.case_id}
    for adapter in (uk, serbia):
        _close(adapter)
