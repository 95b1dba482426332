"""Editing a registry document: the ceremony behind ``broker registry ...``.

A :class:`RegistryDraft` is a registry document not yet trusted by anyone. Edits change
``signed``; the first edit after any signature bumps the version once and clears the
signatures (they covered other bytes), so one edit session yields one new version. Root key
holders then sign in turn, each adding one signature over the canonical ``signed`` bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from broker import crypto, errors
from broker.ids import KeyId, PartnerCode
from broker.keys._canonical import canonical_json, format_timestamp, parse_model, signing_input
from broker.keys._wire import RegistryDocumentModel, SignatureModel
from broker.keys.cards import KeyCard, PartnerCard
from broker.keys.registry import _VERIFIED, PartnerUnit, Registry
from broker.keys.verify import valid_signers

__all__ = ["RegistryDraft"]

_ROLES = ("signing_keys", "encryption_keys", "policy_keys")


class RegistryDraft:
    """A registry document being edited and signed; it proves nothing until verified."""

    def __init__(self, signed: dict[str, Any], signatures: tuple[SignatureModel, ...]) -> None:
        self._signed_bytes = canonical_json(signed)
        # Building the registry checks what signatures cannot: shapes, key ids, duplicates.
        self._registry = Registry(self._signed_bytes, _token=_VERIFIED)
        self._signed = json.loads(self._signed_bytes)
        self._signatures = signatures

    @classmethod
    def new(
        cls, *, roots: Sequence[KeyCard], threshold: int, expires: dt.datetime
    ) -> RegistryDraft:
        """Version 1 with the given root keys and threshold, no partners, no signatures."""
        if any(card.kind != "root" for card in roots):
            raise errors.UsageError("only root key cards can be registry roots")
        if not 1 <= threshold <= len(roots):
            raise errors.UsageError(
                f"threshold must be from 1 to the number of roots ({len(roots)}), got {threshold}"
            )
        signed = {
            "type": "partner-registry",
            "spec_version": 1,
            "version": 1,
            "expires": _timestamp(expires),
            "roots": {"threshold": threshold, "keys": [c.registry_entry() for c in roots]},
            "partners": [],
            "gateways": [],
            "witnesses": [],
        }
        return cls(signed, ())

    @classmethod
    def from_bytes(cls, data: bytes) -> RegistryDraft:
        """Parse a registry document strictly without checking its signatures."""
        document, raw = parse_model(RegistryDocumentModel, data, what="registry document")
        return cls(raw["signed"], document.signatures)

    def to_bytes(self) -> bytes:
        """The document as readable JSON; verifiers re-encode ``signed`` canonically."""
        document = {
            "signed": self._signed,
            "signatures": [s.model_dump() for s in self._signatures],
        }
        return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()

    @property
    def version(self) -> int:
        return self._registry.version

    @property
    def unverified_registry(self) -> Registry:
        """The content as a Registry for display and checks; NOT verified, never trust it."""
        return self._registry

    def signers(self) -> frozenset[str]:
        """Distinct keys among this document's roots whose signatures verify."""
        return valid_signers(
            self._registry.roots, self._signatures, signing_input(self._signed_bytes)
        )

    # -- edits ---------------------------------------------------------------------------------

    def add_partner(self, card: PartnerCard) -> str:
        """Add the partner, or merge a rotated card's keys into it; returns ``added``/``updated``.

        A card may hold keys of another suite than the partner's (``keys rotate --suite``):
        each key keeps its own. Keys already listed keep their revocation (a card cannot
        un-revoke); their windows take the card's values; keys missing from the card stay
        listed for auditors.
        """
        signed = json.loads(self._signed_bytes)
        entries = card.entries()
        existing = next((p for p in signed["partners"] if p["code"] == card.code), None)
        scheme = (
            {} if card.evaluation_scheme is None else {"evaluation_scheme": card.evaluation_scheme}
        )
        if existing is None:
            signed["partners"].append(
                {
                    "code": card.code,
                    "name": card.name,
                    "suite": card.suite.value,
                    **scheme,
                    **entries,
                }
            )
            signed["partners"].sort(key=lambda p: p["code"])
            self._edit(signed)
            return "added"
        existing["name"] = card.name
        existing.update(scheme)  # a card without one keeps the scheme listed
        for role in _ROLES:
            listed = {e["key_id"]: e for e in existing[role]}
            for entry in entries[role]:
                # The registry names a key's suite only where it differs from the partner's:
                # a card of another suite (a partner adding pq-hybrid keys) keeps each key's.
                own = entry.pop("suite", card.suite.value)
                if own != existing["suite"]:
                    entry["suite"] = own
                old = listed.get(entry["key_id"])
                if old is None:
                    existing[role].append(entry)
                else:
                    old["not_before"], old["not_after"] = entry["not_before"], entry["not_after"]
        self._edit(signed)
        return "updated"

    def add_service_key(self, card: KeyCard) -> None:
        """Register a gateway or witness key."""
        if card.kind == "root":
            raise errors.UsageError("root keys are set with set_roots, not added as service keys")
        signed = json.loads(self._signed_bytes)
        signed["gateways" if card.kind == "gateway" else "witnesses"].append(card.registry_entry())
        self._edit(signed)

    def set_roots(self, roots: Sequence[KeyCard], *, threshold: int) -> None:
        """Replace the root keys (a root rotation: the old roots must also sign this version)."""
        replacement = RegistryDraft.new(
            roots=roots, threshold=threshold, expires=self._registry.expires
        )
        signed = json.loads(self._signed_bytes)
        signed["roots"] = replacement._signed["roots"]
        self._edit(signed)

    def set_expires(self, expires: dt.datetime) -> None:
        """Move the expiry (re-signing before expiry keeps a registry alive)."""
        signed = json.loads(self._signed_bytes)
        signed["expires"] = _timestamp(expires)
        self._edit(signed)

    def set_units(self, partner: PartnerCode, units: Sequence[PartnerUnit] | None) -> None:
        """Declare ``partner``'s units (agency and unit each), replacing those listed; None
        removes the list, so nothing checks that partner's units any more."""
        signed = json.loads(self._signed_bytes)
        owner = next((p for p in signed["partners"] if p["code"] == partner), None)
        if owner is None:
            raise errors.UsageError(f"partner {partner} is not in the registry")
        if units is None:
            owner.pop("units", None)
        else:
            if not units:
                raise errors.UsageError("name one unit at least, or remove the list")
            owner["units"] = [{"agency": u.agency, "unit": u.unit} for u in units]
        self._edit(signed)

    def revoke(
        self, *, partner: PartnerCode | None, key_id: KeyId, at: dt.datetime, reason: str
    ) -> None:
        """Mark a key revoked from ``at``; lookups at or after ``at`` then fail.

        ``partner=None`` revokes a gateway or witness key. A key already revoked earlier keeps
        its earlier time; revoking again with a later time is refused.
        """
        signed = json.loads(self._signed_bytes)
        if partner is None:
            pools = [signed["gateways"], signed["witnesses"]]
        else:
            owner = next((p for p in signed["partners"] if p["code"] == partner), None)
            if owner is None:
                raise errors.UsageError(f"partner {partner} is not in the registry")
            pools = [owner[role] for role in _ROLES]
        entry = next((e for pool in pools for e in pool if e["key_id"] == key_id), None)
        if entry is None:
            whose = f"partner {partner}" if partner else "the gateways or witnesses"
            raise errors.UsageError(f"key {key_id} is not one of {whose}")
        when = _timestamp(at)
        if entry.get("revoked_at") is not None and entry["revoked_at"] <= when:
            raise errors.UsageError(f"key {key_id} is already revoked at {entry['revoked_at']}")
        entry["revoked_at"], entry["reason"] = when, reason
        self._edit(signed)

    def sign(self, key: crypto.SigningKey) -> bool:
        """Add ``key``'s signature over the current ``signed`` bytes (replacing its older one).

        Any key may sign (the outgoing roots sign a root rotation), but only roots count; returns
        whether ``key`` is one of this document's roots.
        """
        public = key.public_key()
        signature = SignatureModel(
            key_id=public.key_id,
            sig=base64.b64encode(key.sign(signing_input(self._signed_bytes))).decode("ascii"),
        )
        others = tuple(s for s in self._signatures if s.key_id != public.key_id)
        self._signatures = (*others, signature)
        return any(root.key_id == public.key_id for root in self._registry.roots)

    def _edit(self, signed: dict[str, Any]) -> None:
        if canonical_json(signed) == self._signed_bytes:
            return
        if self._signatures:
            signed["version"] = self._registry.version + 1
        edited = RegistryDraft(signed, ())
        self._signed_bytes, self._registry = edited._signed_bytes, edited._registry
        self._signed, self._signatures = edited._signed, ()


def _timestamp(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise errors.UsageError("registry times must be timezone-aware")
    return format_timestamp(at.astimezone(dt.UTC).replace(microsecond=0))
