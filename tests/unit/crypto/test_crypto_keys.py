"""broker.crypto keys, signatures and HPKE: behaviour per suite, and opaque failures."""

from __future__ import annotations

import pytest

from broker import crypto, errors

SUITES = list(crypto.Suite)
PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(scope="module", params=SUITES, ids=str)
def signing_key(request: pytest.FixtureRequest) -> crypto.SigningKey:
    suite: crypto.Suite = request.param
    return crypto.SigningKey.generate(suite)


@pytest.fixture(scope="module", params=SUITES, ids=str)
def decryption_key(request: pytest.FixtureRequest) -> crypto.DecryptionKey:
    suite: crypto.Suite = request.param
    return crypto.DecryptionKey.generate(suite)


def test_a_signature_verifies_under_its_public_key(signing_key: crypto.SigningKey) -> None:
    """sign() then verify() succeeds (verify raises on failure)."""
    signature = signing_key.sign(b"message")
    signing_key.public_key().verify(signature=signature, message=b"message")


def test_a_signature_over_other_bytes_is_refused(signing_key: crypto.SigningKey) -> None:
    """Changing one byte of the message makes verification raise VerificationError."""
    signature = signing_key.sign(b"message")
    with pytest.raises(errors.VerificationError):
        signing_key.public_key().verify(signature=signature, message=b"messagE")


def test_a_signature_by_another_key_is_refused(signing_key: crypto.SigningKey) -> None:
    """A valid signature by someone else's key does not verify."""
    other = crypto.SigningKey.generate(signing_key.suite)
    with pytest.raises(errors.VerificationError):
        signing_key.public_key().verify(signature=other.sign(b"m"), message=b"m")


@pytest.mark.parametrize(
    ("name", "mangle"),
    [
        ("empty", lambda s: b""),
        ("truncated", lambda s: s[:-1]),
        ("extended", lambda s: s + b"\x00"),
        ("ed25519 half broken", lambda s: bytes([s[0] ^ 1]) + s[1:]),
        ("last byte broken", lambda s: s[:-1] + bytes([s[-1] ^ 0x80])),
    ],
)
def test_malformed_signatures_raise_the_one_opaque_error(
    signing_key: crypto.SigningKey, name: str, mangle: object
) -> None:
    """Every malformed signature gives VerificationError with the same uninformative text."""
    assert callable(mangle)
    signature = mangle(signing_key.sign(b"m"))
    with pytest.raises(errors.VerificationError) as caught:
        signing_key.public_key().verify(signature=signature, message=b"m")
    assert str(caught.value) == "signature does not verify"


def test_hybrid_signatures_need_both_halves() -> None:
    """pq-hybrid: a valid Ed25519 half with a broken ML-DSA half (or the reverse) is refused."""
    key = crypto.SigningKey.generate(crypto.Suite.PQ_HYBRID)
    good = key.sign(b"m")
    other = crypto.SigningKey.generate(crypto.Suite.PQ_HYBRID).sign(b"m")
    for mixed in (good[:64] + other[64:], other[:64] + good[64:]):
        with pytest.raises(errors.VerificationError):
            key.public_key().verify(signature=mixed, message=b"m")


def test_verify_keys_round_trip_through_bytes(signing_key: crypto.SigningKey) -> None:
    """from_bytes(to_bytes()) gives an equal key with the same id."""
    public = signing_key.public_key()
    again = crypto.VerifyKey.from_bytes(public.suite, public.to_bytes())
    assert again == public
    assert again.key_id == public.key_id


def test_key_ids_are_32_hex_of_the_sha256_of_the_key_bytes(signing_key: crypto.SigningKey) -> None:
    """The key id is a function of the public bytes only, as the contract defines it."""
    public = signing_key.public_key()
    assert public.key_id == crypto.sha256(public.to_bytes()).hex()[:32]


@pytest.mark.parametrize("suite", SUITES, ids=str)
@pytest.mark.parametrize("data", [b"", b"\x00" * 31, b"\x00" * 33, b"\xff" * 2000])
def test_bad_public_key_bytes_are_a_key_trust_error(suite: crypto.Suite, data: bytes) -> None:
    """Wrong lengths are refused for both kinds of public key."""
    with pytest.raises(errors.KeyTrustError):
        crypto.VerifyKey.from_bytes(suite, data)
    with pytest.raises(errors.KeyTrustError):
        crypto.EncryptionKey.from_bytes(suite, data)


def test_signing_keys_round_trip_through_encrypted_pem(signing_key: crypto.SigningKey) -> None:
    """to_pem/from_pem keeps the key; the PEM is encrypted, one block per algorithm."""
    pem = signing_key.to_pem(passphrase=PASSPHRASE)
    blocks = 2 if signing_key.suite is crypto.Suite.PQ_HYBRID else 1
    assert pem.count(b"BEGIN ENCRYPTED PRIVATE KEY") == blocks
    loaded = crypto.SigningKey.from_pem(pem, passphrase=PASSPHRASE)
    assert loaded.suite is signing_key.suite
    assert loaded.public_key() == signing_key.public_key()


def test_decryption_keys_round_trip_through_encrypted_pem(
    decryption_key: crypto.DecryptionKey,
) -> None:
    """A reloaded decryption key opens what was sealed to the original's public key."""
    pem = decryption_key.to_pem(passphrase=PASSPHRASE)
    loaded = crypto.DecryptionKey.from_pem(pem, passphrase=PASSPHRASE)
    sealed = crypto.hpke_seal(decryption_key.public_key(), b"secret", info=b"ctx")
    assert crypto.hpke_open(loaded, sealed, info=b"ctx") == b"secret"


