"""Verifying a registry document: thresholds, rollback, freeze, root rotation.

The order of checks follows TUF's root update and every check uses the one ``now`` given:

1. the document parses strictly; ``signed`` is re-encoded canonically and those bytes, and only
   those, are what signatures are checked against and what the :class:`Registry` is built from;
2. if a trusted registry is held, a threshold of its root keys signed these bytes (so roots can
   only be replaced by the roots already trusted);
3. a threshold of the document's own root keys signed these bytes (so new roots consent);
4. the version is not lower than the trusted one, and an equal version has identical content;
5. the registry has not expired (``expires <= now`` is refused).

Thresholds count distinct root key ids with a valid signature; repeated signatures by one key
count once, signatures by keys that are not roots are ignored.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from broker import errors
from broker.keys._canonical import canonical_json, format_timestamp, parse_model, signing_input
from broker.keys._wire import RegistryDocumentModel, SignatureModel
from broker.keys.registry import _VERIFIED, Registry, RootKey

__all__ = ["load_trusted_registry", "verify_registry"]


def verify_registry(data: bytes, *, trusted: Registry | None, now: dt.datetime) -> Registry:
    """Verify a registry document's bytes and return the registry it proves.

    ``trusted`` is the registry held so far (``None`` only when bootstrapping from a copy the
    operator has checked out of band). Raises :class:`errors.RegistryError` with the reason.
    """
    if now.tzinfo is None:
        raise errors.UsageError("now must be timezone-aware")
    signed_bytes, signatures = _split(data)
    candidate = Registry(signed_bytes, _token=_VERIFIED)
    message = signing_input(signed_bytes)
    if trusted is not None:
        _require_threshold(
            trusted.roots, trusted.root_threshold, signatures, message, whose="trusted (old) roots"
        )
    _require_threshold(
        candidate.roots, candidate.root_threshold, signatures, message, whose="its own roots"
    )
    if trusted is not None:
        if candidate.version < trusted.version:
            raise errors.RegistryError(
                f"rollback refused: registry version {candidate.version} is older than the "
                f"trusted version {trusted.version}"
            )
        if candidate.version == trusted.version and signed_bytes != trusted.signed_bytes:
            raise errors.RegistryError(
                f"registry version {candidate.version} differs from the trusted registry of the "
                "same version; a changed registry must carry a higher version"
            )
    if candidate.expires <= now:
        raise errors.RegistryError(
            f"registry version {candidate.version} expired at "
            f"{format_timestamp(candidate.expires)}; refusing a frozen registry"
        )
    return candidate


def load_trusted_registry(data: bytes) -> Registry:
    """Reload a registry this process verified and stored earlier, to verify updates against.

    Its own root threshold is checked again (the file may have been altered at rest) but not
    its expiry: an expired trusted registry is exactly what an update replaces. Never use
    the result for lookups; pass it as ``trusted`` to :func:`verify_registry`.
    """
    signed_bytes, signatures = _split(data)
    held = Registry(signed_bytes, _token=_VERIFIED)
    _require_threshold(
        held.roots,
        held.root_threshold,
        signatures,
        signing_input(signed_bytes),
        whose="its own roots",
    )
    return held


def valid_signers(
    roots: tuple[RootKey, ...], signatures: tuple[SignatureModel, ...], message: bytes
) -> frozenset[str]:
    """The distinct root key ids among ``roots`` with a valid signature over ``message``."""
    by_id: dict[str, RootKey] = {root.key_id: root for root in roots}
    valid: set[str] = set()
    for signature in signatures:
        root = by_id.get(signature.key_id)
        if root is None or root.key_id in valid:
            continue  # not a root, or a repeat: a key counts once however often it signs
        try:
            raw = base64.b64decode(signature.sig, validate=True)
            root.verify_key.verify(signature=raw, message=message)
        except (binascii.Error, errors.VerificationError):
            continue
        valid.add(root.key_id)
    return frozenset(valid)


def _split(data: bytes) -> tuple[bytes, tuple[SignatureModel, ...]]:
    document, raw = parse_model(RegistryDocumentModel, data, what="registry document")
    for signature in document.signatures:
        try:
            base64.b64decode(signature.sig, validate=True)
        except binascii.Error as exc:
            raise errors.RegistryError(f"signature by {signature.key_id} is not base64") from exc
    # The signed bytes come from the vetted JSON value itself, not from a re-serialised model.
    return canonical_json(raw["signed"]), document.signatures


def _require_threshold(
    roots: tuple[RootKey, ...],
    threshold: int,
    signatures: tuple[SignatureModel, ...],
    message: bytes,
    *,
    whose: str,
) -> None:
    if threshold < 1:  # the model refuses this too; a threshold of 0 must never pass silently
        raise errors.RegistryError("root threshold must be at least 1")
    valid = valid_signers(roots, signatures, message)
    if len(valid) < threshold:
        signed_by = ", ".join(sorted(valid)) or "none"
        raise errors.RegistryError(
            f"registry is signed by {len(valid)} of the {threshold} required distinct keys of "
            f"{whose} (valid signatures from: {signed_by})"
        )
