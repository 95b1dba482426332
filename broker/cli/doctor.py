"""``broker doctor``: what is wrong with a daemon's set-up, and what expires soon.

It reads the configuration exactly as ``broker deploy check-config`` does (a file that fails
there fails here, with the same line and status 4), then looks at everything the daemon will
read at start or lean on later, without starting it and writing nothing:

- the Kafka TLS files and password (as the daemon reads them at start), and when each
  certificate ends;
- the registry file against the trusted roots, and when it and each owner's keys expire;
- the accords (adapter, gateway): every file refused, every accord not in force or halted,
  and when each lapses;
- the daemon's own keys, when the passphrase can be read here: that they load, that the
  registry lists the signing key as valid now, and (adapter) that ``decryption_keys`` holds
  the encryption key partners seal to now;
- that the store's directory (and an adapter's spool) exists.

Only what the daemon cannot work without (the registry, its own keys, its TLS files) is a
problem once it has expired; another owner's keys that ended are a warning (the owner renews
them; meanwhile the adapter refuses to seal to them), and a lapsed accord is a problem as
"not in force".

Each problem is one ``error:`` line; the exit status is that of the first problem's class
(docs/CLI.md: 2 a file, 8 a key, 9 the registry, 10 an accord, 21 a certificate that has
ended). What expires within ``--days`` (30) is one ``warning:`` line each and does not change
the status; ``--json`` prints everything as one object.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

import click

from broker import errors, keys
from broker.clock import SystemClock
from broker.config import (
    ROLES,
    AdapterConfig,
    DaemonConfig,
    GatewayConfig,
    Role,
    WitnessConfig,
    kafka_client_security,
    load_config,
    read_registry,
    read_secret,
    read_trust,
)
from broker.crypto import Suite
from broker.ids import KeyId
from broker.keys import Registry
from broker.runtime import Expiry, accord_expiries, certificate_expiries, registry_expiries

__all__ = ["command"]

#: what an expiry that has already happened is, as a problem
_EXPIRED: dict[str, type[errors.BrokerError]] = {
    "registry": errors.RegistryError,
    "key": errors.KeyTrustError,
    "accord": errors.PolicyError,
    "certificate": errors.TransportError,
}


@dataclasses.dataclass(frozen=True, slots=True)
class _Problem:
    what: str
    exit_code: int


@dataclasses.dataclass
class _Findings:
    now: dt.datetime
    problems: list[_Problem] = dataclasses.field(default_factory=list)
    expiries: list[Expiry] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: the suite each accord in force between this adapter's partner and another fixes
    suites: dict[str, Suite] = dataclasses.field(default_factory=dict)

    def problem(self, error: errors.BrokerError, prefix: str = "") -> None:
        self.problems.append(_Problem(f"{prefix}{error.diagnostics()}", error.exit_code))

    def attempt(self, prefix: str, check: Callable[[], object]) -> bool:
        """Run ``check``; a project error becomes a problem named by ``prefix``."""
        try:
            check()
        except errors.BrokerError as exc:
            self.problem(exc, prefix)
            return False
        return True


@click.command("doctor")
@click.option("--config", "config_path", required=True, envvar="BROKER_CONFIG",
              help="The daemon's YAML configuration (or set BROKER_CONFIG).")  # fmt: skip
@click.option(
    "--role",
    type=click.Choice(get_args(Role)),
    default=None,
    help="The daemon the file is for [default: read from the file, as check-config does].",
)
@click.option(
    "--days",
    type=click.IntRange(0, 3_650),
    default=30,
    show_default=True,
    help="List what expires within this many days.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
def command(config_path: str, role: Role | None, days: int, as_json: bool) -> None:
    """Check a daemon's set-up and list what expires within --days: configuration, Kafka TLS
    files, registry, accords, keys, certificates. Exits with the first problem's status."""
    config = load_config(config_path, None if role is None else ROLES[role])
    findings = _Findings(now=SystemClock().now())
    _check_files(config, findings)
    findings.attempt("kafka: ", lambda: _check_kafka(config, findings))
    registry = _check_trust(config, findings)
    if registry is not None:
        _check_own_keys(config, registry, findings)
    _report(config_path, config, findings, days=days, as_json=as_json)