@pytest.mark.parametrize(
    ("name", "data", "passphrase"),
    [
        ("wrong passphrase", None, b"wrong passphrase"),
        ("garbage", b"not a key at all", PASSPHRASE),
        ("empty", b"", PASSPHRASE),
        ("cut in the first block", "third", PASSPHRASE),
        ("cut in the last block", "tail", PASSPHRASE),
    ],
)
def test_unreadable_private_keys_are_a_key_trust_error(
    signing_key: crypto.SigningKey, name: str, data: object, passphrase: bytes
) -> None:
    """Bad passphrases and corrupt files raise KeyTrustError, never a library exception."""
    pem = signing_key.to_pem(passphrase=PASSPHRASE)
    if data is None:
        data = pem
    elif data == "third":
        data = pem[: len(pem) // 3]
    elif data == "tail":
        # for a hybrid key the first block stays whole: it must not load as a classic key
        data = pem[:-40]
    assert isinstance(data, bytes)
    with pytest.raises(errors.KeyTrustError):
        crypto.SigningKey.from_pem(data, passphrase=passphrase)
    with pytest.raises(errors.KeyTrustError):
        crypto.DecryptionKey.from_pem(data, passphrase=passphrase)


def test_a_signing_pem_is_not_a_decryption_key() -> None:
    """Loading a key of the wrong kind is refused with KeyTrustError."""
    pem = crypto.SigningKey.generate(crypto.Suite.CLASSIC).to_pem(passphrase=PASSPHRASE)
    with pytest.raises(errors.KeyTrustError):
        crypto.DecryptionKey.from_pem(pem, passphrase=PASSPHRASE)


def test_private_key_reprs_show_no_key_material(signing_key: crypto.SigningKey) -> None:
    """repr() names the suite and key id only."""
    assert (
        repr(signing_key)
        == f"SigningKey({signing_key.suite}, key_id={signing_key.public_key().key_id})"
    )


def test_hpke_round_trip(decryption_key: crypto.DecryptionKey) -> None:
    """hpke_open inverts hpke_seal under the same info; each seal is fresh."""
    public = decryption_key.public_key()
    first = crypto.hpke_seal(public, b"plaintext", info=b"info")
    second = crypto.hpke_seal(public, b"plaintext", info=b"info")
    assert first != second
    assert crypto.hpke_open(decryption_key, first, info=b"info") == b"plaintext"


@pytest.mark.parametrize(
    ("name", "mangle", "info"),
    [
        ("other info", lambda c: c, b"other"),
        ("flipped last byte", lambda c: c[:-1] + bytes([c[-1] ^ 1]), b"info"),
        ("flipped first byte", lambda c: bytes([c[0] ^ 1]) + c[1:], b"info"),
        ("truncated", lambda c: c[:-1], b"info"),
        ("empty", lambda c: b"", b"info"),
        ("short", lambda c: c[:10], b"info"),
    ],
)
def test_hpke_failures_are_one_opaque_decryption_error(
    decryption_key: crypto.DecryptionKey, name: str, mangle: object, info: bytes
) -> None:
    """Wrong context, tampering and truncation all raise DecryptionError('cannot decrypt')."""
    assert callable(mangle)
    sealed = mangle(crypto.hpke_seal(decryption_key.public_key(), b"plaintext", info=b"info"))
    with pytest.raises(errors.DecryptionError) as caught:
        crypto.hpke_open(decryption_key, sealed, info=info)
    assert str(caught.value) == "cannot decrypt"


def test_hpke_to_another_key_does_not_open(decryption_key: crypto.DecryptionKey) -> None:
    """Only the recipient's private key opens the seal."""
    other = crypto.DecryptionKey.generate(decryption_key.suite)
    sealed = crypto.hpke_seal(other.public_key(), b"plaintext", info=b"info")
    with pytest.raises(errors.DecryptionError):
        crypto.hpke_open(decryption_key, sealed, info=b"info")


def test_primitives() -> None:
    """sha256 and hmac_sha256 match FIPS 180 / RFC 4231 test case 2; comparison and randomness."""
    assert crypto.sha256(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert crypto.hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert crypto.constant_time_equal(b"abc", b"abc")
    assert not crypto.constant_time_equal(b"abc", b"abd")
    assert len(crypto.random_bytes(32)) == 32
    assert crypto.random_bytes(16) != crypto.random_bytes(16)


def test_public_surface_is_pinned() -> None:
    """The contract's names plus the store's symmetric sealing, the dating of TLS
    certificates (read, never trusted, for expiry warnings) and batch signatures with their
    memo of verified signatures, and nothing else."""
    assert sorted(crypto.__all__) == sorted(
        [
            "AEAD_KEY_BYTES",
            "MAX_BATCH",
            "MAX_PATH",
            "AeadSealer",
            "BatchProof",
            "CertificateValidity",
            "certificate_validity",
            "aead_open",
            "aead_seal",
            "DecryptionKey",
            "EncryptionKey",
            "SigningKey",
            "Suite",
            "VerifiedSignatures",
            "VerifyKey",
            "constant_time_equal",
            "hmac_sha256",
            "hpke_open",
            "hpke_seal",
            "random_bytes",
            "sha256",
            "sign_batch",
            "verify_member",
        ]
    )
