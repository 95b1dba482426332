"""Registry verification: thresholds over distinct keys, rollback, freeze, mix-and-match, rotation.

Every refused update is an error; the registry held is only ever replaced by what verified.
"""

from __future__ import annotations

import base64
import json

import pytest

from broker import crypto, errors, keys
from broker.keys.testing import RegistryFixture

from .keys_support import NOW, SECOND, signatures_of, with_signatures, with_signed_field


def _signature(key: crypto.SigningKey, data: bytes) -> dict[str, str]:
    signed = keys.canonical_json(json.loads(data)["signed"])
    sig = key.sign(keys.signing_input(signed))
    return {"key_id": key.public_key().key_id, "sig": base64.b64encode(sig).decode()}


def _resigned(reg: RegistryFixture, data: bytes, signers: list[crypto.SigningKey]) -> bytes:
    return with_signatures(data, [_signature(key, data) for key in signers])


def _version_2(reg: RegistryFixture) -> keys.RegistryDraft:
    draft = reg.edit()
    draft.set_expires(NOW + 60 * 86400 * SECOND)
    assert draft.version == 2
    return draft


# -- thresholds --------------------------------------------------------------------------------

THRESHOLD_CASES = {
    "two distinct roots meet 2-of-3": ([0, 1], True),
    "all three roots": ([0, 1, 2], True),
    "one root signing twice counts once": ([0, 0], False),
    "a repeated signature plus another root": ([0, 0, 1], True),
    "one root plus a non-root key": ([0, "partner"], False),
    "one root plus a forged signature claiming a second root": ([0, "forged"], False),
    "no signatures at all": ([], False),
}


@pytest.mark.parametrize(("signers", "ok"), THRESHOLD_CASES.values(), ids=THRESHOLD_CASES.keys())
def test_threshold_counts_distinct_valid_root_signatures(
    reg: RegistryFixture, signers: list[int | str], ok: bool
) -> None:
    """Only distinct root key ids with a valid signature over the exact bytes count."""
    signatures = []
    for who in signers:
        if who == "partner":
            signatures.append(_signature(next(iter(reg.partners.values())).signing, reg.data))
        elif who == "forged":
            forged = _signature(reg.roots[2], reg.data)
            forged["sig"] = base64.b64encode(bytes(64)).decode()
            signatures.append(forged)
        else:
            assert isinstance(who, int)
            signatures.append(_signature(reg.roots[who], reg.data))
    data = with_signatures(reg.data, signatures)
    if ok:
        assert keys.verify_registry(data, trusted=None, now=NOW).version == 1
    else:
        with pytest.raises(errors.RegistryError, match="required distinct keys"):
            keys.verify_registry(data, trusted=None, now=NOW)


@pytest.mark.parametrize("threshold", [0, -1, 4])
def test_threshold_must_be_between_one_and_the_number_of_roots(
    reg: RegistryFixture, threshold: int
) -> None:
    """A threshold of zero (or one no set of roots can meet) is refused even when all roots sign."""
    document = json.loads(reg.data)
    document["signed"]["roots"]["threshold"] = threshold
    data = _resigned(reg, json.dumps(document).encode(), list(reg.roots))
    with pytest.raises(errors.RegistryError, match="threshold"):
        keys.verify_registry(data, trusted=None, now=NOW)


# -- rollback, freeze, mix-and-match ----------------------------------------------------------


def test_rollback_to_a_lower_version_is_refused(reg: RegistryFixture) -> None:
    """Once version 2 is trusted, the validly signed version 1 is refused."""
    _, newer = reg.resign(_version_2(reg), now=NOW)
    trusted = keys.verify_registry(newer, trusted=reg.registry, now=NOW)
    with pytest.raises(errors.RegistryError, match=r"rollback refused: .*version 1 .* version 2"):
        keys.verify_registry(reg.data, trusted=trusted, now=NOW)


def test_equal_version_with_different_content_is_refused(reg: RegistryFixture) -> None:
    """Same version number, different signed bytes: refused even with a full set of signatures."""
    changed = with_signed_field(reg.data, "expires", "2027-02-01T00:00:00Z")
    data = _resigned(reg, changed, list(reg.roots))
    assert keys.verify_registry(data, trusted=None, now=NOW).version == 1  # valid on its own
    with pytest.raises(errors.RegistryError, match="differs from the trusted registry"):
        keys.verify_registry(data, trusted=reg.registry, now=NOW)


