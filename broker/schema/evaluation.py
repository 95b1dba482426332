"""Source and information grading in the three schemes partners use, and translation between them.

The scales do not map one to one. UK "2: untested" is not Europol "X: cannot be assessed";
Admiralty "3: possibly true" is neither Europol "3" nor "4". Translation therefore goes through
the *meaning* of each grade: every grade names one meaning, every scheme names its nearest grade
for every meaning, and a translation is exact only when the target grade means the same thing.
Whatever is not exact is reported, in words, beside the translated grade: a receiving analyst
must see that a grade was approximated, never be told a false equivalence.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Literal

from pydantic import Field

from broker.schema._base import StrictModel

__all__ = [
    "AdmiraltyEvaluation",
    "EuropolEvaluation",
    "Evaluation",
    "EvaluationScheme",
    "EvaluationTranslation",
    "UkEvaluation",
    "translate_evaluation",
]


class EvaluationScheme(enum.StrEnum):
    """The grading schemes in use among the partners."""

    ADMIRALTY_6X6 = "admiralty-6x6"  # NATO STANAG 2511
    UK_3X5X2 = "uk-3x5x2"  # College of Policing intelligence report
    EUROPOL_4X4 = "europol-4x4"  # Europol, SIENA


class AdmiraltyEvaluation(StrictModel):
    """Admiralty (NATO) 6x6: source reliability A-F, information credibility 1-6."""

    scheme: Literal[EvaluationScheme.ADMIRALTY_6X6]
    source: Literal["A", "B", "C", "D", "E", "F"]
    information: Literal["1", "2", "3", "4", "5", "6"]


class UkEvaluation(StrictModel):
    """UK 3x5x2: source 1-3, intelligence A-E, handling P (may be shared) or C (conditions)."""

    scheme: Literal[EvaluationScheme.UK_3X5X2]
    source: Literal["1", "2", "3"]
    information: Literal["A", "B", "C", "D", "E"]
    handling: Literal["P", "C"]


class EuropolEvaluation(StrictModel):
    """Europol 4x4: source A, B, C or X, information 1-4."""

    scheme: Literal[EvaluationScheme.EUROPOL_4X4]
    source: Literal["A", "B", "C", "X"]
    information: Literal["1", "2", "3", "4"]


Evaluation = Annotated[
    AdmiraltyEvaluation | UkEvaluation | EuropolEvaluation, Field(discriminator="scheme")
]


# Meanings are written as the schemes' own definitions say them.
_SOURCE_MEANING: dict[EvaluationScheme, dict[str, str]] = {
    EvaluationScheme.ADMIRALTY_6X6: {
        "A": "completely reliable",
        "B": "usually reliable",
        "C": "fairly reliable",
        "D": "not usually reliable",
        "E": "unreliable",
        "F": "reliability cannot be judged",
    },
    EvaluationScheme.UK_3X5X2: {
        "1": "completely reliable",
        "2": "untested source",
        "3": "unreliable",
    },
    EvaluationScheme.EUROPOL_4X4: {
        "A": "completely reliable",
        "B": "usually reliable",
        "C": "unreliable",
        "X": "reliability cannot be judged",
    },
}

_INFORMATION_MEANING: dict[EvaluationScheme, dict[str, str]] = {
    EvaluationScheme.ADMIRALTY_6X6: {
        "1": "confirmed by other sources",
        "2": "probably true",
        "3": "possibly true",
        "4": "doubtful",
        "5": "improbable",
        "6": "truth cannot be judged",
    },
    EvaluationScheme.UK_3X5X2: {
        "A": "known directly to the source",
        "B": "known indirectly to the source, corroborated",
        "C": "known indirectly to the source",
        "D": "truth cannot be judged",
        "E": "suspected to be false",
    },
    EvaluationScheme.EUROPOL_4X4: {
        "1": "confirmed by other sources",
        "2": "known directly to the source",
        "3": "known indirectly to the source, corroborated",
        "4": "known indirectly to the source",
    },
}

# For each scheme, its nearest grade for every meaning any scheme can express. Where there is
# a choice, the nearest grade is the one that does not overstate reliability or truth.
_NEAREST_SOURCE: dict[EvaluationScheme, dict[str, str]] = {
    EvaluationScheme.ADMIRALTY_6X6: {
        "completely reliable": "A",
        "usually reliable": "B",
        "fairly reliable": "C",
        "not usually reliable": "D",
        "unreliable": "E",
        "untested source": "F",
        "reliability cannot be judged": "F",
    },
    EvaluationScheme.UK_3X5X2: {
        "completely reliable": "1",
        "usually reliable": "2",
        "fairly reliable": "2",
        "not usually reliable": "3",
        "unreliable": "3",
        "untested source": "2",
        "reliability cannot be judged": "2",
    },
    EvaluationScheme.EUROPOL_4X4: {
        "completely reliable": "A",
        "usually reliable": "B",
        "fairly reliable": "X",
        "not usually reliable": "C",
        "unreliable": "C",
        "untested source": "X",
        "reliability cannot be judged": "X",
    },
}

_NEAREST_INFORMATION: dict[EvaluationScheme, dict[str, str]] = {
    EvaluationScheme.ADMIRALTY_6X6: {
        "confirmed by other sources": "1",
        "known directly to the source": "2",
        "known indirectly to the source, corroborated": "2",
        "probably true": "2",
        "possibly true": "3",
        "known indirectly to the source": "3",
        "doubtful": "4",
        "improbable": "5",
        "suspected to be false": "5",
        "truth cannot be judged": "6",
    },
    EvaluationScheme.UK_3X5X2: {
        "confirmed by other sources": "B",
        "known directly to the source": "A",
        "known indirectly to the source, corroborated": "B",
        "probably true": "C",
        "possibly true": "C",
        "known indirectly to the source": "C",
        "doubtful": "D",
        "improbable": "E",
        "suspected to be false": "E",
        "truth cannot be judged": "D",
    },
    EvaluationScheme.EUROPOL_4X4: {
        "confirmed by other sources": "1",
        "known directly to the source": "2",
        "known indirectly to the source, corroborated": "3",
        "probably true": "4",
        "possibly true": "4",
        "known indirectly to the source": "4",
        "doubtful": "4",
        "improbable": "4",
        "suspected to be false": "4",
        "truth cannot be judged": "4",
    },
}


@dataclasses.dataclass(frozen=True, slots=True)
class EvaluationTranslation:
    """A translated evaluation and, in words, every meaning the translation lost."""

    evaluation: AdmiraltyEvaluation | UkEvaluation | EuropolEvaluation
    lost: tuple[str, ...]

    @property
    def exact(self) -> bool:
        """Whether nothing was lost."""
        return not self.lost


def _axis(
    axis: str,
    grade: str,
    source_scheme: EvaluationScheme,
    target: EvaluationScheme,
    meanings: dict[EvaluationScheme, dict[str, str]],
    nearest: dict[EvaluationScheme, dict[str, str]],
    lost: list[str],
) -> str:
    meaning = meanings[source_scheme][grade]
    translated = nearest[target][meaning]
    target_meaning = meanings[target][translated]
    if target_meaning != meaning:
        lost.append(
            f"{axis} {source_scheme} {grade!r} ({meaning}) has no exact {target} equivalent; "
            f"translated as {translated!r} ({target_meaning})"
        )
    return translated


def translate_evaluation(
    evaluation: AdmiraltyEvaluation | UkEvaluation | EuropolEvaluation,
    to: EvaluationScheme,
) -> EvaluationTranslation:
    """Translate ``evaluation`` into scheme ``to``, reporting every loss of meaning."""
    if evaluation.scheme == to:
        return EvaluationTranslation(evaluation=evaluation, lost=())
    lost: list[str] = []
    scheme = EvaluationScheme(evaluation.scheme)
    source = _axis("source", evaluation.source, scheme, to, _SOURCE_MEANING, _NEAREST_SOURCE, lost)
    information = _axis(
        "information",
        evaluation.information,
        scheme,
        to,
        _INFORMATION_MEANING,
        _NEAREST_INFORMATION,
        lost,
    )
    if isinstance(evaluation, UkEvaluation):
        lost.append(
            f"handling {evaluation.handling!r} of uk-3x5x2 has no {to} equivalent; "
            "carry it in the message's handling code and conditions"
        )
    translated: AdmiraltyEvaluation | UkEvaluation | EuropolEvaluation
    if to is EvaluationScheme.UK_3X5X2:
        # Without a stated handling grade the cautious one applies: sharing only with conditions.
        lost.append(f"{scheme} has no handling grade; uk-3x5x2 handling set to 'C' (conditions)")
        translated = UkEvaluation.model_validate(
            {"scheme": to, "source": source, "information": information, "handling": "C"},
            strict=False,
        )
    elif to is EvaluationScheme.EUROPOL_4X4:
        translated = EuropolEvaluation.model_validate(
            {"scheme": to, "source": source, "information": information}, strict=False
        )
    else:
        translated = AdmiraltyEvaluation.model_validate(
            {"scheme": to, "source": source, "information": information}, strict=False
        )
    return EvaluationTranslation(evaluation=translated, lost=tuple(lost))
