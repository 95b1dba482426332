"""A complete federation in one directory: keys, signed registry, co-signed accords, configs.

:func:`provision` writes everything six partners, one gateway and one witness of the audit log
need to run on one Kafka cluster (normally the embedded broker); :class:`Federation` starts
and stops the daemons as real processes (``python -m broker gateway run`` / ``adapter run`` /
``witness run``) with their logs captured to files, and waits for each to report ready on
``/healthz``. The end-to-end tests and
``broker demo`` both stand on it.

Layout under the root directory::

    registry/registry.json        the registry, signed by every root (threshold 2 of 3)
    registry/trusted.json         the copy each daemon trusts "out of band"
    accords/<id>.yaml(.sigs.json) the accords, co-signed with each party's policy key
    keys/<name>/*.pem             private keys (encrypted PKCS#8, 0600): signing, decryption,
                                  and each partner's policy key (for `broker policy` acts)
    secrets/<name>.passphrase     the key passphrases (0600)
    config/<name>.yaml            one daemon configuration each (gateway, witness or a code)
    data/<name>/                  stores, spool, delivery directory, the witness's state
    logs/<name>.log               the daemon's JSON log lines (appended across restarts)

Every private key is generated here, on this machine, for a demonstration: a real
federation generates each partner's keys at that partner (``broker keys generate``).
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from broker import crypto, errors, keys
from broker.clock import Clock, SystemClock
from broker.config import acl_plan, adapter_principal, replication_for, topic_plan
from broker.demo.files import install_accord, other_suite_key, write_daemon
from broker.demo.processes import DaemonProcess
from broker.ids import KeyId, PartnerCode
from broker.keys.testing import build_registry
from broker.policy import load_accord
from broker.transport.access import KafkaAccess
from broker.transport.admin import broker_ids, create_acls
from broker.transport.embedded import free_port
from broker.transport.kafka import ConsumerSettings, ProducerSettings, TopicSpec, create_topics
from broker.trust import AccordFiles

__all__ = [
    "CURRENT_SPAN",
    "DEFAULT_PARTNERS",
    "GATEWAY",
    "WITNESS",
    "Federation",
    "current_accords",
    "default_policies_dir",
    "provision",
    "redated",
]

DEFAULT_PARTNERS: Final = ("GB", "RS", "MK", "XK", "TR", "AL")
#: the daemon name of the policy gateway (adapters are named by their partner code)
GATEWAY: Final = "gateway"
#: the daemon name of the audit log's witness
WITNESS: Final = "witness"


def default_policies_dir() -> Path:
    """The repository's ``policies/`` directory (beside the ``broker`` package)."""
    return Path(__file__).resolve().parents[2] / "policies"


#: how far before ``now`` :func:`current_accords` puts ``effective``, and after it ``expires``
CURRENT_SPAN: Final = (dt.timedelta(days=30), dt.timedelta(days=365))


def current_accords(directory: Path, *, now: dt.datetime, rate_limits: bool = True) -> list[Path]:
    """The latest version of each shipped accord, re-dated to be in force around ``now``,
    written into ``directory``: what tests and soaks run on, so that none of them depends on
    the day it runs (the demo itself runs on the accords as shipped).

    ``effective`` becomes the date 30 days before ``now`` and ``expires`` the date a year
    after; the rules are the shipped ones, without their rate limits when ``rate_limits`` is
    False (a soak sends more than a day's quota).
    """
    directory.mkdir(parents=True, exist_ok=True)
    latest: dict[str, tuple[int, Path]] = {}
    for source in sorted(default_policies_dir().glob("*.yaml")):
        accord = load_accord(source)
        if accord.accord not in latest or accord.version > latest[accord.accord][0]:
            latest[accord.accord] = (accord.version, source)
    copies = []
    for accord_id, (_, source) in sorted(latest.items()):
        text = redated(source.read_text(encoding="utf-8"), now=now, rate_limits=rate_limits)
        target = directory / f"{accord_id}.yaml"
        target.write_text(text, encoding="utf-8")
        copies.append(target)
    return copies


def redated(text: str, *, now: dt.datetime, rate_limits: bool = True) -> str:
    """An accord's YAML ``text`` in force around ``now`` (see :data:`CURRENT_SPAN`)."""
    before, after = CURRENT_SPAN
    text = re.sub(r"(?m)^effective: .*$", f"effective: {(now - before).date()}", text)
    text = re.sub(r"(?m)^expires: .*$", f"expires: {(now + after).date()}", text)
    if not rate_limits:
        text = re.sub(r"(?m)^\s*rate_limit:.*\n", "", text)
    return text


