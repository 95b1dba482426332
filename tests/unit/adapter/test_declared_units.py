"""Units a partner declares in the registry, as its operators meet them: `broker officers
add` adds an officer only to a declared unit of its own partner, and `broker send` refuses a
restrict-to-units condition naming a unit the recipient does not declare, before queuing
anything. On a provisioned federation's real files, with no Kafka."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import pathlib
from collections.abc import Iterator, Sequence
from typing import NoReturn

import pytest
import structlog.testing
from click.testing import CliRunner, Result

from broker import errors
from broker.adapter import Adapter, parse_submission, write_submission
from broker.adapter.receiving import log_rejection
from broker.cli import cli
from broker.cli._reader import inbox_of
from broker.clock import FixedClock
from broker.config import AdapterConfig, load_config
from broker.demo.federation import Federation, current_accords, provision
from broker.demo.scenario import network_report
from broker.keys.testing import RegistryFixture, build_registry
from broker.pipeline.receive import Rejected
from broker.pipeline.send import WITHHELD_REASON
from broker.reasons import ReasonCode
from broker.runtime import Metrics
from broker.schema import HandlingCode, message_bytes
from broker.schema.handling import ConditionKind, RestrictToUnits
from broker.schema.protocol import Withdrawal
from broker.store import officers
from broker.store.officers import Role

from .world import GB, NOW, RS, WORLD, make_adapter, process_spool, report

pytestmark = pytest.mark.slow

UNITS = {
    "GB": [("Border Force", "Maritime Intelligence"), ("Border Force", "IT")],
    "RS": [("MUP", "UKP")],
}


@pytest.fixture(autouse=True)
def _logging(logging_put_back: None) -> None:
    """Every test here runs the CLI in process."""


@dataclasses.dataclass(frozen=True)
class Declared:
    """A federation whose registry lists GB's and RS's units (MK lists none), and the tokens
    of GB's admin ``ops.lead`` (IT) and submitter ``d.clarke`` (Maritime Intelligence)."""

    federation: Federation
    admin: str
    clerk: str

    @property
    def config(self) -> str:
        return str(self.federation.config_path("GB"))


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> Declared:
    root = tmp_path_factory.mktemp("declared")
    accords = current_accords(root / "accords-source", now=dt.datetime.now(dt.UTC))
    federation = provision(
        root / "federation", bootstrap="127.0.0.1:9", accords=accords, units=UNITS
    )
    process_spool(str(federation.config_path("GB")))  # the first run makes its store
    add = ["officers", "add", "--config", str(federation.config_path("GB"))]
    add += ["--agency", "Border Force"]
    admin = _run([*add, "--unit", "IT", "--role", "admin", "ops.lead"])
    assert admin.exit_code == 0, admin.output
    clerk = _run(
        [*add, "--unit", "Maritime Intelligence", "--role", "submit", "d.clarke"],
        officer="ops.lead",
        token=admin.stdout.strip(),
    )
    assert clerk.exit_code == 0, clerk.output
    return Declared(federation, admin.stdout.strip(), clerk.stdout.strip())


@contextlib.contextmanager
def _uk_officer(
    tmp_path: pathlib.Path, unit: str, *, world: RegistryFixture = WORLD
) -> Iterator[Adapter]:
    """GB's adapter on ``world``'s keys, with one officer, ``o.clerk`` of ``unit``."""
    uk = make_adapter(GB, tmp_path / "gb", clock=FixedClock(NOW), spool=True, world=world)
    try:
        uk.inbox.officers.add(
            "o.clerk",
            agency="Border Force",
            unit=unit,
            roles=[Role.ADMIN, Role.SUBMIT],
            now=NOW,
            by="test",
        )
        yield uk
    finally:
        uk.journal.close()
        uk.inbox.close()


def _run(args: Sequence[str], *, officer: str | None = None, token: str | None = None) -> Result:
    env = {"BROKER_OFFICER": officer, "BROKER_OFFICER_TOKEN": token}
    return CliRunner(env=env).invoke(cli, list(args))


def test_an_officer_is_added_only_to_a_unit_the_registry_lists(declared: Declared) -> None:
    add = ["officers", "add", "--config", declared.config, "--role", "read"]
    for agency, unit in [("Border Force", "Maritime Intel"), ("NCA", "IT")]:
        refused = _run(
            [*add, "--agency", agency, "--unit", unit, "a.stray"],
            officer="ops.lead",
            token=declared.admin,
        )
        assert isinstance(refused.exception, errors.UsageError), refused.output
        assert f"unit {unit!r} of agency {agency!r} is not one GB lists" in str(refused.exception)
        assert "ask the registry's root holders" in str(refused.exception)
    listed = _run(
        ["officers", "list", "--json", "--config", declared.config],
        officer="ops.lead",
        token=declared.admin,
    )
    assert listed.exit_code == 0, listed.output
    officers = {json.loads(line)["officer_id"] for line in listed.stdout.splitlines()}
    assert {"ops.lead", "d.clarke"} <= officers
    assert "a.stray" not in officers