def _check_files(config: DaemonConfig, findings: _Findings) -> None:
    directories: list[tuple[str, Path]] = []
    if isinstance(config, AdapterConfig | GatewayConfig):
        directories.append(("store", config.store.path.parent))
    if isinstance(config, AdapterConfig) and config.spool is not None:
        directories.append(("spool", config.spool.dir))
    if isinstance(config, WitnessConfig):
        directories.append(("witness state", config.witness.state_dir.parent))
    for what, directory in directories:
        if not directory.is_dir():
            findings.problem(errors.UsageError(f"{what}: {directory} is not a directory"))
        elif not os.access(directory, os.W_OK | os.X_OK):
            findings.notes.append(f"{what}: {directory} is not writable by this user")


def _check_kafka(config: DaemonConfig, findings: _Findings) -> None:
    kafka_client_security(config.kafka)  # the files and password, as the daemon reads them
    findings.expiries += certificate_expiries(config.kafka.certificate_files)


def _check_trust(config: DaemonConfig, findings: _Findings) -> Registry | None:
    now = findings.now
    if isinstance(config, WitnessConfig):
        try:
            registry = read_registry(config.registry, now=now)
        except errors.BrokerError as exc:
            findings.problem(exc, "registry: ")
            return None
        findings.expiries += registry_expiries(registry)
        return registry
    try:
        trust = read_trust(config, now=now)
    except errors.BrokerError as exc:
        findings.problem(exc, "registry: ")
        return None
    findings.expiries += registry_expiries(trust.registry)
    for refusal in trust.reading.refusals:
        findings.problem(errors.PolicyError(f"accord {refusal.source}: {refusal.reason}"))
    statuses = trust.accords.statuses(now)
    if isinstance(config, AdapterConfig):
        findings.suites = {
            status.accord: status.deciding.suite
            for status in statuses
            if status.state == "in_force" and config.partner in status.deciding.party_codes
        }
    for status in statuses:
        if status.halt is not None:
            findings.notes.append(
                f"accord {status.accord}: {status.halt.code} by a party ({status.halt.reason})"
            )
        elif status.state != "in_force":
            findings.problem(
                errors.PolicyError(f"accord {status.accord} v{status.version}: {status.state}")
            )
    findings.expiries += accord_expiries(statuses)
    return trust.registry


def _check_own_keys(config: DaemonConfig, registry: Registry, findings: _Findings) -> None:
    """The daemon's keys, if this user can read their passphrase (an operator often cannot:
    it is the service's credential), checked against the registry now."""
    try:
        passphrase = read_secret(config.keys.passphrase)
    except errors.UsageError as exc:
        findings.notes.append(f"keys: not checked: {exc.diagnostics()}")
        return
    now = findings.now
    try:
        signing = keys.load_signing_key(config.keys.signing_key, passphrase=passphrase)
    except errors.BrokerError as exc:
        findings.problem(exc, "keys: ")
        return
    key_id = KeyId(signing.public_key().key_id)
    own = [key_id]
    if isinstance(config, AdapterConfig):
        found = findings.attempt(
            "keys: ", lambda: registry.signing_key(config.partner, key_id, at=now)
        )
        signers = [signing.suite]
        for path in config.keys.extra_signing_keys:
            try:
                loaded = keys.load_signing_key(path, passphrase=passphrase)
            except errors.BrokerError as exc:
                findings.problem(exc, "keys: ")
                continue
            extra = loaded.public_key().key_id
            own.append(extra)
            signers.append(loaded.suite)
            known = findings.attempt(
                "keys: ", functools.partial(registry.signing_key, config.partner, extra, at=now)
            )
            found = found and known
        _check_signing_suites(signers, findings)
        decryption: list[KeyId] = []
        for path in config.keys.decryption_keys:
            try:
                decryption.append(keys.load_decryption_key(path, passphrase=passphrase).key_id)
            except errors.BrokerError as exc:
                findings.problem(exc, "keys: ")
        own += decryption
        if found:
            _check_current_encryption_key(config, registry, decryption, findings)
    elif isinstance(config, WitnessConfig):
        findings.attempt("keys: ", lambda: registry.witness_key(key_id, at=now))
    else:
        findings.attempt("keys: ", lambda: registry.gateway_key(key_id, at=now))
    # the own roles are the vital ones: mark them so
    findings.expiries = [
        e for e in findings.expiries if e.kind != "key" and e.kind != "registry"
    ] + registry_expiries(registry, own=own)


