"""The exception tree: one root, integrity apart from availability, documented exit codes."""

from __future__ import annotations

import inspect

import pytest

from broker import errors

ALL_ERRORS = [
    obj
    for _, obj in inspect.getmembers(errors, inspect.isclass)
    if issubclass(obj, errors.BrokerError)
]


def test_every_exported_error_descends_from_the_root() -> None:
    """Callers can catch BrokerError and know they have caught everything of ours."""
    exported = {getattr(errors, name) for name in errors.__all__}
    assert exported == set(ALL_ERRORS)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_integrity_and_availability_are_disjoint(cls: type[errors.BrokerError]) -> None:
    """No error is both refused-for-good and worth retrying."""
    assert not (
        issubclass(cls, errors.IntegrityError) and issubclass(cls, errors.AvailabilityError)
    )


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_exit_codes_are_documented(cls: type[errors.BrokerError]) -> None:
    """Every exit status an error can produce appears in docs/CLI.md's table."""
    from pathlib import Path

    table = (Path(__file__).parents[2] / "docs" / "CLI.md").read_text()
    assert f"| {cls.exit_code} |" in table


def test_diagnostics_is_one_line_with_the_detail() -> None:
    """The CLI prints diagnostics(): the detail when given, the class meaning otherwise."""
    assert errors.SchemaError("body.name: too long").diagnostics() == "body.name: too long"
    assert "signature" in errors.VerificationError().diagnostics()
