"""Public key cards and key generation: what a key holder hands to the registry's editors.

A *partner card* lists one partner's public signing, encryption and policy-signing keys with
their validity windows; a *key card* carries one root, gateway or witness public key. Cards
hold no secrets. Generation returns the private halves separately, for the caller to store.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from typing import Literal, TypeVar

from pydantic import ValidationError

from broker import crypto, errors
from broker.ids import KeyId, PartnerCode
from broker.keys._canonical import parse_model
from broker.keys._wire import KeyCardModel, KeyEntryModel, PartnerCardModel
from broker.schema import EvaluationScheme

__all__ = [
    "KeyCard",
    "KeyKind",
    "PartnerCard",
    "PartnerKeys",
    "RotatedKeys",
    "generate_partner_keys",
    "generate_service_key",
    "rotate_partner_keys",
]

KeyKind = Literal["root", "gateway", "witness"]
_CardModel = TypeVar("_CardModel", PartnerCardModel, KeyCardModel)


@dataclasses.dataclass(frozen=True)
class PartnerKeys:
    """A partner's private keys as generated together; the ids name the public halves."""

    partner: PartnerCode
    signing_key_id: KeyId
    encryption_key_id: KeyId
    policy_key_id: KeyId
    signing: crypto.SigningKey = dataclasses.field(repr=False)
    decryption: crypto.DecryptionKey = dataclasses.field(repr=False)
    policy: crypto.SigningKey = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class RotatedKeys:
    """The new signing and decryption keys a rotation made (policy keys are not rotated)."""

    partner: PartnerCode
    signing_key_id: KeyId
    encryption_key_id: KeyId
    signing: crypto.SigningKey = dataclasses.field(repr=False)
    decryption: crypto.DecryptionKey = dataclasses.field(repr=False)


class PartnerCard:
    """A partner's public keys, importable into the registry with ``registry add-partner``."""

    def __init__(self, model: PartnerCardModel) -> None:
        self._model = model

    @classmethod
    def from_bytes(cls, data: bytes) -> PartnerCard:
        """Parse a card strictly; a bad card raises :class:`errors.RegistryError`."""
        return cls(_parse(PartnerCardModel, data, "partner card"))

    def to_bytes(self) -> bytes:
        """The card as readable JSON."""
        return _pretty(self._model.model_dump(mode="json", exclude_none=True))

    @property
    def code(self) -> PartnerCode:
        return PartnerCode(self._model.code)

    @property
    def name(self) -> str:
        return self._model.name

    @property
    def suite(self) -> crypto.Suite:
        return crypto.Suite(self._model.suite)

    @property
    def evaluation_scheme(self) -> str | None:
        """The grading scheme the partner's analysts read, if the card names one."""
        return self._model.evaluation_scheme

    def entries(self) -> dict[str, list[dict[str, object]]]:
        """The three key lists as registry JSON, by role name (``signing_keys`` ...)."""
        dumped = self._model.model_dump(mode="json", exclude_none=True)
        return {role: dumped[role] for role in ("signing_keys", "encryption_keys", "policy_keys")}


class KeyCard:
    """One root, gateway or witness public key."""

    def __init__(self, model: KeyCardModel) -> None:
        self._model = model

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyCard:
        """Parse a card strictly; a bad card raises :class:`errors.RegistryError`."""
        return cls(_parse(KeyCardModel, data, "key card"))

    def to_bytes(self) -> bytes:
        """The card as readable JSON."""
        return _pretty(self._model.model_dump(mode="json", exclude_none=True))

    @property
    def kind(self) -> KeyKind:
        return self._model.kind

    @property
    def key_id(self) -> KeyId:
        return KeyId(self._model.key_id)

    @property
    def name(self) -> str:
        return self._model.name

    def registry_entry(self) -> dict[str, object]:
        """The entry this card becomes under ``roots.keys``, ``gateways`` or ``witnesses``."""
        return self._model.model_dump(
            mode="json", exclude={"type", "spec_version", "kind"}, exclude_none=True
        )


def generate_partner_keys(
    partner: PartnerCode,
    *,
    name: str,
    suite: crypto.Suite,
    not_before: dt.datetime,
    valid_for: dt.timedelta,
    evaluation_scheme: EvaluationScheme | None = None,
) -> tuple[PartnerCard, PartnerKeys]:
    """New signing, encryption and policy-signing keys for ``partner``, and their public card
    (which names the grading scheme its analysts read, if given)."""
    start = _whole_seconds(not_before)
    signing = crypto.SigningKey.generate(suite)
    decryption = crypto.DecryptionKey.generate(suite)
    policy = crypto.SigningKey.generate(suite)
    card = PartnerCardModel(
        type="partner-card",
        spec_version=1,
        code=partner,
        name=name,
        suite=suite.value,
        evaluation_scheme=None if evaluation_scheme is None else evaluation_scheme.value,
        signing_keys=(_entry(signing.public_key(), start, start + valid_for),),
        encryption_keys=(_entry(decryption.public_key(), start, start + valid_for),),
        policy_keys=(_entry(policy.public_key(), start, start + valid_for),),
    )
    private = PartnerKeys(
        partner=partner,
        signing_key_id=signing.public_key().key_id,
        encryption_key_id=decryption.public_key().key_id,
        policy_key_id=policy.public_key().key_id,
        signing=signing,
        decryption=decryption,
        policy=policy,
    )
    return PartnerCard(card), private