class Federation:
    """A provisioned federation: its paths, and its daemons as child processes."""

    def __init__(
        self,
        root: Path,
        *,
        access: KafkaAccess,
        prefix: str,
        partners: tuple[PartnerCode, ...],
        ports: Mapping[str, int],
    ) -> None:
        self.root = root
        self.access = access
        self.bootstrap = access.bootstrap
        self.prefix = prefix
        self.partners = partners
        self.registry_path = root / "registry" / "registry.json"
        self.trusted_path = root / "registry" / "trusted.json"
        self.accords_dir = root / "accords"
        self._daemons = {
            name: DaemonProcess(
                name, argv=self.argv(name), port=port, log=root / "logs" / f"{name}.log", cwd=root
            )
            for name, port in ports.items()
        }

    # paths -------------------------------------------------------------------------------

    def config_path(self, name: str) -> Path:
        """``config/<name>.yaml``: the configuration of ``gateway`` or partner ``name``."""
        return self.root / "config" / f"{name}.yaml"

    def data_dir(self, name: str) -> Path:
        """``data/<name>``: the daemon's stores."""
        return self.root / "data" / name

    def inbox_path(self, partner: str) -> Path:
        """The partner adapter's SQLite inbox store."""
        return self.data_dir(partner) / "inbox.sqlite3"

    def spool_dir(self, partner: str) -> Path:
        """The partner adapter's spool directory."""
        return self.data_dir(partner) / "spool"

    def delivery_dir(self, partner: str) -> Path:
        """Where the partner adapter writes each verified message for the agency."""
        return self.data_dir(partner) / "delivered"

    def log_path(self, name: str) -> Path:
        """The daemon's captured log (stdout and stderr), appended across restarts."""
        return self._daemon(name).log

    def port(self, name: str) -> int:
        """The daemon's health and metrics port on 127.0.0.1."""
        return self._daemon(name).port

    def signing_key(self, name: str, *, suite: crypto.Suite | None = None) -> crypto.SigningKey:
        """Daemon ``name``'s signing key (of ``suite``, if given: a partner in an accord of
        another suite holds one of each), loaded from its encrypted file (tests seal with it)."""
        passphrase = keys.read_passphrase(file=self.passphrase_file(name), env=None)
        own = keys.load_signing_key(
            self.root / "keys" / name / "signing.pem", passphrase=passphrase
        )
        if suite is None or own.suite is suite:
            return own
        return keys.load_signing_key(
            other_suite_key(self.root / "keys" / name, "signing", suite), passphrase=passphrase
        )

    def decryption_keys(self, name: str) -> dict[KeyId, crypto.DecryptionKey]:
        """Adapter ``name``'s decryption keys by id, every suite's (tests open views with them)."""
        passphrase = keys.read_passphrase(file=self.passphrase_file(name), env=None)
        loaded = (
            keys.load_decryption_key(path, passphrase=passphrase)
            for path in sorted((self.root / "keys" / name).glob("decryption*.pem"))
        )
        return {key.key_id: key for key in loaded}

    def registry(self, *, now: dt.datetime) -> keys.Registry:
        """The federation's registry, verified at ``now``."""
        return keys.verify_registry(self.registry_path.read_bytes(), trusted=None, now=now)

    def accords(self, *, now: dt.datetime) -> AccordFiles:
        """Every accord installed, verified as the daemons verify them (refusals raise)."""
        files = AccordFiles()
        reading = files.read(
            sorted(self.accords_dir.glob("*.yaml")), registry=self.registry(now=now), now=now
        )
        if reading.refusals:
            first = reading.refusals[0]
            raise errors.PolicyError(f"{first.source}: {first.reason}")
        return files

    def policy_key_path(self, partner: str) -> Path:
        """``keys/<partner>/policy.pem``: the partner's policy-signing key (encrypted with its
        passphrase), for `broker policy sign|suspend|resume|terminate`."""
        return self.root / "keys" / partner / "policy.pem"

    def passphrase_file(self, name: str) -> Path:
        """``secrets/<name>.passphrase`` (mode 0600): the passphrase of the daemon's keys."""
        return self.root / "secrets" / f"{name}.passphrase"

    def user(self, name: str) -> str:
        """The Kafka user daemon ``name`` logs in as (the ACL plan's principal)."""
        if name in (GATEWAY, WITNESS):
            return name
        return adapter_principal(name).removeprefix("User:")

    def producer_as(self, name: str, *, client_id: str) -> ProducerSettings:
        """A plain producer logged in as daemon ``name``'s principal: what that daemon, or
        anyone holding its credentials, could write (the demo's tampered record)."""
        return ProducerSettings(
            bootstrap=self.bootstrap,
            client_id=client_id,
            enable_idempotence=self.access.capabilities.idempotence,
            security=self.access.security(self.user(name)),
        )

    def observer(self, group_id: str, *, client_id: str) -> ConsumerSettings:
        """A consumer for the operator's own views (the demo's tracker): the cluster's
        administrator on a secured cluster."""
        return ConsumerSettings(
            bootstrap=self.bootstrap,
            group_id=group_id,
            client_id=client_id,
            session_timeout_ms=3_000,
            security=self.access.security(),
        )

    def topics(self, *, partitions: int = 3, brokers: int = 1) -> list[TopicSpec]:
        """The topic plan of this federation on a cluster of ``brokers``: three replicas, two
        in sync, from three brokers on; one replica on a single broker."""
        replication, in_sync = replication_for(brokers)
        return [
            TopicSpec(t.name, t.partitions, t.replication_factor, dict(t.configs))
            for t in topic_plan(
                self.partners,
                prefix=self.prefix,
                partitions=partitions,
                replication_factor=replication,
                min_insync_replicas=in_sync,
            )
        ]

    async def create_topics(self, *, partitions: int = 3) -> None:
        """Create every topic of the plan (existing topics are left alone) as the cluster's
        administrator and, on a secured cluster, grant the plan's ACLs for this prefix."""
        admin = self.access.security()
        brokers = len(await broker_ids(self.bootstrap, security=admin))
        topics = self.topics(partitions=partitions, brokers=brokers)
        await create_topics(self.bootstrap, topics, security=admin)
        if self.access.secured:
            await create_acls(
                self.bootstrap, acl_plan(self.partners, prefix=self.prefix), security=admin
            )

    # daemons -----------------------------------------------------------------------------

    def argv(self, name: str) -> list[str]:
        """The command line that runs daemon ``name`` with this interpreter."""
        role = name if name in (GATEWAY, WITNESS) else "adapter"
        return [
            sys.executable,
            "-m",
            "broker",
            role,
            "run",
            "--config",
            str(self.config_path(name)),
        ]

    def start(self, name: str, *, ready_timeout_s: float = 60.0) -> None:
        """Start daemon ``name`` and wait until its ``/healthz`` answers 200.

        Raises :class:`errors.AvailabilityError` if it exits or is not ready in time.
        """
        self._daemon(name).start(ready_timeout_s=ready_timeout_s)

    def start_many(self, names: Iterable[str], *, ready_timeout_s: float = 60.0) -> None:
        """Start the daemons ``names`` all at once, then wait until each is ready."""
        daemons = [self._daemon(name) for name in names]
        for daemon in daemons:
            daemon.spawn()
        for daemon in daemons:
            daemon.wait_ready(timeout_s=ready_timeout_s)

    def detach_all(self) -> dict[str, int]:
        """Hand every running daemon over (they outlive this process); their pids by name."""
        return {d.name: d.detach() for d in self._daemons.values() if d.running}

    def is_running(self, name: str) -> bool:
        """Whether daemon ``name`` has a live process."""
        return self._daemon(name).running

    def pid(self, name: str) -> int:
        """The process id of running daemon ``name``."""
        return self._daemon(name).pid

    def stop(self, name: str, *, timeout_s: float = 30.0) -> int:
        """SIGTERM daemon ``name``, wait for its drain, return its exit status (killed and
        AvailabilityError past ``timeout_s``)."""
        daemon = self._daemon(name)
        daemon.terminate()
        return daemon.wait(timeout_s=timeout_s)

    def kill(self, name: str) -> None:
        """SIGKILL daemon ``name`` (a crash, as far as it can tell) and reap it."""
        self._daemon(name).kill()

    def stop_all(self, *, timeout_s: float = 30.0) -> dict[str, int]:
        """SIGTERM every running daemon at once, then collect each exit status; the logs of
        daemons that had already exited are closed too."""
        running = [daemon for daemon in self._daemons.values() if daemon.running]
        for daemon in running:
            daemon.terminate()
        try:
            return {daemon.name: daemon.wait(timeout_s=timeout_s) for daemon in running}
        finally:
            for daemon in self._daemons.values():
                daemon.close()

    def metrics(self, name: str) -> dict[str, float]:
        """Daemon ``name``'s ``/metrics`` as ``{'series{labels}': value}``."""
        return self._daemon(name).metrics()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def _daemon(self, name: str) -> DaemonProcess:
        try:
            return self._daemons[name]
        except KeyError:
            raise errors.UsageError(f"no daemon named {name!r} in this federation") from None


