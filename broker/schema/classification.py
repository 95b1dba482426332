"""Per-partner equivalence between national security markings and the UK GSC scale.

Accords are written against UK Government Security Classifications. Each partner marks
information under its own law; these tables say at which GSC level the UK protects a partner's
marking, and which national marking a partner applies to UK material. The tables protect at
least as high in both directions: a partner's CONFIDENTIAL-level marking is protected as SECRET
(GSC has no CONFIDENTIAL), and TOP SECRET-level material is not exchangeable on this system.
"""

from __future__ import annotations

import dataclasses

from broker import errors
from broker.ids import PartnerCode
from broker.schema.labels import Classification

__all__ = [
    "NationalMarking",
    "equivalence_partners",
    "from_gsc",
    "national_markings",
    "to_gsc",
]


@dataclasses.dataclass(frozen=True, slots=True)
class NationalMarking:
    """One national marking: as printed (native script), its Latin form, and its GSC level.

    ``marking`` is ``None`` for information a partner's law leaves unmarked; it is handled as
    OFFICIAL. ``gsc`` is ``None`` for markings too high to exchange on this system.
    """

    partner: PartnerCode
    marking: str | None
    latin: str | None
    english: str
    gsc: Classification | None


_O, _OS, _S = Classification.OFFICIAL, Classification.OFFICIAL_SENSITIVE, Classification.SECRET


def _table(
    partner: str, rows: list[tuple[str | None, str | None, str, Classification | None]]
) -> tuple[NationalMarking, ...]:
    return tuple(NationalMarking(PartnerCode(partner), *row) for row in rows)


# Order within a table is from least to most sensitive; the first marking for a GSC level is
# the one applied to UK material at that level.
_TABLES: dict[PartnerCode, tuple[NationalMarking, ...]] = {
    PartnerCode("GB"): _table(
        "GB",
        [
            ("OFFICIAL", "OFFICIAL", "official", _O),
            ("OFFICIAL-SENSITIVE", "OFFICIAL-SENSITIVE", "official-sensitive", _OS),
            ("SECRET", "SECRET", "secret", _S),
            ("TOP SECRET", "TOP SECRET", "top secret", None),
        ],
    ),
    # Serbia: Law on Data Secrecy (Zakon o tajnosti podataka), Cyrillic as printed.
    PartnerCode("RS"): _table(
        "RS",
        [
            (None, None, "unmarked", _O),
            ("ИНТЕРНО", "INTERNO", "internal", _OS),
            ("ПОВЕРЉИВО", "POVERLJIVO", "confidential", _S),
            ("СТРОГО ПОВЕРЉИВО", "STROGO POVERLJIVO", "strictly confidential", _S),
            ("ДРЖАВНА ТАЈНА", "DRŽAVNA TAJNA", "state secret", None),  # noqa: RUF001 - as printed
        ],
    ),
    # North Macedonia: Law on Classified Information.
    PartnerCode("MK"): _table(
        "MK",
        [
            (None, None, "unmarked", _O),
            ("ИНТЕРНО", "INTERNO", "internal", _OS),
            ("ДОВЕРЛИВО", "DOVERLIVO", "confidential", _S),
            ("СТРОГО ДОВЕРЛИВО", "STROGO DOVERLIVO", "strictly confidential", _S),
            ("ДРЖАВНА ТАЈНА", "DRŽAVNA TAJNA", "state secret", None),  # noqa: RUF001 - as printed
        ],
    ),
    # Kosovo: Law on Classification of Information and Security Clearances.
    PartnerCode("XK"): _table(
        "XK",
        [
            (None, None, "unmarked", _O),
            ("I KUFIZUAR", "I KUFIZUAR", "restricted", _OS),
            ("KONFIDENCIAL", "KONFIDENCIAL", "confidential", _S),
            ("SEKRET", "SEKRET", "secret", _S),
            ("TEPËR SEKRET", "TEPER SEKRET", "top secret", None),
        ],
    ),
    # Turkey: national classification levels.
    PartnerCode("TR"): _table(
        "TR",
        [
            (None, None, "unmarked", _O),
            ("HİZMETE ÖZEL", "HIZMETE OZEL", "restricted", _OS),
            ("ÖZEL", "OZEL", "confidential", _S),
            ("GİZLİ", "GIZLI", "secret", _S),
            ("ÇOK GİZLİ", "COK GIZLI", "top secret", None),
        ],
    ),
    # Albania: Law on Classified Information.
    PartnerCode("AL"): _table(
        "AL",
        [
            (None, None, "unmarked", _O),
            ("I KUFIZUAR", "I KUFIZUAR", "restricted", _OS),
            ("KONFIDENCIAL", "KONFIDENCIAL", "confidential", _S),
            ("SEKRET", "SEKRET", "secret", _S),
            ("TEPËR SEKRET", "TEPER SEKRET", "top secret", None),
        ],
    ),
}


def equivalence_partners() -> frozenset[PartnerCode]:
    """The partners with an equivalence table."""
    return frozenset(_TABLES)


def national_markings(partner: PartnerCode) -> tuple[NationalMarking, ...]:
    """``partner``'s markings, least sensitive first; ``SchemaError`` for an unknown partner."""
    try:
        return _TABLES[partner]
    except KeyError:
        raise errors.SchemaError(
            f"classification: no equivalence table for partner {partner!r}"
        ) from None


def to_gsc(partner: PartnerCode, marking: str | None) -> Classification:
    """The GSC level at which the UK protects ``partner``'s ``marking`` (native or Latin form).

    ``None`` means unmarked. Raises ``SchemaError`` for an unknown marking or one above what
    this system may carry.
    """
    for row in national_markings(partner):
        if marking in (row.marking, row.latin):
            if row.gsc is None:
                raise errors.SchemaError(
                    f"classification: {partner} {marking!r} ({row.english}) is above SECRET "
                    "and may not be exchanged on this system"
                )
            return row.gsc
    raise errors.SchemaError(f"classification: {marking!r} is not a {partner} national marking")


def from_gsc(partner: PartnerCode, classification: Classification) -> NationalMarking:
    """The national marking ``partner`` applies to UK material at ``classification``.

    ``to_gsc(partner, from_gsc(partner, c).marking) == c`` for every partner and level.
    """
    for row in national_markings(partner):
        if row.gsc is classification:
            return row
    raise AssertionError(f"equivalence table for {partner} has no {classification} row")
