"""Known-answer tests: RFC 8032 Ed25519 through our API, and Wycheproof vectors for the
primitives our suites are built from (Ed25519, X25519, ChaCha20-Poly1305).

The Wycheproof JSON files under tests/vectors/wycheproof are unmodified third-party data
(Apache-2.0; see the README and LICENSE there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from broker import crypto, errors

WYCHEPROOF = Path(__file__).parents[2] / "vectors" / "wycheproof"

# RFC 8032 section 7.1: TEST 1, TEST 2, TEST 3 and TEST SHA(abc).
# (TEST 1024's 1023-byte message is covered by Wycheproof's long-message cases instead.)
RFC8032 = {
    "TEST 1": (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    "TEST 2": (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    "TEST 3": (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    "TEST SHA(abc)": (
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
}


@pytest.mark.parametrize("name", list(RFC8032))
def test_rfc8032_ed25519_sign_and_verify(name: str) -> None:
    """Our classic SigningKey produces, and VerifyKey accepts, the RFC's exact signatures."""
    secret, public, message, signature = (bytes.fromhex(h) for h in RFC8032[name])
    key = crypto.SigningKey._from_seeds(crypto.Suite.CLASSIC, ed25519_seed=secret)
    assert key.public_key().to_bytes() == public
    assert key.sign(message) == signature
    verify_key = crypto.VerifyKey.from_bytes(crypto.Suite.CLASSIC, public)
    verify_key.verify(signature=signature, message=message)
    with pytest.raises(errors.VerificationError):
        verify_key.verify(signature=signature, message=message + b"\x00")


def _wycheproof(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    document = json.loads((WYCHEPROOF / name).read_text())
    return [(group, test) for group in document["testGroups"] for test in group["tests"]]


def _case_id(case: tuple[dict[str, Any], dict[str, Any]]) -> str:
    return f"tc{case[1]['tcId']}"


@pytest.mark.parametrize("case", _wycheproof("ed25519_test.json"), ids=_case_id)
def test_wycheproof_ed25519_through_verify_key(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Valid signatures verify; every invalid one raises VerificationError, never a crash."""
    group, test = case
    key = crypto.VerifyKey.from_bytes(crypto.Suite.CLASSIC, bytes.fromhex(group["publicKey"]["pk"]))
    signature, message = bytes.fromhex(test["sig"]), bytes.fromhex(test["msg"])
    if test["result"] == "valid":
        key.verify(signature=signature, message=message)
    else:
        with pytest.raises(errors.VerificationError):
            key.verify(signature=signature, message=message)


@pytest.mark.parametrize("case", _wycheproof("x25519_test.json"), ids=_case_id)
def test_wycheproof_x25519(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The X25519 under our classic KEM computes every valid shared secret exactly.

    "acceptable" cases (low-order points and the like) may either compute the listed value or
    be refused; an all-zero shared secret must be refused.
    """
    _, test = case
    private = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(test["private"]))
    try:
        peer = x25519.X25519PublicKey.from_public_bytes(bytes.fromhex(test["public"]))
        shared = private.exchange(peer)
    except ValueError:
        assert test["result"] != "valid"
        return
    assert test["result"] != "invalid"
    assert shared == bytes.fromhex(test["shared"])
    assert shared != bytes(32)


# The HPKE suites only ever use 96-bit nonces with 256-bit keys; other groups are not ours.
CHACHA_CASES = [
    (group, test)
    for group, test in _wycheproof("chacha20_poly1305_test.json")
    if group["ivSize"] == 96 and group["keySize"] == 256
]


@pytest.mark.parametrize("case", CHACHA_CASES, ids=_case_id)
def test_wycheproof_chacha20_poly1305(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The AEAD under our HPKE suites encrypts valid cases exactly and rejects invalid ones."""
    _, test = case
    key, nonce = bytes.fromhex(test["key"]), bytes.fromhex(test["iv"])
    aad, message = bytes.fromhex(test["aad"]), bytes.fromhex(test["msg"])
    sealed = bytes.fromhex(test["ct"]) + bytes.fromhex(test["tag"])
    aead = ChaCha20Poly1305(key)
    if test["result"] == "valid":
        assert aead.encrypt(nonce, message, aad) == sealed
        assert aead.decrypt(nonce, sealed, aad) == message
    else:
        with pytest.raises(InvalidTag):
            aead.decrypt(nonce, sealed, aad)
