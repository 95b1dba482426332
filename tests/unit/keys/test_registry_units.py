"""The units a partner declares in the registry (`broker registry set-units`): their shape,
the edit, what a root holder is shown before signing, and `registry show`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker import errors
from broker.cli import cli
from broker.ids import PartnerCode
from broker.keys import PartnerUnit, RegistryDraft, TrustEffect, diff_registries
from broker.keys.testing import RegistryFixture, build_registry

NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
GB, RS = PartnerCode("GB"), PartnerCode("RS")
MARITIME = PartnerUnit("Border Force", "Maritime Intelligence")
OIC = PartnerUnit("NCA", "Organised Immigration Crime")


@pytest.fixture
def fixture() -> RegistryFixture:
    return build_registry(now=NOW, partners=("GB", "RS"), roots=1, threshold=1)


def _with_units(fixture: RegistryFixture, *units: PartnerUnit) -> RegistryDraft:
    draft = fixture.edit()
    draft.set_units(GB, list(units))
    return draft


def _signed_partner(draft: RegistryDraft, code: str) -> dict[str, object]:
    signed = json.loads(draft.to_bytes())["signed"]
    partner: dict[str, object] = next(p for p in signed["partners"] if p["code"] == code)
    return partner


def test_units_are_signed_content_replaced_whole_and_removed_by_none(
    fixture: RegistryFixture,
) -> None:
    draft = _with_units(fixture, MARITIME, OIC)
    assert draft.version == fixture.registry.version + 1
    assert _signed_partner(draft, "GB")["units"] == [
        {"agency": "Border Force", "unit": "Maritime Intelligence"},
        {"agency": "NCA", "unit": "Organised Immigration Crime"},
    ]
    newer, _ = fixture.resign(draft, now=NOW)
    assert newer.units_of(GB) == (MARITIME, OIC)
    assert newer.units_of(RS) is None
    draft.set_units(GB, [OIC])
    assert draft.unverified_registry.units_of(GB) == (OIC,)
    draft.set_units(GB, None)
    assert "units" not in _signed_partner(draft, "GB")
    assert draft.unverified_registry.units_of(GB) is None


@pytest.mark.parametrize(
    ("units", "why"),
    [
        ([MARITIME, PartnerUnit("NCA", MARITIME.unit)], "lists a unit name twice"),
        ([PartnerUnit("Border Force ", "Maritime")], "not an agency or unit name"),
        ([PartnerUnit("Border Force", "Mari\ntime")], "not an agency or unit name"),
        ([PartnerUnit("Border Force", "x" * 121)], "not an agency or unit name"),
        # names that print alike must be one string: NFD, zero-width and the like are refused
        ([PartnerUnit("Granic\u030cna policija", "UKP")], "not an agency or unit name"),
        ([PartnerUnit("Border Force", "Operations\u200b")], "not an agency or unit name"),
    ],
)
def test_a_list_a_recipient_could_not_hold_is_refused(
    fixture: RegistryFixture, units: list[PartnerUnit], why: str
) -> None:
    """Units named twice (restrict-to-units names a unit alone) or of a shape no officer
    directory holds never enter a registry, by this edit or by a hand-written document."""
    with pytest.raises(errors.RegistryError, match=why):
        fixture.edit().set_units(GB, units)


def test_an_empty_list_or_an_unknown_partner_is_a_usage_error(fixture: RegistryFixture) -> None:
    with pytest.raises(errors.UsageError, match="one unit at least"):
        fixture.edit().set_units(GB, [])
    with pytest.raises(errors.UsageError, match="partner MK is not in the registry"):
        fixture.edit().set_units(PartnerCode("MK"), [MARITIME])


def test_a_root_holder_sees_what_a_change_of_units_does(fixture: RegistryFixture) -> None:
    """Declaring units narrows what GB's officers may name (withdraws); adding one grants;
    removing the list checks nothing any more (grants)."""
    first, first_data = fixture.resign(_with_units(fixture, MARITIME), now=NOW)
    (declared,) = diff_registries(fixture.registry, first)
    assert declared.effect is TrustEffect.WITHDRAWS
    assert (
        "partner GB declares its units: 'Maritime Intelligence' of 'Border Force'" in declared.text
    )

    second_draft = RegistryDraft.from_bytes(first_data)
    second_draft.set_units(GB, [OIC])
    changes = diff_registries(first, second_draft.unverified_registry)
    assert [(c.effect, c.text) for c in changes] == [
        (TrustEffect.GRANTS, "partner GB adds unit 'Organised Immigration Crime' of 'NCA'"),
        (
            TrustEffect.WITHDRAWS,
            "partner GB removes unit 'Maritime Intelligence' of 'Border Force'",
        ),
    ]
    second_draft.set_units(GB, None)
    (dropped,) = diff_registries(first, second_draft.unverified_registry)
    assert dropped.effect is TrustEffect.GRANTS
    assert "no longer declares its units" in dropped.text


def test_a_name_holding_commas_and_brackets_reads_as_one_unit_in_the_diff(
    fixture: RegistryFixture,
) -> None:
    """Names may hold punctuation: quoted, one unit never reads as two to a root holder."""
    tricky = PartnerUnit("NCA", "Analysis (Border Force), Intelligence")
    draft = _with_units(fixture, tricky)
    (declared,) = diff_registries(fixture.registry, draft.unverified_registry)
    assert declared.text.endswith(
        "declares its units: 'Analysis (Border Force), Intelligence' of 'NCA'; "
        "a view naming another is refused"
    )


def test_set_units_edits_the_document_and_show_lists_them(
    fixture: RegistryFixture, tmp_path: Path
) -> None:
    document = tmp_path / "registry.json"
    document.write_bytes(fixture.data)
    runner = CliRunner()
    added = runner.invoke(
        cli,
        [
            *("registry", "set-units", str(document), "GB"),
            *("--unit", "Border Force", "Maritime Intelligence", "--unit", "NCA", "Политика"),
        ],
    )
    assert added.exit_code == 0, added.output
    assert "partner GB declares 2 unit(s)" in added.output
    draft = RegistryDraft.from_bytes(document.read_bytes())
    assert draft.unverified_registry.units_of(GB) == (MARITIME, PartnerUnit("NCA", "Политика"))
    shown = runner.invoke(cli, ["registry", "show", str(document)])
    assert (
        "GB units: 'Maritime Intelligence' of 'Border Force', 'Политика' of 'NCA'" in shown.output
    )

    for args, why in [
        (["GB"], "give --unit AGENCY UNIT"),
        (["GB", "--none", "--unit", "A", "B"], "give --unit AGENCY UNIT"),
        (["gb", "--none"], "two capital letters"),
        (["GB", "--unit", "NCA", " Cyber"], "a unit is 1 to 120 characters in Unicode NFC"),
    ]:
        refused = runner.invoke(cli, ["registry", "set-units", str(document), *args])
        assert refused.exit_code == 2, refused.output
        assert why in refused.output
    cleared = runner.invoke(cli, ["registry", "set-units", str(document), "GB", "--none"])
    assert cleared.exit_code == 0, cleared.output
    assert RegistryDraft.from_bytes(document.read_bytes()).unverified_registry.units_of(GB) is None


def test_a_partner_joining_with_units_shows_them_to_the_root_holders(
    fixture: RegistryFixture,
) -> None:
    joining = build_registry(
        now=NOW,
        partners=("GB", "RS", "MK"),
        units={"MK": [("Министерство", "Управа")]},
        roots=1,
        threshold=1,
    )
    changes = [c.text for c in diff_registries(fixture.registry, joining.registry)]
    assert "partner MK lists units: 'Управа' of 'Министерство'" in changes
