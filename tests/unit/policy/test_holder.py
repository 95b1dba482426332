"""AccordHolder: a daemon keeps its last good accord through bad reloads and rollbacks."""

from __future__ import annotations

import pathlib

import pytest

from broker.errors import PolicyError
from broker.policy import Accord, AccordHolder, load_accord

from .conftest import SMALL_ACCORD


@pytest.fixture
def accord_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "gb-zz.yaml"
    path.write_text(SMALL_ACCORD, encoding="utf-8")
    return path


def test_a_newer_version_replaces_the_accord(accord_file: pathlib.Path) -> None:
    """Raising the version with new rules is accepted."""
    holder = AccordHolder.from_file(accord_file)
    accord_file.write_text(
        SMALL_ACCORD.replace("version: 2", "version: 3").replace(
            "retention_days: 365", "retention_days: 180"
        ),
        encoding="utf-8",
    )
    result = holder.reload(accord_file)
    assert result.accepted
    assert holder.accord.version == 3


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (("max_tlp: AMBER", "max_tlp: AMBR"), "not a TLP level"),
        (("version: 2", "version: 1"), "rollback refused"),
        (("retention_days: 365", "retention_days: 999"), "changes version 2 in place"),
        (("accord: gb-zz", "accord: gb-yy"), "holds accord gb-yy, not gb-zz"),
    ],
    ids=["malformed", "rollback", "edited-in-place", "other-accord"],
)
def test_a_bad_reload_keeps_the_old_accord(
    accord_file: pathlib.Path, edit: tuple[str, str], why: str
) -> None:
    """The refused file does not replace the accord in force, and the result says why."""
    holder = AccordHolder.from_file(accord_file)
    before = holder.accord
    accord_file.write_text(SMALL_ACCORD.replace(*edit), encoding="utf-8")
    result = holder.reload(accord_file)
    assert not result.accepted
    assert why in result.reason
    assert holder.accord is before


def test_reloading_the_same_file_changes_nothing(accord_file: pathlib.Path) -> None:
    """An unchanged file is not an error and not a switch."""
    holder = AccordHolder.from_file(accord_file)
    result = holder.reload(accord_file)
    assert (result.accepted, result.reason) == (False, "unchanged")


def test_a_missing_file_on_reload_keeps_the_old_accord(accord_file: pathlib.Path) -> None:
    """A file deleted under the daemon is refused like any other bad file."""
    holder = AccordHolder.from_file(accord_file)
    accord_file.unlink()
    assert "cannot read accord" in holder.reload(accord_file).reason


def test_the_first_load_must_succeed(tmp_path: pathlib.Path) -> None:
    """With no accord to fall back on, a bad first file is fatal."""
    with pytest.raises(PolicyError):
        AccordHolder.from_file(tmp_path / "none.yaml")


def test_a_reload_result_is_not_a_boolean(accord_file: pathlib.Path) -> None:
    """Callers must read `.accepted`."""
    result = AccordHolder.from_file(accord_file).reload(accord_file)
    with pytest.raises(TypeError):
        bool(result)


def test_the_holder_reloads_through_the_loader_it_was_given(accord_file: pathlib.Path) -> None:
    """A strict daemon's loader (e.g. co-signature checks) decides every reload too."""

    def refuse_all(path: pathlib.Path) -> Accord:
        raise PolicyError(f"{path}: not co-signed")

    holder = AccordHolder(load_accord(accord_file), loader=refuse_all)
    accord_file.write_text(SMALL_ACCORD.replace("version: 2", "version: 3"), encoding="utf-8")
    result = holder.reload(accord_file)
    assert not result.accepted
    assert "not co-signed" in result.reason
    assert holder.accord.version == 2