def rotate_partner_keys(
    card: PartnerCard,
    *,
    now: dt.datetime,
    overlap: dt.timedelta,
    valid_for: dt.timedelta,
    suite: crypto.Suite | None = None,
) -> tuple[PartnerCard, RotatedKeys]:
    """New signing and encryption keys of ``suite`` (default: the card's) valid from ``now``;
    older keys of that suite end at ``now + overlap``.

    During the overlap both generations resolve, so messages sealed to or signed by the old
    keys just before the switch still open and verify. A key already ending sooner keeps its
    earlier end. Keys of the other suite are left as they are: a partner adding pq-hybrid
    keys keeps its classic ones for the accords that still use them.
    """
    start = _whole_seconds(now)
    if overlap <= dt.timedelta(0):
        raise errors.UsageError("the rotation overlap must be positive")
    retire = start + overlap
    model = card._model
    new_suite = suite or card.suite
    signing = crypto.SigningKey.generate(new_suite)
    decryption = crypto.DecryptionKey.generate(new_suite)
    named = None if new_suite is card.suite else new_suite

    def retired(entries: tuple[KeyEntryModel, ...]) -> tuple[KeyEntryModel, ...]:
        return tuple(
            e
            if e.not_after <= retire
            or e.not_before >= retire
            or e.suite_within(model.suite) != new_suite.value
            else e.model_copy(update={"not_after": retire})
            for e in entries
        )

    rotated = PartnerCardModel.model_validate_json(
        json.dumps(
            model.model_copy(
                update={
                    "signing_keys": (
                        *retired(model.signing_keys),
                        _entry(signing.public_key(), start, start + valid_for, named),
                    ),
                    "encryption_keys": (
                        *retired(model.encryption_keys),
                        _entry(decryption.public_key(), start, start + valid_for, named),
                    ),
                }
            ).model_dump(mode="json")
        )
    )
    keys = RotatedKeys(
        partner=card.code,
        signing_key_id=signing.public_key().key_id,
        encryption_key_id=decryption.public_key().key_id,
        signing=signing,
        decryption=decryption,
    )
    return PartnerCard(rotated), keys


def generate_service_key(
    kind: KeyKind,
    *,
    name: str,
    suite: crypto.Suite,
    not_before: dt.datetime | None = None,
    valid_for: dt.timedelta | None = None,
) -> tuple[KeyCard, crypto.SigningKey]:
    """A root, gateway or witness signing key and its card; gateways and witnesses need a window."""
    key = crypto.SigningKey.generate(suite)
    public = key.public_key()
    window: dict[str, dt.datetime] = {}
    if kind != "root":
        if not_before is None or valid_for is None:
            raise errors.UsageError(f"a {kind} key needs not_before and valid_for")
        start = _whole_seconds(not_before)
        window = {"not_before": start, "not_after": start + valid_for}
    try:
        model = KeyCardModel(
            type="key-card",
            spec_version=1,
            kind=kind,
            name=name,
            suite=suite.value,
            key_id=public.key_id,
            public_key=base64.b64encode(public.to_bytes()).decode("ascii"),
            **window,
        )
    except ValidationError as exc:
        raise errors.UsageError(f"cannot make a {kind} key card: {exc.errors()[0]['msg']}") from exc
    return KeyCard(model), key


def _entry(
    public: crypto.VerifyKey | crypto.EncryptionKey,
    start: dt.datetime,
    end: dt.datetime,
    suite: crypto.Suite | None = None,
) -> KeyEntryModel:
    return KeyEntryModel(
        key_id=public.key_id,
        public_key=base64.b64encode(public.to_bytes()).decode("ascii"),
        not_before=start,
        not_after=end,
        suite=None if suite is None else suite.value,
    )


def _whole_seconds(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise errors.UsageError("key validity times must be timezone-aware")
    return at.astimezone(dt.UTC).replace(microsecond=0)


def _parse(model: type[_CardModel], data: bytes, what: str) -> _CardModel:
    parsed = parse_model(model, data, what=what)[0]
    # A card is where a key first enters: refuse a weak or mismatched key here, not only
    # later when the registry that would list it is built.
    suite = crypto.Suite(parsed.suite)
    if isinstance(parsed, KeyCardModel):
        _check_public(crypto.VerifyKey, suite, parsed.key_id, parsed.public_key, what)
    else:
        for entries, kind in (
            (parsed.signing_keys, crypto.VerifyKey),
            (parsed.policy_keys, crypto.VerifyKey),
            (parsed.encryption_keys, crypto.EncryptionKey),
        ):
            for entry in entries:
                own = crypto.Suite(entry.suite_within(parsed.suite))
                _check_public(kind, own, entry.key_id, entry.public_key, what)
    return parsed


def _check_public(
    kind: type[crypto.VerifyKey] | type[crypto.EncryptionKey],
    suite: crypto.Suite,
    key_id: str,
    text: str,
    what: str,
) -> None:
    try:
        key = kind.from_bytes(suite, base64.b64decode(text, validate=True))
    except (ValueError, errors.KeyTrustError) as exc:
        raise errors.RegistryError(f"{what}: public key {key_id} is refused: {exc}") from exc
    if key.key_id != key_id:
        raise errors.RegistryError(f"{what}: key id {key_id} does not match its public key")


def _pretty(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