def test_send_refuses_restrict_to_units_no_unit_of_the_recipient_meets(
    declared: Declared, tmp_path: pathlib.Path
) -> None:
    """RS lists UKP only: restricted to SBPOK, no officer at RS could read it, so RS is
    refused and nothing is queued; MK lists no units, so nothing of its units is checked."""
    only = RestrictToUnits(kind=ConditionKind.RESTRICT_TO_UNITS, units=("SBPOK",))
    restricted = network_report("GB-UNITS-1").model_copy(
        update={"handling": HandlingCode.H3, "handling_conditions": (only,)}
    )
    message = tmp_path / "restricted.json"
    message.write_bytes(message_bytes(restricted))
    send = ["send", "--json", "--config", declared.config, str(message)]
    sent = _run([*send, "--to", "RS,MK"], officer="d.clarke", token=declared.clerk)
    assert isinstance(sent.exception, errors.PolicyError), sent.output
    rs, mk = json.loads(sent.stdout)["views"]
    assert (rs["state"], rs["reason_code"]) == ("refused", "unlisted_unit")
    assert "so no officer there could read it; RS does not list 'SBPOK'" in rs["reason"]
    assert rs["reason"].endswith("(units: 'UKP' of 'MUP')")
    # gb-mk admits no H3: MK is refused by its accord, never for its units
    assert (mk["recipient"], mk["reason_code"]) == ("MK", "policy_denied")
    assert list((declared.federation.spool_dir("GB") / "incoming").iterdir()) == []


def test_withdrawing_a_restricted_view_sends_no_reason_and_says_so(
    declared: Declared, tmp_path: pathlib.Path
) -> None:
    """`broker withdraw` of a view TR restricted to GB's Maritime Intelligence (TR-GB-OPS
    admits H3) queues a withdrawal that says the view was withdrawn, not why, since every
    unit at GB reads withdrawals, and tells the operator so; its markings stay the view's."""
    config = str(declared.federation.config_path("TR"))
    process_spool(config)  # the first run makes its stores
    only = RestrictToUnits(kind=ConditionKind.RESTRICT_TO_UNITS, units=("Maritime Intelligence",))
    restricted = network_report("TR-UNITS-1").model_copy(
        update={"handling": HandlingCode.H3, "handling_conditions": (only,)}
    )
    message = tmp_path / "restricted.json"
    message.write_bytes(message_bytes(restricted))
    sent = _run(["send", "--json", "--config", config, "--to", "GB", str(message)])
    assert sent.exit_code == 0, sent.output
    (view,) = json.loads(sent.stdout)["views"]
    process_spool(config)
    withdraw = ["withdraw", "--config", config, "--reason", "source burned", view["message_id"]]
    withdrawn = _run(withdraw)
    assert withdrawn.exit_code == 0, withdrawn.output
    assert "the withdrawal says it was withdrawn, not why" in withdrawn.stderr
    (queued,) = (declared.federation.spool_dir("TR") / "incoming").iterdir()
    withdrawal = parse_submission(queued.read_bytes()).message
    assert isinstance(withdrawal.body, Withdrawal)
    assert withdrawal.body.reason == WITHHELD_REASON
    assert (withdrawal.handling, withdrawal.tlp) == (HandlingCode.H2, restricted.tlp)
    process_spool(config)  # sealed: TR's spool is left empty


def test_the_adapter_refuses_to_seal_for_an_officer_of_a_unit_its_partner_no_longer_lists(
    tmp_path: pathlib.Path,
) -> None:
    """An officer was added to Maritime Intelligence before GB's list named only IT: the
    adapter seals nothing under their name, and says why where the spool's reasons go."""
    world = build_registry(now=NOW, units={"GB": [("Border Force", "IT")]})
    with _uk_officer(tmp_path, "Maritime Intelligence", world=world) as uk:
        assert uk.spool is not None
        queued = write_submission(uk.spool.root, report(), [RS], officer="o.clerk")
        uk.process_spool()
        assert uk.journal.pending() == ()
        reasons = list(uk.spool.root.rglob(f"{queued.name}.reason"))
        assert reasons, list(uk.spool.root.rglob("*"))
        text = reasons[0].read_text()
        assert "unlisted_unit" in text
        assert "'Maritime Intelligence' of agency 'Border Force' is not one GB lists" in text


