"""Officers on the command line: once an adapter has officers, every command that shows content
needs one, with their own token and the read role; a view restricted to units is shown only to
an officer of one of them; the read log names the officer (s.62: "the person")."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Sequence

import pytest
from click.testing import CliRunner, Result

from broker import errors
from broker.adapter import Adapter
from broker.cli import cli
from broker.clock import FixedClock
from broker.ids import MessageId
from broker.pipeline.send import WITHHELD_REASON, Outgoing, accord_digest, withdrawal_for
from broker.policy import parse_accord
from broker.schema import HandlingCode, Message, labels_of, parse_message
from broker.schema.handling import (
    ConditionKind,
    HandlingCondition,
    NoDisseminationTo,
    RestrictToUnits,
)
from broker.schema.protocol import Withdrawal
from broker.store.officers import Role
from broker.trust import AccordInForce

from . import world
from .test_cli import _config
from .world import GB, RS, deliver, make_adapter, report


@pytest.fixture(autouse=True)
def _gb_rs_permits_h3(monkeypatch: pytest.MonkeyPatch) -> None:
    """gb-rs as it would read after the case-by-case exchange of letters its H3 note asks for
    (version 2, every flow also admitting H3), used by both adapters and the test gateway."""
    text = (world.ROOT / "policies" / "gb-rs.yaml").read_text(encoding="utf-8")
    amended = text.replace("version: 1\n", "version: 2\n", 1).replace(
        "[H0, H1, H2]", "[H0, H1, H2, H3]"
    )
    assert amended.count("H3]") >= 2
    accord = parse_accord(amended.encode(), source="gb-rs.yaml, amended")
    monkeypatch.setattr(world, "GB_RS", AccordInForce(accord, accord_digest(accord)))


_ONLY_MARITIME = RestrictToUnits(kind=ConditionKind.RESTRICT_TO_UNITS, units=("Maritime",))
_NO_TR = NoDisseminationTo(kind=ConditionKind.NO_DISSEMINATION_TO, partners=("TR",))


def _restricted(tmp_path: pathlib.Path, clock: FixedClock) -> tuple[str, str]:
    """RS holds one view GB restricted to RS's Maritime unit: the config and its id."""
    restricted = report().model_copy(
        update={"handling": HandlingCode.H3, "handling_conditions": (_ONLY_MARITIME,)}
    )
    sent = _from_gb_to_rs(tmp_path, clock, lambda _: restricted)
    return str(_config(tmp_path, tmp_path / "rs" / "inbox.sqlite")), sent.message_id


def _from_gb_to_rs(
    tmp_path: pathlib.Path, clock: FixedClock, build: Callable[[Adapter], Message]
) -> Outgoing:
    """GB's adapter seals what ``build`` makes (given GB's adapter) for RS, whose adapter
    stores it; the view sent."""
    uk = make_adapter(GB, tmp_path / "gb", clock=clock)
    serbia = make_adapter(RS, tmp_path / "rs", clock=clock)
    try:
        (sent,) = uk.submit(build(uk), to=[RS])
        assert isinstance(sent, Outgoing), sent
        assert serbia.receive(deliver(sent.envelope, recipient=RS)) == "stored"
        return sent
    finally:
        for adapter in (uk, serbia):
            adapter.journal.close()
            adapter.inbox.close()


def _withdrawal_of(
    uk: Adapter, message_id: str, reason: str, conditions: tuple[HandlingCondition, ...] | None
) -> Message:
    """GB's withdrawal of its view ``message_id`` to RS, from the view's fate."""
    (fate,) = [f for f in uk.journal.fates_of(message_id) if f.recipient == RS]
    assert fate.labels is not None
    return withdrawal_for(
        fate.labels,
        case_id=fate.case_id,
        withdraws=fate.message_id,
        reason=reason,
        conditions=conditions,
    )


def _run(args: Sequence[str], *, officer: str | None = None, token: str | None = None) -> Result:
    env = {"BROKER_OFFICER": officer, "BROKER_OFFICER_TOKEN": token}
    return CliRunner(env=env).invoke(cli, list(args))


def _denied(result: Result) -> str:
    """What the command said refusing access (the process exits with AccessError's code)."""
    assert isinstance(result.exception, errors.AccessError), result.output
    return str(result.exception)


ADMIN = "ops.lead"


def _add(config: str, officer_id: str, unit: str, *roles: str, admin: str | None = None) -> Result:
    """``officers add``, by the admin officer whose token is ``admin`` (None: by the OS
    account, as the first officer is added)."""
    granted = [arg for role in roles for arg in ("--role", role)]
    where = ["--config", config, "--agency", "BP", "--unit", unit]
    by = ADMIN if admin is not None else None
    return _run(["officers", "add", *where, *granted, officer_id], officer=by, token=admin)