def _check_signing_suites(signers: Sequence[Suite], findings: _Findings) -> None:
    """One signing key per suite, and one of each suite an accord in force fixes: without
    it every view and receipt under that accord is refused ``suite_mismatch``."""
    if len(set(signers)) != len(signers):
        findings.problem(
            errors.UsageError(
                "keys: keys.extra_signing_keys holds two keys of one suite, or one of "
                "signing_key's: the adapter refuses to start"
            )
        )
    for accord, suite in sorted(findings.suites.items()):
        if suite not in signers:
            findings.problem(
                errors.KeyTrustError(
                    f"keys: accord {accord} is sealed in the {suite} suite and no signing key "
                    f"of it is configured (keys.extra_signing_keys): every view and receipt "
                    "under it is refused suite_mismatch"
                )
            )


def _check_current_encryption_key(
    config: AdapterConfig, registry: Registry, held: Sequence[KeyId], findings: _Findings
) -> None:
    if not registry.suites_of(config.partner, at=findings.now):
        findings.problem(
            errors.KeyTrustError(
                f"keys: {config.partner} has no signing and encryption key of one suite valid now"
            )
        )
    # partners seal to the newest key of the accord's suite: one for each suite it has any in
    for suite in sorted(Suite):
        try:
            current, _ = registry.current_encryption_key(
                config.partner, at=findings.now, suite=suite
            )
        except errors.KeyTrustError:
            continue
        if current not in held:
            findings.problem(
                errors.KeyTrustError(
                    f"keys: partners seal to {config.partner}'s {suite} encryption key {current}, "
                    "which keys.decryption_keys does not hold: nothing sent to this adapter in "
                    f"that suite would open"
                )
            )


def _report(
    path: str, config: DaemonConfig, findings: _Findings, *, days: int, as_json: bool
) -> None:
    now, horizon = findings.now, dt.timedelta(days=days)
    expiring = sorted((e for e in findings.expiries if e.left(now) <= horizon), key=lambda e: e.at)
    for expiry in expiring:
        # a lapsed accord is a problem already (not in force); another owner's keys that
        # ended are that owner's to renew: a warning here, as the sender refuses to seal
        if expiry.vital and expiry.left(now) <= dt.timedelta(0):
            error = _EXPIRED[expiry.kind](f"{expiry.name} expired at {_instant(expiry.at)}")
            findings.problem(error)
    if as_json:
        document = {
            "config": path,
            "role": config.role,
            "problems": [dataclasses.asdict(p) for p in findings.problems],
            "notes": findings.notes,
            "expiring": [
                {
                    "kind": e.kind,
                    "name": e.name,
                    "at": _instant(e.at),
                    "days_left": round(e.left(now).total_seconds() / 86_400, 1),
                    "vital": e.vital,
                }
                for e in expiring
            ],
        }
        click.echo(json.dumps(document, indent=2))
    else:
        for problem in findings.problems:
            click.echo(f"error: {problem.what}", err=True)
        for note in findings.notes:
            click.echo(f"note: {note}")
        for expiry in expiring:
            left = expiry.left(now)
            if left > dt.timedelta(0):
                when = f"expires in {left.total_seconds() / 86_400:.1f} days"
            elif expiry.vital:
                continue  # an error above
            else:
                when = "has expired"
            click.echo(f"warning: {expiry.name}: {when} ({_instant(expiry.at)})")
        verdict = "problems" if findings.problems else "ok"
        click.echo(
            f"{verdict}: {path}: {config.role}, {len(findings.problems)} problem(s), "
            f"{len(expiring)} expir{'y' if len(expiring) == 1 else 'ies'} within {days} days"
        )
    if findings.problems:
        sys.exit(findings.problems[0].exit_code)


def _instant(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
