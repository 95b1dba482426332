"""Law-enforcement metadata: classification equivalence and evaluation translation."""

from __future__ import annotations

import itertools

import pytest

from broker import errors
from broker.ids import PartnerCode
from broker.schema import (
    AdmiraltyEvaluation,
    Classification,
    EuropolEvaluation,
    EvaluationScheme,
    UkEvaluation,
    equivalence_partners,
    from_gsc,
    national_markings,
    to_gsc,
    translate_evaluation,
)

PARTNERS = sorted(equivalence_partners())


def test_every_partner_of_the_accords_has_a_table() -> None:
    """GB and the five partners each have an equivalence table."""
    assert set(PARTNERS) == {"GB", "RS", "MK", "XK", "TR", "AL"}


@pytest.mark.parametrize(
    ("partner", "level"), list(itertools.product(PARTNERS, list(Classification)))
)
def test_gsc_to_national_and_back_is_the_identity(
    partner: PartnerCode, level: Classification
) -> None:
    """UK material marked nationally comes back at the same GSC level."""
    assert to_gsc(partner, from_gsc(partner, level).marking) is level


@pytest.mark.parametrize("partner", PARTNERS)
def test_equivalence_is_monotonic_and_stable(partner: PartnerCode) -> None:
    """A more sensitive national marking never maps to a lower GSC level, and the GSC level of
    a national marking survives the trip to the partner's marking for that level and back."""
    exchangeable = [row for row in national_markings(partner) if row.gsc is not None]
    ranks = [to_gsc(partner, row.marking).rank for row in exchangeable]
    assert ranks == sorted(ranks)
    for row in exchangeable:
        level = to_gsc(partner, row.marking)
        assert to_gsc(partner, from_gsc(partner, level).marking) is level
    assert national_markings(partner)[-1].gsc is None, "the top national level is not carried"


MARKINGS = {
    "Serbian internal, Cyrillic": ("RS", "ИНТЕРНО", Classification.OFFICIAL_SENSITIVE),
    "Serbian confidential, Latin": ("RS", "POVERLJIVO", Classification.SECRET),
    "Macedonian strictly confidential": ("MK", "СТРОГО ДОВЕРЛИВО", Classification.SECRET),
    "Kosovo restricted": ("XK", "I KUFIZUAR", Classification.OFFICIAL_SENSITIVE),
    "Turkish for official use": ("TR", "HİZMETE ÖZEL", Classification.OFFICIAL_SENSITIVE),
    "Albanian unmarked": ("AL", None, Classification.OFFICIAL),
}


@pytest.mark.parametrize(("partner", "marking", "level"), MARKINGS.values(), ids=MARKINGS.keys())
def test_national_markings_translate_to_gsc(
    partner: str, marking: str | None, level: Classification
) -> None:
    """Known markings, in native or Latin script, translate to the agreed GSC level."""
    assert to_gsc(PartnerCode(partner), marking) is level


def test_top_secret_level_markings_are_not_exchangeable() -> None:
    """A marking above SECRET is refused, not squeezed into SECRET."""
    with pytest.raises(errors.SchemaError, match="above SECRET"):
        to_gsc(PartnerCode("TR"), "ÇOK GİZLİ")


def test_unknown_marking_and_partner_are_refused() -> None:
    """Markings and partners without a table entry raise SchemaError."""
    with pytest.raises(errors.SchemaError, match="not a RS national marking"):
        to_gsc(PartnerCode("RS"), "TAJNO-ISH")
    with pytest.raises(errors.SchemaError, match="no equivalence table"):
        to_gsc(PartnerCode("FR"), "SECRET")


UK_2B = UkEvaluation(scheme=EvaluationScheme.UK_3X5X2, source="2", information="B", handling="P")


def test_uk_untested_source_has_no_exact_europol_grade() -> None:
    """UK source 2 (untested) becomes Europol X, and the loss is stated."""
    result = translate_evaluation(UK_2B, EvaluationScheme.EUROPOL_4X4)
    assert result.evaluation == EuropolEvaluation(
        scheme=EvaluationScheme.EUROPOL_4X4, source="X", information="3"
    )
    assert not result.exact
    assert any("'2' (untested source) has no exact europol-4x4" in line for line in result.lost)
    assert any("handling 'P'" in line for line in result.lost)


def test_exact_grades_translate_without_loss() -> None:
    """Admiralty A1 and Europol A1 mean the same; nothing is lost either way."""
    a1 = AdmiraltyEvaluation(scheme=EvaluationScheme.ADMIRALTY_6X6, source="A", information="1")
    forward = translate_evaluation(a1, EvaluationScheme.EUROPOL_4X4)
    assert forward.lost == ()
    assert translate_evaluation(forward.evaluation, EvaluationScheme.ADMIRALTY_6X6).evaluation == a1


def test_translation_into_uk_assumes_conditional_handling_and_says_so() -> None:
    """Other schemes have no handling grade; the cautious 'C' is set and reported."""
    e = EuropolEvaluation(scheme=EvaluationScheme.EUROPOL_4X4, source="A", information="2")
    result = translate_evaluation(e, EvaluationScheme.UK_3X5X2)
    assert isinstance(result.evaluation, UkEvaluation)
    assert (result.evaluation.source, result.evaluation.information) == ("1", "A")
    assert result.evaluation.handling == "C"
    assert result.lost == (
        "europol-4x4 has no handling grade; uk-3x5x2 handling set to 'C' (conditions)",
    )


def test_same_scheme_is_returned_unchanged() -> None:
    """Translating into the scheme a grade already uses loses nothing."""
    assert translate_evaluation(UK_2B, EvaluationScheme.UK_3X5X2).evaluation is UK_2B


def _all_grades() -> list[AdmiraltyEvaluation | UkEvaluation | EuropolEvaluation]:
    grades: list[AdmiraltyEvaluation | UkEvaluation | EuropolEvaluation] = []
    for s, i in itertools.product("ABCDEF", "123456"):
        grades.append(
            AdmiraltyEvaluation.model_validate(
                {"scheme": "admiralty-6x6", "source": s, "information": i}, strict=False
            )
        )
    for s, i in itertools.product("123", "ABCDE"):
        grades.append(
            UkEvaluation.model_validate(
                {"scheme": "uk-3x5x2", "source": s, "information": i, "handling": "P"}, strict=False
            )
        )
    for s, i in itertools.product("ABCX", "1234"):
        grades.append(
            EuropolEvaluation.model_validate(
                {"scheme": "europol-4x4", "source": s, "information": i}, strict=False
            )
        )
    return grades


@pytest.mark.parametrize(
    "grade", _all_grades(), ids=lambda g: f"{g.scheme}:{g.source}{g.information}"
)
def test_every_grade_translates_into_every_scheme(
    grade: AdmiraltyEvaluation | UkEvaluation | EuropolEvaluation,
) -> None:
    """Every grade of every scheme translates into every scheme; exact only with no loss."""
    for scheme in EvaluationScheme:
        result = translate_evaluation(grade, scheme)
        assert result.evaluation.scheme == scheme
        assert result.exact == (result.lost == ())
