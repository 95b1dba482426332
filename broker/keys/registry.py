"""The verified partner registry and its key lookups.

A :class:`Registry` is only ever built from ``signed`` bytes whose signatures were checked
(:func:`broker.keys.verify_registry`); constructing it also checks everything a signature
cannot: each key id matches its key, ids are unique, the root threshold is reachable.

Time semantics of every lookup: a key is usable at ``at`` when
``not_before <= at < not_after`` and, if it was revoked, ``at < revoked_at``. Live daemons
pass ``at=now`` for anything they are about to seal, sign or accept; auditors checking an old
envelope may pass the time it was sealed, so a key revoked later still verifies what it
signed before its revocation.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Generic, Literal, TypeVar

from pydantic import ValidationError

from broker import crypto, errors
from broker.ids import KeyId, PartnerCode
from broker.keys._canonical import describe_validation, format_timestamp
from broker.keys._wire import KeyEntryModel, ServiceKeyModel, SignedModel
from broker.schema import EvaluationScheme

__all__ = ["KeyRecord", "KeyRole", "PartnerUnit", "Registry", "RootKey"]

KeyRole = Literal["signing", "encryption", "policy", "gateway", "witness"]
_K = TypeVar("_K", crypto.VerifyKey, crypto.EncryptionKey)
# Only verify_registry() holds this token, so only verified bytes become a Registry.
_VERIFIED = object()


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    """One public key as the registry lists it, for display and audit (no key material)."""

    role: KeyRole
    owner: str
    key_id: KeyId
    suite: crypto.Suite
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    reason: str | None

    def status_at(self, at: dt.datetime) -> str:
        """``valid``, ``not yet valid``, ``expired`` or ``revoked`` at ``at``."""
        if self.revoked_at is not None and at >= self.revoked_at:
            return "revoked"
        if at < self.not_before:
            return "not yet valid"
        if at >= self.not_after:
            return "expired"
        return "valid"


@dataclasses.dataclass(frozen=True, order=True)
class PartnerUnit:
    """A unit a partner declares in the registry, with its agency (docs/OFFICERS.md)."""

    agency: str
    unit: str

    def __str__(self) -> str:
        # quoted: a name may hold commas and brackets, and a list of units must read as one
        return f"{self.unit!r} of {self.agency!r}"


@dataclasses.dataclass(frozen=True)
class RootKey:
    """A registry root key and its public half."""

    key_id: KeyId
    name: str
    verify_key: crypto.VerifyKey = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class _Usable(Generic[_K]):
    record: KeyRecord
    key: _K


class Registry:
    """The verified partner registry: partners, their keys, gateways and witnesses."""

    def __init__(self, signed_bytes: bytes, *, _token: object = None) -> None:
        if _token is not _VERIFIED:
            raise errors.RegistryError("a Registry is only built by verify_registry()")
        try:
            model = SignedModel.model_validate_json(signed_bytes)
        except ValidationError as exc:
            raise errors.RegistryError(
                f"registry is malformed: {describe_validation(exc)}"
            ) from exc
        self._signed_bytes = signed_bytes
        self._model = model
        self._suites: dict[PartnerCode, crypto.Suite] = {}
        self._names: dict[PartnerCode, str] = {}
        self._signing: dict[PartnerCode, dict[KeyId, _Usable[crypto.VerifyKey]]] = {}
        self._encryption: dict[PartnerCode, dict[KeyId, _Usable[crypto.EncryptionKey]]] = {}
        self._policy: dict[PartnerCode, dict[KeyId, _Usable[crypto.VerifyKey]]] = {}
        self._seen_ids: set[str] = set()
        self._roots = tuple(
            RootKey(
                key_id=KeyId(root.key_id),
                name=root.name,
                verify_key=self._verify_key(crypto.Suite(root.suite), root.public_key, root.key_id),
            )
            for root in model.roots.keys
        )
        if model.roots.threshold > len(self._roots):
            raise errors.RegistryError(
                f"root threshold {model.roots.threshold} exceeds the {len(self._roots)} root keys"
            )
        for partner in model.partners:
            code = PartnerCode(partner.code)
            if code in self._suites:
                raise errors.RegistryError(f"partner {code} is listed twice")
            suite = crypto.Suite(partner.suite)
            self._suites[code], self._names[code] = suite, partner.name
            self._signing[code] = self._verify_keys("signing", code, suite, partner.signing_keys)
            self._policy[code] = self._verify_keys("policy", code, suite, partner.policy_keys)
            self._encryption[code] = {}
            for e in partner.encryption_keys:
                own = crypto.Suite(e.suite_within(partner.suite))
                self._encryption[code][KeyId(e.key_id)] = _Usable(
                    _record("encryption", code, own, e),
                    self._encryption_key(own, e.public_key, e.key_id),
                )
        self._gateways = self._service_keys("gateway", model.gateways)
        self._witnesses = self._service_keys("witness", model.witnesses)

    # -- what the document says about itself --------------------------------------------------

    @property
    def version(self) -> int:
        """The registry version; verifiers refuse to go back to a lower one."""
        return self._model.version

    @property
    def expires(self) -> dt.datetime:
        """After this instant (inclusive) the registry is refused as frozen."""
        return self._model.expires

    @property
    def partners(self) -> frozenset[PartnerCode]:
        """The codes of every listed partner."""
        return frozenset(self._suites)

    @property
    def roots(self) -> tuple[RootKey, ...]:
        """The root keys that sign the next version of this registry."""
        return self._roots

    @property
    def root_threshold(self) -> int:
        """How many distinct root keys must sign the next version."""
        return self._model.roots.threshold

    @property
    def signed_bytes(self) -> bytes:
        """The exact canonical bytes that were verified."""
        return self._signed_bytes

    @property
    def digest(self) -> str:
        """Lowercase hex SHA-256 of :attr:`signed_bytes`: names this exact registry content."""
        return crypto.sha256(self._signed_bytes).hex()

    def suite_of(self, partner: PartnerCode) -> crypto.Suite:
        """``partner``'s own suite: that of each of its keys that does not name another."""
        return self._suites[self._known(partner)]

    def suites_of(self, partner: PartnerCode, *, at: dt.datetime) -> frozenset[crypto.Suite]:
        """The suites in which ``partner`` has both a signing and an encryption key usable at
        ``at``: the suites an accord with it can use."""
        known = self._known(partner)
        signing = {u.record.suite for u in _all_usable(self._signing[known], at)}
        return frozenset(u.record.suite for u in _all_usable(self._encryption[known], at)) & signing

    def evaluation_scheme_of(self, partner: PartnerCode) -> EvaluationScheme | None:
        """The grading scheme ``partner``'s analysts read, if its entry names one."""
        self._known(partner)
        listed = next(p for p in self._model.partners if p.code == partner).evaluation_scheme
        return None if listed is None else EvaluationScheme(listed)

    def units_of(self, partner: PartnerCode) -> tuple[PartnerUnit, ...] | None:
        """The units ``partner`` declares, in the order listed; None if it declares none (its
        officers' units are then its own affair, and nothing checks them)."""
        self._known(partner)
        listed = next(p for p in self._model.partners if p.code == partner).units
        return None if listed is None else tuple(PartnerUnit(u.agency, u.unit) for u in listed)

    def name_of(self, partner: PartnerCode) -> str:
        """The partner's display name."""
        return self._names[self._known(partner)]

    def key_records(self) -> tuple[KeyRecord, ...]:
        """Every partner, gateway and witness key with its window and revocation."""
        records: list[KeyRecord] = []
        for code in sorted(self._suites):
            records += [u.record for u in self._signing[code].values()]
            records += [u.record for u in self._encryption[code].values()]
            records += [u.record for u in self._policy[code].values()]
        records += [u.record for u in self._gateways.values()]
        records += [u.record for u in self._witnesses.values()]
        return tuple(records)

    # -- lookups -------------------------------------------------------------------------------

    def signing_key(
        self, partner: PartnerCode, key_id: KeyId, *, at: dt.datetime
    ) -> crypto.VerifyKey:
        """``partner``'s message-signing key ``key_id``, if usable at ``at``."""
        return _usable(self._signing[self._known(partner)], key_id, at, f"signing key of {partner}")

    def encryption_key(
        self, partner: PartnerCode, key_id: KeyId, *, at: dt.datetime
    ) -> crypto.EncryptionKey:
        """``partner``'s encryption key ``key_id``, if usable at ``at``."""
        keys = self._encryption[self._known(partner)]
        return _usable(keys, key_id, at, f"encryption key of {partner}")

    def current_encryption_key(
        self, partner: PartnerCode, *, at: dt.datetime, suite: crypto.Suite | None = None
    ) -> tuple[KeyId, crypto.EncryptionKey]:
        """The newest (latest ``not_before``) encryption key of ``partner`` usable at ``at``,
        of ``suite`` if given (a partner may hold keys of two suites while it migrates)."""
        candidates = [
            u
            for u in _all_usable(self._encryption[self._known(partner)], at)
            if suite is None or u.record.suite is suite
        ]
        if not candidates:
            of_suite = "" if suite is None else f" {suite}"
            raise errors.KeyTrustError(
                f"partner {partner} has no{of_suite} encryption key valid at "
                f"{format_timestamp(_utc(at))}"
            )
        newest = max(candidates, key=lambda u: (u.record.not_before, u.record.key_id))
        return newest.record.key_id, newest.key

    def policy_keys(self, partner: PartnerCode, *, at: dt.datetime) -> tuple[crypto.VerifyKey, ...]:
        """Every policy-signing key of ``partner`` usable at ``at`` (oldest first)."""
        candidates = _all_usable(self._policy[self._known(partner)], at)
        if not candidates:
            raise errors.KeyTrustError(
                f"partner {partner} has no policy-signing key valid at {format_timestamp(_utc(at))}"
            )
        return tuple(u.key for u in sorted(candidates, key=lambda u: u.record.not_before))

    def gateway_key(self, key_id: KeyId, *, at: dt.datetime) -> crypto.VerifyKey:
        """The registered gateway signing key ``key_id``, if usable at ``at``."""
        return _usable(self._gateways, key_id, at, "gateway key")

    def witness_key(self, key_id: KeyId, *, at: dt.datetime) -> crypto.VerifyKey:
        """The registered witness key ``key_id``, if usable at ``at``."""
        return _usable(self._witnesses, key_id, at, "witness key")

    def __bool__(self) -> bool:
        # A verified registry is not a yes/no answer: failures raise, so refuse `if registry:`.
        raise TypeError("a Registry has no truth value; verify_registry() raises on failure")

    def __repr__(self) -> str:
        partners = ",".join(sorted(self.partners))
        return f"<Registry v{self.version} partners={partners} digest={self.digest[:16]}>"

    # -- construction helpers ------------------------------------------------------------------

    def _known(self, partner: PartnerCode) -> PartnerCode:
        if partner not in self._suites:
            raise errors.KeyTrustError(f"unknown partner {partner!r}")
        return partner

    def _claim(self, key_id: str) -> None:
        # One key id, one role: reusing a key across roles or partners is refused outright.
        if key_id in self._seen_ids:
            raise errors.RegistryError(f"key id {key_id} appears more than once in the registry")
        self._seen_ids.add(key_id)

    def _verify_key(self, suite: crypto.Suite, b64: str, key_id: str) -> crypto.VerifyKey:
        self._claim(key_id)
        try:
            key = crypto.VerifyKey.from_bytes(suite, _b64(b64, key_id))
        except errors.KeyTrustError as exc:
            raise errors.RegistryError(f"public key {key_id} is refused: {exc}") from exc
        if key.key_id != key_id:
            raise errors.RegistryError(f"key id {key_id} does not match its public key")
        return key

    def _encryption_key(self, suite: crypto.Suite, b64: str, key_id: str) -> crypto.EncryptionKey:
        self._claim(key_id)
        try:
            key = crypto.EncryptionKey.from_bytes(suite, _b64(b64, key_id))
        except errors.KeyTrustError as exc:
            raise errors.RegistryError(f"public key {key_id} is refused: {exc}") from exc
        if key.key_id != key_id:
            raise errors.RegistryError(f"key id {key_id} does not match its public key")
        return key

    def _verify_keys(
        self,
        role: KeyRole,
        code: PartnerCode,
        suite: crypto.Suite,
        entries: Iterable[KeyEntryModel],
    ) -> dict[KeyId, _Usable[crypto.VerifyKey]]:
        usable: dict[KeyId, _Usable[crypto.VerifyKey]] = {}
        for e in entries:
            own = crypto.Suite(e.suite_within(suite.value))
            usable[KeyId(e.key_id)] = _Usable(
                _record(role, code, own, e), self._verify_key(own, e.public_key, e.key_id)
            )
        return usable

    def _service_keys(
        self, role: Literal["gateway", "witness"], entries: Iterable[ServiceKeyModel]
    ) -> dict[KeyId, _Usable[crypto.VerifyKey]]:
        return {
            KeyId(e.key_id): _Usable(
                _record(role, e.name, crypto.Suite(e.suite), e),
                self._verify_key(crypto.Suite(e.suite), e.public_key, e.key_id),
            )
            for e in entries
        }