def accord_suites(sources: Iterable[Path]) -> dict[str, set[crypto.Suite]]:
    """The suites each party needs keys of for the accords ``sources``."""
    suites: dict[str, set[crypto.Suite]] = {}
    for source in sources:
        accord = load_accord(source)
        for party in accord.party_codes:
            suites.setdefault(party, set()).add(accord.suite)
    return suites


def provision(
    root: Path,
    *,
    bootstrap: str | None = None,
    kafka: KafkaAccess | None = None,
    partners: Iterable[str] = DEFAULT_PARTNERS,
    accords: Iterable[Path] | None = None,
    prefix: str = "xb.",
    suite: crypto.Suite = crypto.Suite.CLASSIC,
    session_timeout_ms: int = 3_000,
    clock: Clock | None = None,
    units: Mapping[str, Iterable[tuple[str, str]]] | None = None,
) -> Federation:
    """Write a complete federation under ``root`` (which must be empty or absent).

    ``accords`` are the accord files to co-sign and install (default: every ``*.yaml`` in
    :func:`default_policies_dir`); an accord naming a party outside ``partners`` is skipped,
    since nobody could co-sign it. Every party co-signs with its policy key, so the daemons run
    with signature checking on.

    Give ``kafka`` (address, engine, credentials: each daemon logs in as its own principal
    on a secured cluster) or a bare ``bootstrap``, which means the embedded broker in
    PLAINTEXT. ``units`` are the ``(agency, unit)`` pairs partners declare in the registry
    (none by default: no partner's units are then checked).
    """
    if (bootstrap is None) == (kafka is None):
        raise errors.UsageError("give exactly one of bootstrap or kafka")
    access = kafka or KafkaAccess(bootstrap=str(bootstrap), engine="embedded")
    now = (clock or SystemClock()).now()
    codes = tuple(PartnerCode(code) for code in dict.fromkeys(partners))
    if root.exists() and any(root.iterdir()):
        raise errors.UsageError(f"{root} is not empty; provision into a new directory")
    for sub in ("registry", "accords", "keys", "secrets", "config", "data", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sources = sorted(accords if accords is not None else default_policies_dir().glob("*.yaml"))
    fixture = build_registry(
        now=now, partners=codes, suite=suite, also_suites=accord_suites(sources), units=units
    )
    keys.write_public_file(root / "registry" / "registry.json", fixture.data)
    keys.write_public_file(root / "registry" / "trusted.json", fixture.data)

    policy_keys = {code: fixture.partners[code].policy for code in codes}
    for source in sources:
        install_accord(source, root / "accords", policy_keys)

    ports = {name: free_port() for name in (GATEWAY, WITNESS, *codes)}
    federation = Federation(root, access=access, prefix=prefix, partners=codes, ports=ports)
    common = {
        "kafka": {
            "bootstrap": access.bootstrap,
            "topic_prefix": prefix,
            "session_timeout_ms": session_timeout_ms,
            "engine": access.engine,
        },
        "registry": {
            "path": str(federation.registry_path),
            "trusted_roots": str(federation.trusted_path),
        },
        "accords": {"dir": str(federation.accords_dir)},
    }

    gateway_key = next(iter(fixture.gateways.values()))
    write_daemon(
        federation,
        GATEWAY,
        common,
        signing=gateway_key,
        extra={"store": {"path": str(federation.data_dir(GATEWAY) / "dedup.sqlite3")}},
        client_id="broker-gateway",
    )
    write_daemon(
        federation,
        WITNESS,
        {name: section for name, section in common.items() if name != "accords"},
        signing=next(iter(fixture.witnesses.values())),
        extra={"witness": {"state_dir": str(federation.data_dir(WITNESS) / "state")}},
        client_id="broker-witness",
    )
    for code in codes:
        partner_keys = fixture.partners[code]
        for directory in (federation.spool_dir(code), federation.delivery_dir(code)):
            directory.mkdir(parents=True, exist_ok=True)
        others = fixture.other_suites.get(code, {})
        write_daemon(
            federation,
            code,
            common,
            signing=partner_keys.signing,
            decryption=partner_keys.decryption,
            policy=partner_keys.policy,
            other_suites=[(k.signing, k.decryption) for _, k in sorted(others.items())],
            extra={
                "partner": code,
                "store": {
                    "path": str(federation.inbox_path(code)),
                    "delivery_dir": str(federation.delivery_dir(code)),
                },
                "spool": {"dir": str(federation.spool_dir(code))},
            },
            client_id=f"broker-adapter-{code.lower()}",
        )
    return federation