def _first_admin(config: str) -> str:
    """The adapter's first officer, an administrator: their token."""
    return _token(_add(config, ADMIN, "IT", "admin"))


def _token(added: Result) -> str:
    assert added.exit_code == 0, added.output
    return added.stdout.strip()


def test_a_restricted_view_is_shown_only_to_an_officer_of_its_unit(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    config, message_id = _restricted(tmp_path, clock)
    show = ["inbox", "show", "--config", config, message_id]
    # before any officer is added, the adapter runs as before (the OS account reads)
    assert _run(show).exit_code == 0
    admin = _first_admin(config)
    maritime = _token(_add(config, "a.petrovic", "Maritime", "read", admin=admin))
    border = _token(_add(config, "b.jovanovic", "Border Police", "read", admin=admin))
    clerk = _token(_add(config, "c.nikolic", "Maritime", "submit", admin=admin))

    assert "has officers: name yours with --officer" in _denied(_run(show))
    outside = _denied(_run(show, officer="b.jovanovic", token=border))
    assert "restricted to Maritime; officer b.jovanovic is in Border Police" in outside
    assert "wrong token" in _denied(_run(show, officer="a.petrovic", token=border))
    assert "does not hold the read role" in _denied(_run(show, officer="c.nikolic", token=clerk))
    shown = _run(show, officer="a.petrovic", token=maritime)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["message_id"] == message_id

    out = tmp_path / "bundle.stix.json"
    export = ["inbox", "export", "--config", config, "--out", str(out)]
    assert "restricted to Maritime" in _denied(_run(export, officer="b.jovanovic", token=border))
    assert not out.exists()

    # that a view names someone is its content too: a search leaves it out for other units
    search = ["inbox", "search", "--json", "--config", config, "testovic"]
    assert "has officers" in _denied(_run(search))
    assert _run(search, officer="b.jovanovic", token=border).output == ""
    found = _run(search, officer="a.petrovic", token=maritime)
    assert [json.loads(line)["message_id"] for line in found.output.splitlines()] == [message_id]

    reads = _run(["inbox", "reads", "--json", "--config", config, message_id])
    logged = [json.loads(line) for line in reads.output.splitlines()]
    # one read by the OS account before officers, one by the officer; the refusals read nothing
    assert [r["reader"] for r in logged][1:] == ["a.petrovic (BP, Maritime)"]
    assert len(logged) == 2

    # the s.62 export: each consultation, with the person split into officer, agency, unit
    export_s62 = ["audit", "s62-export", "--format", "json", "--config", config]
    exported = _run(export_s62, officer=ADMIN, token=admin)
    rows = [json.loads(line) for line in exported.output.splitlines()]
    assert [(r["action"], r["officer"], r["agency"], r["unit"]) for r in rows][1:] == [
        ("show", "a.petrovic", "BP", "Maritime")
    ]
    assert {(r["kind"], r["message_id"], r["counterpart"]) for r in rows} == {
        ("consultation", message_id, "GB")
    }
    assert rows[0]["officer"] is None  # the OS account read before there were officers
    assert "does not hold the admin role" in _denied(
        _run(export_s62, officer="a.petrovic", token=maritime)
    )


def test_officers_are_listed_reissued_and_disabled(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    config, message_id = _restricted(tmp_path, clock)
    admin = _first_admin(config)
    token = _token(_add(config, "a.petrovic", "Maritime", "read", "approve", admin=admin))
    listed = _run(["officers", "list", "--json", "--config", config])
    (row, _) = [json.loads(line) for line in listed.output.splitlines()]
    assert row["roles"] == ["approve", "read"]
    assert row["unit"] == "Maritime"
    assert row["disabled_at"] is None
    assert token not in listed.output

    reissue = ["officers", "reissue", "--config", config, "a.petrovic"]
    # only an admin officer changes the directory: not a colleague, not the OS account
    assert "has officers" in _denied(_run(reissue))
    assert "does not hold the admin role" in _denied(
        _run(reissue, officer="a.petrovic", token=token)
    )
    fresh = _token(_run(reissue, officer=ADMIN, token=admin))
    show = ["inbox", "show", "--config", config, message_id]
    assert "wrong token" in _denied(_run(show, officer="a.petrovic", token=token))
    assert _run(show, officer="a.petrovic", token=fresh).exit_code == 0
    disable = ["officers", "disable", "--config", config, "a.petrovic"]
    assert _run(disable, officer=ADMIN, token=admin).exit_code == 0
    assert "disabled" in _denied(_run(show, officer="a.petrovic", token=fresh))
    logged = _run(["officers", "log", "--json", "--config", config])
    changes = [json.loads(line) for line in logged.output.splitlines()]
    assert [(c["action"], c["officer_id"]) for c in changes] == [
        ("add admin", ADMIN),
        ("add approve,read", "a.petrovic"),
        ("reissue", "a.petrovic"),
        ("disable", "a.petrovic"),
    ]
    assert {c["changed_by"] for c in changes[1:]} == {"ops.lead (BP, IT)"}


@pytest.mark.parametrize("officer_id", ["A.Petrovic", "a petrovic", ""])
def test_an_invalid_officer_id_is_a_usage_error(
    tmp_path: pathlib.Path, clock: FixedClock, officer_id: str
) -> None:
    config, _ = _restricted(tmp_path, clock)
    added = _add(config, officer_id, "Maritime", "admin")
    assert isinstance(added.exception, errors.UsageError), added.output


def test_the_recipient_sees_which_officer_of_the_sender_submitted_a_view(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """GB's officer d.clarke sends; RS's inbox lists and shows the origin its signed header
    names (agency, unit, officer), as the sender's word for its own person."""
    uk = make_adapter(GB, tmp_path / "gb", clock=clock)
    serbia = make_adapter(RS, tmp_path / "rs", clock=clock)
    uk.inbox.officers.add(
        "ops.lead", agency="Border Force", unit="IT", roles=[Role.ADMIN], now=clock.now(), by="t"
    )
    uk.inbox.officers.add(
        "d.clarke",
        agency="Border Force",
        unit="Maritime Intelligence",
        roles=[Role.SUBMIT],
        now=clock.now(),
        by="ops.lead",
    )
    with pytest.raises(errors.AccessError, match="does not hold the submit role"):
        uk.submit(report(), to=[RS], officer="ops.lead")
    uk.submit(report(), to=[RS], officer="d.clarke")
    (entry,) = uk.journal.pending()
    assert serbia.receive(deliver(entry.envelope, recipient=RS)) == "stored"
    for adapter in (uk, serbia):
        adapter.journal.close()
        adapter.inbox.close()
    config = str(_config(tmp_path, tmp_path / "rs" / "inbox.sqlite"))
    origin = {"agency": "Border Force", "officer": "d.clarke", "unit": "Maritime Intelligence"}
    listed = _run(["inbox", "list", "--json", "--config", config])
    assert json.loads(listed.stdout)["origin"] == origin
    shown = _run(["inbox", "show", "--config", config, entry.message_id])
    assert json.loads(shown.stdout)["origin"] == origin


def test_a_restricted_views_withdrawal_tells_no_unit_why(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """Every unit at RS reads withdrawals, so that of a view restricted to Maritime says it
    was withdrawn, not why; it binds no conditions of its own, and still destroys the view."""
    config, message_id = _restricted(tmp_path, clock)

    def withdrawal(uk: Adapter) -> Message:
        (fate,) = [f for f in uk.journal.fates_of(message_id) if f.recipient == RS]
        assert fate.conditions == (_ONLY_MARITIME,)  # kept with its fate
        made = _withdrawal_of(uk, message_id, "the source on the Aurora", fate.conditions)
        assert (made.handling, made.handling_conditions) == (HandlingCode.H2, ())
        assert isinstance(made.body, Withdrawal)
        assert made.body.reason == WITHHELD_REASON
        return made

    sent = _from_gb_to_rs(tmp_path, clock, withdrawal)
    admin = _first_admin(config)
    border = _token(_add(config, "b.jovanovic", "Border Police", "read", admin=admin))
    notice = _run(["inbox", "show", "--config", config, sent.message_id], officer="b.jovanovic",
                  token=border)  # fmt: skip
    assert notice.exit_code == 0, notice.output
    assert json.loads(notice.output)["message"]["body"]["reason"] == WITHHELD_REASON
    gone = _run(["inbox", "show", "--config", config, message_id], officer="b.jovanovic",
                token=border)  # fmt: skip
    assert f"withdrawn by GB ({sent.message_id})" in str(gone.exception)
    assert "Aurora" not in str(gone.exception) + gone.output + notice.output


def test_a_withdrawal_restricted_to_units_keeps_its_reason_out_of_the_shredded_row(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """Our adapter sends no such withdrawal, but the protocol allows one: its recipient keeps
    its reason from the shredded view's row, which any reader is shown, and shows the
    withdrawal itself to its units only."""
    config, message_id = _restricted(tmp_path, clock)

    def restricted(uk: Adapter) -> Message:
        # as another implementation might send it: H3, restricted, its reason in it
        plain = _withdrawal_of(uk, message_id, "the Aurora", conditions=())
        return plain.model_copy(
            update={"handling": HandlingCode.H3, "handling_conditions": (_ONLY_MARITIME,)}
        )

    sent = _from_gb_to_rs(tmp_path, clock, restricted)
    admin = _first_admin(config)
    border = _token(_add(config, "b.jovanovic", "Border Police", "read", admin=admin))
    maritime = _token(_add(config, "a.petrovic", "Maritime", "read", admin=admin))
    show_notice = ["inbox", "show", "--config", config, sent.message_id]
    assert "restricted to Maritime" in _denied(
        _run(show_notice, officer="b.jovanovic", token=border)
    )
    shown = _run(show_notice, officer="a.petrovic", token=maritime)
    assert json.loads(shown.output)["message"]["body"]["reason"] == "the Aurora"
    gone = _run(["inbox", "show", "--config", config, message_id], officer="b.jovanovic",
                token=border)  # fmt: skip
    assert f"withdrawn by GB ({sent.message_id})" in str(gone.exception)
    assert "its reason is restricted to units: read the withdrawal" in str(gone.exception)
    assert "Aurora" not in str(gone.exception) + gone.output


@pytest.mark.parametrize(
    ("handling", "conditions", "withheld"),
    [
        # journalled by a release that kept no conditions: an H3 view may have been restricted
        (HandlingCode.H3, None, True),
        (HandlingCode.H3, (_ONLY_MARITIME,), True),
        (HandlingCode.H3, (_NO_TR,), False),
        (HandlingCode.H2, None, False),
        (HandlingCode.H1, (), False),
    ],
)
def test_only_a_view_that_was_or_may_have_been_restricted_has_its_reason_withheld(
    handling: HandlingCode, conditions: tuple[HandlingCondition, ...] | None, withheld: bool
) -> None:
    """Whatever the view bound, its withdrawal binds nothing (H2 for H3: it must pass where
    the view did), and keeps the reason from the recipient only where units may not know."""
    view = report().model_copy(
        update={
            "handling": handling,
            "handling_conditions": conditions or ((_ONLY_MARITIME,) if handling == "H3" else ()),
        }
    )
    withdrawal = withdrawal_for(
        labels_of(view),
        case_id=None,
        withdraws=MessageId("0190f0f0-0000-7000-8000-000000000001"),
        reason="wrong boat",
        conditions=conditions,
    )
    assert isinstance(withdrawal.body, Withdrawal)
    assert (withdrawal.body.reason == WITHHELD_REASON) is withheld
    assert withdrawal.handling is (HandlingCode.H2 if handling is HandlingCode.H3 else handling)
    assert withdrawal.handling_conditions == ()


def test_only_an_officer_of_a_restricted_views_unit_asks_about_it_or_passes_it_on(
    tmp_path: pathlib.Path, clock: FixedClock
) -> None:
    """Asking the originator about a view, and forwarding it under a grant, use the view:
    an officer outside its units is refused before anything else is read or checked."""
    config, message_id = _restricted(tmp_path, clock)
    grant = {
        **report().model_dump(
            mode="json", include={"classification", "tlp", "handling", "purposes"}
        ),
        "type": "onward.grant",
        "schema_version": 1,
        "body": {
            "request": "01900000-0000-7000-8000-0000000000bb",
            "original_message": message_id,
            "decision": "granted",
            "third_party_country": "MK",
            "conditions": [],
            "fields_granted": ["body.summary"],
            "valid_until": "2026-12-08T12:00:00Z",
        },
    }
    sent = _from_gb_to_rs(tmp_path, clock, lambda _: parse_message(json.dumps(grant).encode()))
    admin = _first_admin(config)
    border = _token(_add(config, "b.jovanovic", "Border Police", "read", "submit", admin=admin))
    maritime = _token(_add(config, "a.petrovic", "Maritime", "read", "submit", admin=admin))
    ask = ["onward", "request", "--config", config, "--to", "MK", "--authority", "MUP MK",
           "--fields", "body.summary", "--justification", "same crossing", message_id]  # fmt: skip
    forward = ["onward", "forward", "--config", config, sent.message_id]
    for args in (ask, forward):
        refused = _denied(_run(args, officer="b.jovanovic", token=border))
        assert "restricted to Maritime; officer b.jovanovic is in Border Police" in refused
        # an officer of the unit gets past it, to the trust files (which this adapter lacks)
        passed = _run(args, officer="a.petrovic", token=maritime)
        assert passed.exit_code != 0
        assert not isinstance(passed.exception, errors.AccessError), passed.output
        assert "cannot read trusted roots" in str(passed.exception)