def test_equal_version_with_identical_content_is_accepted(reg: RegistryFixture) -> None:
    """Re-reading the registry already trusted is not an error."""
    again = keys.verify_registry(reg.data, trusted=reg.registry, now=NOW)
    assert again.digest == reg.registry.digest


@pytest.mark.parametrize(
    ("offset", "ok"), [(-SECOND, True), (0 * SECOND, False), (SECOND, False)], ids=str
)
def test_registry_is_refused_from_its_expiry_on(
    reg: RegistryFixture, offset: object, ok: bool
) -> None:
    """``expires <= now`` is a frozen registry: refused at and after the instant, fine before."""
    now = reg.registry.expires + offset  # type: ignore[operator]
    if ok:
        keys.verify_registry(reg.data, trusted=None, now=now)
    else:
        with pytest.raises(errors.RegistryError, match=r"expired at .*frozen"):
            keys.verify_registry(reg.data, trusted=None, now=now)


def test_signatures_transplanted_from_another_version_do_not_count(reg: RegistryFixture) -> None:
    """Version 1's signatures on version 2's bytes (and the reverse) verify nothing."""
    _, newer = reg.resign(_version_2(reg), now=NOW)
    transplanted = with_signatures(newer, signatures_of(reg.data))
    with pytest.raises(errors.RegistryError, match="0 of the 2 required"):
        keys.verify_registry(transplanted, trusted=reg.registry, now=NOW)
    reverse = with_signatures(reg.data, signatures_of(newer))
    with pytest.raises(errors.RegistryError, match="0 of the 2 required"):
        keys.verify_registry(reverse, trusted=None, now=NOW)


def test_any_change_to_signed_content_breaks_the_signatures(reg: RegistryFixture) -> None:
    """Raising the version without re-signing (a fast-forward attempt) is refused."""
    tampered = with_signed_field(reg.data, "version", 99)
    with pytest.raises(errors.RegistryError, match="0 of the 2 required"):
        keys.verify_registry(tampered, trusted=None, now=NOW)


def test_whitespace_and_key_order_do_not_change_what_is_signed(reg: RegistryFixture) -> None:
    """Signatures cover the canonical form, so a re-indented document still verifies."""
    reformatted = json.dumps(json.loads(reg.data), indent=7, sort_keys=False).encode()
    assert keys.verify_registry(reformatted, trusted=None, now=NOW).digest == reg.registry.digest


# -- root rotation ---------------------------------------------------------------------------

ROTATION_CASES = {
    "2 old and 2 new roots sign: accepted": ([0, 1], [0, 1], True),
    "only the new roots sign: refused": ([], [0, 1, 2], False),
    "only the old roots sign: refused": ([0, 1, 2], [], False),
    "1 old and all new: old threshold not met": ([2], [0, 1, 2], False),
    "all old and 1 new: new threshold not met": ([0, 1, 2], [1], False),
}


@pytest.mark.parametrize(("old", "new", "ok"), ROTATION_CASES.values(), ids=ROTATION_CASES.keys())
def test_root_rotation_needs_the_old_and_the_new_threshold(
    reg: RegistryFixture, old: list[int], new: list[int], ok: bool
) -> None:
    """A root change is signed by a threshold of the trusted roots AND of the incoming roots."""
    cards, new_roots = zip(
        *(
            keys.generate_service_key("root", name=f"new-{i}", suite=crypto.Suite.CLASSIC)
            for i in range(3)
        ),
        strict=True,
    )
    draft = reg.edit()
    draft.set_roots(cards, threshold=2)
    for index in old:
        draft.sign(reg.roots[index])
    for index in new:
        draft.sign(new_roots[index])
    if ok:
        updated = keys.verify_registry(draft.to_bytes(), trusted=reg.registry, now=NOW)
        assert {root.key_id for root in updated.roots} == {c.key_id for c in cards}
    else:
        with pytest.raises(errors.RegistryError, match="required distinct keys"):
            keys.verify_registry(draft.to_bytes(), trusted=reg.registry, now=NOW)


