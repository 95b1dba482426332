"""Test helpers: a signed registry of partners built in memory, with every private key.

Shipped in the package (like structlog's testing helpers) because the envelope, accord and
gateway tests all need a real, verified registry and the keys that go with it::

    registry, data, keys = make_registry(now=NOW)
    keys[PartnerCode("RS")].signing          # crypto.SigningKey of Serbia
    registry.signing_key(PartnerCode("RS"), keys[PartnerCode("RS")].signing_key_id, at=NOW)

:func:`build_registry` returns everything, including root, gateway and witness keys and a
:meth:`RegistryFixture.edit` / :meth:`RegistryFixture.resign` for rollback and rotation tests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping

from broker import crypto
from broker.ids import KeyId, PartnerCode
from broker.keys.cards import (
    PartnerKeys,
    RotatedKeys,
    generate_partner_keys,
    generate_service_key,
    rotate_partner_keys,
)
from broker.keys.document import RegistryDraft
from broker.keys.registry import PartnerUnit, Registry
from broker.keys.verify import verify_registry

__all__ = ["PARTNER_NAMES", "RegistryFixture", "build_registry", "make_registry"]

PARTNER_NAMES: dict[str, str] = {
    "GB": "United Kingdom",
    "RS": "Serbia",
    "MK": "North Macedonia",
    "XK": "Kosovo",
    "TR": "Turkey",
    "AL": "Albania",
}
_DEFAULT_PARTNERS = tuple(PARTNER_NAMES)


@dataclasses.dataclass(frozen=True)
class RegistryFixture:
    """A verified registry, its document bytes, and every private key behind it."""

    registry: Registry
    data: bytes
    partners: dict[PartnerCode, PartnerKeys]
    roots: tuple[crypto.SigningKey, ...] = dataclasses.field(repr=False)
    gateways: dict[KeyId, crypto.SigningKey] = dataclasses.field(repr=False)
    witnesses: dict[KeyId, crypto.SigningKey] = dataclasses.field(repr=False)
    #: each partner's keys of other suites than the registry's (``also_suites``)
    other_suites: dict[PartnerCode, dict[crypto.Suite, RotatedKeys]] = dataclasses.field(
        default_factory=dict, repr=False
    )

    def edit(self) -> RegistryDraft:
        """A fresh draft of this registry; its first edit bumps the version."""
        return RegistryDraft.from_bytes(self.data)

    def resign(self, draft: RegistryDraft, *, now: dt.datetime) -> tuple[Registry, bytes]:
        """Sign an edited ``draft`` with every root and verify it against this registry."""
        for root in self.roots:
            draft.sign(root)
        data = draft.to_bytes()
        return verify_registry(data, trusted=self.registry, now=now), data


def build_registry(
    *,
    now: dt.datetime,
    partners: Iterable[str] = _DEFAULT_PARTNERS,
    suite: crypto.Suite = crypto.Suite.CLASSIC,
    valid_for: dt.timedelta = dt.timedelta(days=365),
    expires_in: dt.timedelta = dt.timedelta(days=30),
    roots: int = 3,
    threshold: int = 2,
    gateways: int = 1,
    witnesses: int = 1,
    also_suites: Mapping[str, Iterable[crypto.Suite]] | None = None,
    units: Mapping[str, Iterable[tuple[str, str]]] | None = None,
) -> RegistryFixture:
    """A registry signed by all ``roots`` (threshold ``threshold``), keys valid from ``now``.

    Every key is valid over ``[now - 1 day, now - 1 day + valid_for)`` so lookups at ``now`` and
    a little before succeed; the registry expires at ``now + expires_in``. ``also_suites``
    gives partners signing and encryption keys of more suites beside their ``suite`` ones;
    ``units`` the ``(agency, unit)`` pairs partners declare.
    """
    start = now - dt.timedelta(days=1)
    root_cards, root_keys = zip(
        *(generate_service_key("root", name=f"root-{i + 1}", suite=suite) for i in range(roots)),
        strict=True,
    )
    draft = RegistryDraft.new(roots=root_cards, threshold=threshold, expires=now + expires_in)
    private: dict[PartnerCode, PartnerKeys] = {}
    others: dict[PartnerCode, dict[crypto.Suite, RotatedKeys]] = {}
    for code in partners:
        partner = PartnerCode(code)
        card, keys = generate_partner_keys(
            partner,
            name=PARTNER_NAMES.get(code, code),
            suite=suite,
            not_before=start,
            valid_for=valid_for,
        )
        for other in set((also_suites or {}).get(code, ())) - {suite}:
            card, rotated = rotate_partner_keys(
                card, now=start, overlap=valid_for, valid_for=valid_for, suite=other
            )
            others.setdefault(partner, {})[other] = rotated
        draft.add_partner(card)
        if units and code in units:
            draft.set_units(partner, [PartnerUnit(*pair) for pair in units[code]])
        private[partner] = keys
    service: dict[str, dict[KeyId, crypto.SigningKey]] = {"gateway": {}, "witness": {}}
    for kind, count in (("gateway", gateways), ("witness", witnesses)):
        for i in range(count):
            service_card, key = generate_service_key(
                "gateway" if kind == "gateway" else "witness",
                name=f"{kind}-{i + 1}",
                suite=suite,
                not_before=start,
                valid_for=valid_for,
            )
            draft.add_service_key(service_card)
            service[kind][service_card.key_id] = key
    for root in root_keys:
        draft.sign(root)
    data = draft.to_bytes()
    return RegistryFixture(
        registry=verify_registry(data, trusted=None, now=now),
        data=data,
        partners=private,
        roots=tuple(root_keys),
        gateways=service["gateway"],
        witnesses=service["witness"],
        other_suites=others,
    )


def make_registry(
    *,
    now: dt.datetime,
    partners: Iterable[str] = _DEFAULT_PARTNERS,
    suite: crypto.Suite = crypto.Suite.CLASSIC,
) -> tuple[Registry, bytes, dict[PartnerCode, PartnerKeys]]:
    """``(registry, registry_bytes, private_keys_by_partner)`` for the six partners by default."""
    fixture = build_registry(now=now, partners=partners, suite=suite)
    return fixture.registry, fixture.data, fixture.partners