def test_send_refuses_every_recipient_for_an_officer_of_an_unlisted_unit(
    declared: Declared, tmp_path: pathlib.Path
) -> None:
    """An officer added before GB's list left out their unit (written to the directory
    directly, as it stood then) may still sign in, but `broker send` queues nothing for them
    and says why, as the adapter would refuse to seal it."""
    with inbox_of(load_config(declared.config, AdapterConfig)) as inbox:
        token = inbox.officers.add(
            "o.stale",
            agency="Border Force",
            unit="Old Unit",
            roles=[Role.SUBMIT],
            now=dt.datetime.now(dt.UTC),
            by="ops.lead",
        )
    message = tmp_path / "report.json"
    message.write_bytes(message_bytes(network_report("GB-UNITS-2")))
    send = ["send", "--json", "--config", declared.config, "--to", "RS,MK", str(message)]
    sent = _run(send, officer="o.stale", token=token)
    assert isinstance(sent.exception, errors.PolicyError), sent.output
    views = json.loads(sent.stdout)["views"]
    assert [(v["recipient"], v["reason_code"]) for v in views] == [
        ("RS", "unlisted_unit"),
        ("MK", "unlisted_unit"),
    ]
    assert "officer o.stale's unit 'Old Unit' of agency 'Border Force'" in views[0]["reason"]
    incoming = declared.federation.spool_dir("GB") / "incoming"
    assert list(incoming.iterdir()) == []

    # nor do the other commands that queue in an officer's name: a withdrawal, here
    sent = _run([*send[:-3], "--to", "RS", str(message)], officer="d.clarke", token=declared.clerk)
    (view,) = json.loads(sent.stdout)["views"]
    process_spool(declared.config)
    withdraw = ["withdraw", "--config", declared.config, "--reason", "wrong", view["message_id"]]
    refused = _run(withdraw, officer="o.stale", token=token)
    assert isinstance(refused.exception, errors.PolicyError), refused.output
    assert "unlisted_unit: officer o.stale's unit 'Old Unit'" in str(refused.exception)
    assert list(incoming.iterdir()) == []


@pytest.mark.parametrize(
    ("code", "alerts"),
    [
        (ReasonCode.UNLISTED_UNIT, True),
        (ReasonCode.LABEL_MISMATCH, True),
        (ReasonCode.STALE, False),
    ],
)
def test_a_refusal_for_what_the_sender_lied_about_is_a_security_alert(
    code: ReasonCode, alerts: bool
) -> None:
    """A recipient refusing an origin of an unlisted unit means the sender signed it and a
    gateway passed it: alerted as an under-declared label is, unlike a stale envelope."""
    rejected = Rejected(code, "why", sender=GB)
    counter = Metrics().counter("xb_test_rejected_total", "test", labels=("reason_code",))
    with structlog.testing.capture_logs() as logs:
        log_rejection(rejected, counter)
    alerted = [entry for entry in logs if entry["event"] == "security_alert"]
    assert [entry["alert"] for entry in alerted] == ([str(code)] if alerts else [])


def test_an_officer_named_under_the_earlier_rule_has_submissions_rejected_not_a_stop(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An officer added before names had to be NFC with single spaces (written here as the
    earlier rule let them be) cannot be named in a header: their submission is rejected with
    the reason, and the spool goes on; so does it past a file that fails in any other way."""
    monkeypatch.setattr(officers, "check_name", lambda value, *, what: value)
    with _uk_officer(tmp_path, "Maritime  Intelligence") as uk:
        assert uk.spool is not None
        old = write_submission(uk.spool.root, report(), [RS], officer="o.clerk")
        uk.process_spool()
        reason = (uk.spool.root / "rejected" / f"{old.name}.reason").read_text()
        assert "officer o.clerk (Border Force, Maritime  Intelligence)" in reason
        assert "disable the officer and add them again" in reason

        def broken(*_args: object, **_kwargs: object) -> NoReturn:
            raise RuntimeError("a defect")

        monkeypatch.setattr(uk, "_prepare", broken)
        odd = write_submission(uk.spool.root, report(), [RS])
        fine = write_submission(uk.spool.root, report(), [RS])
        assert uk.process_spool() == 2
        for path in (odd, fine):
            reason = (uk.spool.root / "rejected" / f"{path.name}.reason").read_text()
            assert reason.strip() == "the adapter could not process this submission (RuntimeError)"


def test_send_refuses_an_officer_named_under_the_earlier_rule_where_no_units_are_listed(
    declared: Declared, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MK lists no units, so nothing checks them; still, `broker send` queues nothing for an
    officer whose unit no header may carry (the adapter would reject the submission)."""
    config = str(declared.federation.config_path("MK"))
    process_spool(config)  # the first run makes its stores
    monkeypatch.setattr(officers, "check_name", lambda value, *, what: value)
    with inbox_of(load_config(config, AdapterConfig)) as inbox:
        token = inbox.officers.add(
            "o.legacy",
            agency="MVR",
            unit="Granic\u030cna",  # decomposed: the earlier rule let it in
            roles=[Role.ADMIN, Role.SUBMIT],
            now=dt.datetime.now(dt.UTC),
            by="test",
        )
    message = tmp_path / "report.json"
    message.write_bytes(message_bytes(network_report("MK-LEGACY-1")))
    sent = _run(["send", "--config", config, "--to", "GB", str(message)], officer="o.legacy",
                token=token)  # fmt: skip
    assert isinstance(sent.exception, errors.AccessError), sent.output
    assert "is not a name a header may carry" in str(sent.exception)
    assert list((declared.federation.spool_dir("MK") / "incoming").iterdir()) == []