def test_a_rotated_root_set_then_governs_the_next_version(reg: RegistryFixture) -> None:
    """After rotation the old roots alone can no longer publish a new version."""
    cards, new_roots = zip(
        *(
            keys.generate_service_key("root", name=f"new-{i}", suite=crypto.Suite.CLASSIC)
            for i in range(2)
        ),
        strict=True,
    )
    draft = reg.edit()
    draft.set_roots(cards, threshold=2)
    for key in (*reg.roots, *new_roots):
        draft.sign(key)
    trusted = keys.verify_registry(draft.to_bytes(), trusted=reg.registry, now=NOW)
    follow_up = keys.RegistryDraft.from_bytes(draft.to_bytes())
    follow_up.set_expires(NOW + 90 * 86400 * SECOND)
    for key in reg.roots:
        follow_up.sign(key)
    with pytest.raises(errors.RegistryError, match="0 of the 2 required"):
        keys.verify_registry(follow_up.to_bytes(), trusted=trusted, now=NOW)
    assert trusted.version == 2


# -- malformed documents ------------------------------------------------------------------------

MALFORMED = {
    "not JSON": (b"{not json", "not valid JSON"),
    "not UTF-8": (b'{"signed": "\xff"}', "not UTF-8"),
    "duplicate key": (b'{"signed": {}, "signed": {}, "signatures": []}', "duplicate key"),
    "a float": (b'{"signed": {"version": 1.0}, "signatures": []}', "non-integer number"),
    "NaN": (b'{"signed": {"version": NaN}, "signatures": []}', "non-integer number"),
    "missing signatures": (b'{"signed": {}}', "signatures"),
    "extra top-level field": (b'{"signed": {}, "signatures": [], "x": 1}', "x"),
    "too deep": (b'{"signed": ' + b"[" * 40 + b"]" * 40 + b', "signatures": []}', "nests deeper"),
    "lone surrogate": (b'{"signed": {"a": "\\ud800"}, "signatures": []}', "not valid Unicode"),
    "oversized": (b" " * (4 * 1024 * 1024 + 1), "over the"),
}


@pytest.mark.parametrize(("data", "reason"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_documents_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    """Bad bytes become a RegistryError naming the problem, never a crash."""
    with pytest.raises(errors.RegistryError, match=reason):
        keys.verify_registry(data, trusted=None, now=NOW)


SIGNED_DEFECTS = {
    "unknown field in signed": ("colour", "blue", "colour"),
    "wrong type": ("type", "accord", "type"),
    "naive timestamp": ("expires", "2027-01-01T00:00:00", "expires"),
    "version zero": ("version", 0, "version"),
}


@pytest.mark.parametrize(
    ("field", "value", "reason"), SIGNED_DEFECTS.values(), ids=SIGNED_DEFECTS.keys()
)
def test_defects_in_signed_content_are_refused_even_when_signed(
    reg: RegistryFixture, field: str, value: object, reason: str
) -> None:
    """Shape checks apply to the signed bytes whatever the roots signed."""
    data = _resigned(reg, with_signed_field(reg.data, field, value), list(reg.roots))
    with pytest.raises(errors.RegistryError, match=reason):
        keys.verify_registry(data, trusted=None, now=NOW)


def test_a_key_id_that_does_not_match_its_key_is_refused(reg: RegistryFixture) -> None:
    """Key ids are derived from the key bytes; a listed id naming another key is refused."""
    document = json.loads(reg.data)
    entry = document["signed"]["partners"][0]["signing_keys"][0]
    entry["key_id"] = "0" * 32
    data = _resigned(reg, json.dumps(document).encode(), list(reg.roots))
    with pytest.raises(errors.RegistryError, match="does not match its public key"):
        keys.verify_registry(data, trusted=None, now=NOW)


def test_one_key_listed_twice_is_refused(reg: RegistryFixture) -> None:
    """The same key may not appear under two roles or two partners."""
    document = json.loads(reg.data)
    partners = document["signed"]["partners"]
    partners[1]["signing_keys"].append(partners[0]["signing_keys"][0])
    data = _resigned(reg, json.dumps(document).encode(), list(reg.roots))
    with pytest.raises(errors.RegistryError, match="more than once"):
        keys.verify_registry(data, trusted=None, now=NOW)


def test_a_stored_trusted_copy_reloads_even_after_it_expired(reg: RegistryFixture) -> None:
    """The held registry is reloaded without an expiry check; updates are checked against it."""
    held = keys.load_trusted_registry(reg.data)
    assert held.digest == reg.registry.digest
    with pytest.raises(errors.RegistryError, match="required distinct keys"):
        keys.load_trusted_registry(with_signatures(reg.data, []))
