"""The wire models of the registry document and the public key cards (private to broker.keys).

Shape checks only (types, lengths, allowed values, field combinations); the cryptographic and
cross-field checks (key ids match their keys, thresholds reachable, ids unique) live in
:mod:`broker.keys.registry`, which wraps these models and never hands them out.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, PlainSerializer, StringConstraints, model_validator

from broker.keys._canonical import format_timestamp, parse_timestamp
from broker.schema._base import StrictModel, UnitNameText

__all__ = [
    "KeyCardModel",
    "KeyEntryModel",
    "PartnerCardModel",
    "PartnerModel",
    "RegistryDocumentModel",
    "RootKeyModel",
    "RootsModel",
    "ServiceKeyModel",
    "SignatureModel",
    "SignedModel",
    "UnitModel",
]

Timestamp = Annotated[
    dt.datetime,
    BeforeValidator(parse_timestamp),
    PlainSerializer(format_timestamp, return_type=str),
]
KeyIdText = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
PartnerText = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Base64Text = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=16_384)]
SuiteText = Literal["classic", "pq-hybrid"]
SchemeText = Literal["admiralty-6x6", "uk-3x5x2", "europol-4x4"]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
SPEC_VERSION = 1


class _Windowed(StrictModel):
    """A validity window ``[not_before, not_after)`` and an optional revocation."""

    not_before: Timestamp
    not_after: Timestamp
    revoked_at: Timestamp | None = None
    reason: Reason | None = None

    @model_validator(mode="after")
    def _window_is_sane(self) -> Self:
        if self.not_before >= self.not_after:
            raise ValueError("not_before must be earlier than not_after")
        if (self.revoked_at is None) != (self.reason is None):
            raise ValueError("revoked_at and reason go together")
        return self


class KeyEntryModel(_Windowed):
    """One of a partner's keys. ``suite`` is named only when it differs from the partner's
    (card's) ``suite``: a partner moving an accord to another suite holds keys of both."""

    key_id: KeyIdText
    public_key: Base64Text
    suite: SuiteText | None = None

    def suite_within(self, partner_suite: SuiteText) -> SuiteText:
        """This key's suite, given its partner's."""
        return partner_suite if self.suite is None else self.suite


class ServiceKeyModel(_Windowed):
    """A gateway or witness signing key."""

    key_id: KeyIdText
    name: Label
    suite: SuiteText
    public_key: Base64Text


class RootKeyModel(StrictModel):
    """A registry root key: valid until the roots themselves are rotated."""

    key_id: KeyIdText
    name: Label
    suite: SuiteText
    public_key: Base64Text


class RootsModel(StrictModel):
    threshold: int = Field(ge=1)
    keys: tuple[RootKeyModel, ...] = Field(min_length=1, max_length=64)


class UnitModel(StrictModel):
    """One unit of a partner, with the agency it belongs to (the names its officers'
    ``origin`` and ``restrict-to-units`` conditions use, compared exactly)."""

    agency: UnitNameText
    unit: UnitNameText


class PartnerModel(StrictModel):
    code: PartnerText
    name: Label
    suite: SuiteText
    """The suite of every key of this partner that does not name its own."""
    evaluation_scheme: SchemeText | None = None
    """The grading scheme its analysts read, so partners know how their grading will be read."""
    units: tuple[UnitModel, ...] | None = Field(default=None, min_length=1, max_length=256)
    """The units whose officers send for it; absent, the partner declares none (unchecked)."""
    signing_keys: tuple[KeyEntryModel, ...] = Field(max_length=256)
    encryption_keys: tuple[KeyEntryModel, ...] = Field(max_length=256)
    policy_keys: tuple[KeyEntryModel, ...] = Field(max_length=256)

    @model_validator(mode="after")
    def _unit_names_are_unique(self) -> Self:
        # restrict-to-units conditions name a unit alone: two agencies' units of one name
        # could not be told apart
        names = [u.unit for u in self.units or ()]
        if len(names) != len(set(names)):
            raise ValueError(f"partner {self.code} lists a unit name twice")
        return self


class SignedModel(StrictModel):
    type: Literal["partner-registry"]
    spec_version: Literal[1]
    version: int = Field(ge=1, le=2**53)
    expires: Timestamp
    roots: RootsModel
    partners: tuple[PartnerModel, ...] = Field(max_length=256)
    gateways: tuple[ServiceKeyModel, ...] = Field(max_length=256)
    witnesses: tuple[ServiceKeyModel, ...] = Field(max_length=256)


class SignatureModel(StrictModel):
    key_id: KeyIdText
    sig: Base64Text


class RegistryDocumentModel(StrictModel):
    """The outer document; ``signed`` is kept as parsed JSON so its exact bytes can be verified."""

    signed: dict[str, object]
    signatures: tuple[SignatureModel, ...] = Field(max_length=64)


class PartnerCardModel(StrictModel):
    """A partner's public keys, as ``broker keys generate`` writes them for the registry."""

    type: Literal["partner-card"]
    spec_version: Literal[1]
    code: PartnerText
    name: Label
    suite: SuiteText
    evaluation_scheme: SchemeText | None = None
    signing_keys: tuple[KeyEntryModel, ...] = Field(max_length=256)
    encryption_keys: tuple[KeyEntryModel, ...] = Field(max_length=256)
    policy_keys: tuple[KeyEntryModel, ...] = Field(max_length=256)


class KeyCardModel(StrictModel):
    """One root, gateway or witness public key; roots carry no validity window."""

    type: Literal["key-card"]
    spec_version: Literal[1]
    kind: Literal["root", "gateway", "witness"]
    name: Label
    suite: SuiteText
    key_id: KeyIdText
    public_key: Base64Text
    not_before: Timestamp | None = None
    not_after: Timestamp | None = None

    @model_validator(mode="after")
    def _window_matches_kind(self) -> Self:
        has_window = self.not_before is not None and self.not_after is not None
        if self.kind == "root" and (self.not_before is not None or self.not_after is not None):
            raise ValueError("a root key card has no validity window")
        if self.kind != "root" and not has_window:
            raise ValueError(f"a {self.kind} key card needs not_before and not_after")
        return self