def _record(
    role: KeyRole, owner: str, suite: crypto.Suite, entry: KeyEntryModel | ServiceKeyModel
) -> KeyRecord:
    return KeyRecord(
        role=role,
        owner=owner,
        key_id=KeyId(entry.key_id),
        suite=suite,
        not_before=entry.not_before,
        not_after=entry.not_after,
        revoked_at=entry.revoked_at,
        reason=entry.reason,
    )


def _utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise errors.UsageError("a key lookup time must be timezone-aware")
    return at.astimezone(dt.UTC).replace(microsecond=0)


def _usable(keys: dict[KeyId, _Usable[_K]], key_id: KeyId, at: dt.datetime, what: str) -> _K:
    found = keys.get(key_id)
    if found is None:
        raise errors.KeyTrustError(f"no {what} with id {key_id!r}")
    reason = _unusable_because(found.record, at)
    if reason is not None:
        record = found.record
        owner = f" of {record.owner}" if record.role in ("signing", "encryption", "policy") else ""
        raise errors.KeyTrustError(f"{record.role} key {key_id}{owner} {reason}")
    return found.key


def _all_usable(keys: dict[KeyId, _Usable[_K]], at: dt.datetime) -> list[_Usable[_K]]:
    return [u for u in keys.values() if _unusable_because(u.record, at) is None]


def _unusable_because(record: KeyRecord, at: dt.datetime) -> str | None:
    if at.tzinfo is None:
        raise errors.UsageError("a key lookup time must be timezone-aware")
    if record.revoked_at is not None and at >= record.revoked_at:
        return f"revoked at {format_timestamp(record.revoked_at)}: {record.reason}"
    if at < record.not_before:
        return f"is not valid before {format_timestamp(record.not_before)}"
    if at >= record.not_after:
        return f"expired at {format_timestamp(record.not_after)}"
    return None


def _b64(text: str, key_id: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise errors.RegistryError(f"public key {key_id} is not valid base64") from exc
