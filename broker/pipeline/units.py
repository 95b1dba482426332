"""The units a partner declares in the registry, checked wherever a unit is named.

A partner may list its units, each with its agency (``broker registry set-units``). Once it
does, the registry is the one word on what they are called:

- a view's signed ``origin`` names one of its sender's units (the sending adapter, the gateway
  and the recipient each check it: :func:`unlisted_origin`), and an officer is added only to
  one of its own partner's units (``broker officers add``: :func:`unlisted_unit`);
- the ``restrict-to-units`` conditions of a view leave some unit its recipient declares able
  to read it, since a misspelt unit would keep the view from everyone there (the sender
  checks it: :func:`unreadable_at`).

A partner that lists no units is not checked: its units are its adapter's own affair. The
reason code of every refusal here is ``unlisted_unit``.
"""

from __future__ import annotations

from broker.envelope import Origin
from broker.ids import PartnerCode, is_unit_name
from broker.keys import PartnerUnit, Registry
from broker.schema import Message
from broker.schema.handling import RestrictToUnits

__all__ = ["unlisted_origin", "unlisted_unit", "unreadable_at"]


def unlisted_unit(registry: Registry, partner: PartnerCode, agency: str, unit: str) -> str | None:
    """Why ``unit`` of ``agency`` is not one of ``partner``'s, or None if it is (or
    ``partner`` declares no units). Agency and unit must both match one entry."""
    declared = _declared(registry, partner)
    if declared is None or PartnerUnit(agency, unit) in declared:
        return None
    return (
        f"unit {unit!r} of agency {agency!r} is not one {partner} lists in the registry "
        f"({_names(declared)})"
    )


def unlisted_origin(registry: Registry, sender: PartnerCode, origin: Origin | None) -> str | None:
    """Why ``origin`` cannot be one of ``sender``'s officers, or None if it can (or names no
    one, or ``sender`` declares no units)."""
    if origin is None:
        return None
    unlisted = unlisted_unit(registry, sender, origin.agency, origin.unit)
    return None if unlisted is None else f"the origin names {unlisted}"


def unreadable_at(registry: Registry, recipient: PartnerCode, message: Message) -> str | None:
    """Why no officer at ``recipient`` could read ``message``: an officer reads it only if
    their unit is among those every ``restrict-to-units`` condition names, and no unit
    ``recipient`` lists is, or a condition names something no unit can be called; None
    otherwise (also when ``recipient`` lists no units, or there is no such condition). The
    reason names the units the conditions name that ``recipient`` does not list, the
    likeliest misspellings."""
    conditions = [c for c in message.handling_conditions if isinstance(c, RestrictToUnits)]
    if not conditions:  # most views: nothing to look up
        return None
    impossible = sorted({u for c in conditions for u in c.units if not is_unit_name(u)})
    if impossible:
        # a name no directory holds (an invisible character, another normalisation): no
        # officer anywhere is in that unit, whether or not the recipient lists its units
        return (
            f"restrict-to-units names {', '.join(ascii(u) for u in impossible)}, which is not "
            "a unit name (docs/OFFICERS.md), so no officer there could read it"
        )
    declared = _declared(registry, recipient)
    if declared is None:
        return None
    names = {unit.unit for unit in declared}
    readers = names.intersection(*(c.units for c in conditions))
    if readers:
        return None
    named = {unit for c in conditions for unit in c.units}
    unknown = sorted(named - names)
    return (
        f"no unit {recipient} lists in the registry is named by every restrict-to-units "
        f"condition, so no officer there could read it"
        + (f"; {recipient} does not list {', '.join(repr(u) for u in unknown)}" if unknown else "")
        + f" ({_names(declared)})"
    )


def _declared(registry: Registry, partner: PartnerCode) -> tuple[PartnerUnit, ...] | None:
    # a partner the registry does not know is refused by the key checks, with their reason
    return registry.units_of(partner) if partner in registry.partners else None


def _names(declared: tuple[PartnerUnit, ...]) -> str:
    return "units: " + ", ".join(str(unit) for unit in declared)
