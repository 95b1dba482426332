"""Known-answer vectors: the v1 envelope reproduced byte for byte from fixed inputs.

tests/vectors/envelope/classic-v1.json holds the inputs (key seeds, message, labels, salts,
content key, ids, times), the recorded HPKE ciphertext (its ephemeral key is drawn inside the
library) and the expected envelope. Everything but that ciphertext is recomputed here.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from broker import crypto, envelope
from broker.envelope._seal import _seal_from_parts
from broker.ids import PartnerCode

from .conftest import Party, TinyRegistry

VECTORS = Path(__file__).parents[2] / "vectors" / "envelope"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("envelope_vectors", VECTORS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def vector() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((VECTORS / "classic-v1.json").read_text())
    return loaded


def test_the_envelope_is_reproduced_byte_for_byte(vector: dict[str, Any]) -> None:
    """Same keys, salts, content key, ids and times give the same header, HPKE plaintext,
    HPKE info, signature and framing as recorded."""
    expected = vector["expected"]
    arguments = _generator().seal_inputs(vector["inputs"])
    document = arguments.pop("document")
    assert arguments["sender_key"].public_key().key_id == expected["sender_key_id"]
    assert arguments["recipient_key_id"] == expected["recipient_key_id"]

    def recorded_hpke(key: crypto.EncryptionKey, plaintext: bytes, info: bytes) -> bytes:
        assert key.key_id == expected["recipient_key_id"]
        assert info.hex() == expected["hpke_info"]
        assert len(plaintext) == expected["padded_body_length"]
        assert crypto.sha256(plaintext).hex() == expected["padded_body_sha256"]
        return bytes.fromhex(expected["hpke_ciphertext"])

    sealed = _seal_from_parts(document, **arguments, hpke=recorded_hpke)
    assert sealed.hex() == expected["envelope"]


def test_the_vector_envelope_opens_with_the_fixed_recipient_key(vector: dict[str, Any]) -> None:
    """The recorded ciphertext is real HPKE: the fixed X25519 key opens it to the message."""
    inputs = vector["inputs"]
    recipient = crypto.DecryptionKey._from_seeds(
        crypto.Suite.CLASSIC, x25519_private=bytes.fromhex(inputs["recipient_x25519_private"])
    )
    sender = crypto.SigningKey._from_seeds(
        crypto.Suite.CLASSIC, ed25519_seed=bytes.fromhex(inputs["sender_ed25519_seed"])
    )
    registry = TinyRegistry()
    created = dt.datetime.fromisoformat(inputs["created"])
    registry.add(Party(PartnerCode("GB"), sender, crypto.DecryptionKey.generate(sender.suite)))
    registry.add(Party(PartnerCode("RS"), crypto.SigningKey.generate(sender.suite), recipient))
    sealed = bytes.fromhex(vector["expected"]["envelope"])
    assert (VECTORS / "classic-v1.envelope").read_bytes() == sealed
    opened = envelope.open(
        sealed,
        registry=registry,
        recipient=PartnerCode("RS"),
        decryption_keys={recipient.key_id: recipient},
        now=created,
    )
    assert opened.header.message_id == inputs["message_id"]
    assert (
        json.loads(opened.message_bytes)["body"]["summary"]
        == (inputs["message"]["body"]["summary"])
    )
