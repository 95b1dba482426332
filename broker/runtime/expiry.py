"""What a daemon depends on that expires, and when: the registry, keys, accords, TLS files.

Each is an :class:`Expiry`. ``broker doctor`` lists those within N days; the daemons export
them as gauges beside the accords' (:class:`ExpiryReporter`):

- ``xb_registry_expiry_seconds``: until the registry held expires (the daemons then pause);
- ``xb_key_expiry_seconds{owner,role}``: until the owner's last valid key of that role ends
  (one series per owner and role, not per key: a rotation with overlap never dips it);
- ``xb_certificate_expiry_seconds{file}``: until the first certificate of a Kafka TLS file
  (``ca_file``, ``cert_file``) ends;
- ``xb_accord_expiry_seconds{accord}`` stays :class:`~broker.runtime.accords.AccordReporter`'s.

All count down and go negative once lapsed. The *vital* ones, without which the daemon cannot
work at all (the registry, its own keys, its TLS files), also degrade readiness inside the
configured window (``observability.expiry_readiness_days``): ``/readyz`` answers 503 naming
them while the daemon goes on working, so an orchestrator or an alert sees the cliff coming.
An accord lapsing stops one flow, not the daemon: it warns and never degrades readiness.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Literal

import structlog

from broker import crypto, errors
from broker.bounded import read_bounded
from broker.ids import KeyId
from broker.keys import Registry
from broker.runtime.accords import EXPIRY_WARNING
from broker.runtime.http import Health
from broker.runtime.metrics import Metrics
from broker.trust import AccordStatus

__all__ = [
    "DEFAULT_READINESS_WINDOW",
    "Expiry",
    "ExpiryReporter",
    "accord_expiries",
    "certificate_expiries",
    "registry_expiries",
]

#: how long before a vital expiry readiness degrades, unless configured otherwise
DEFAULT_READINESS_WINDOW: Final = dt.timedelta(days=7)
_REPEAT: Final = dt.timedelta(days=1)
_MAX_PEM_BYTES: Final = 1024 * 1024
_log = structlog.get_logger("broker.expiry")

Kind = Literal["registry", "key", "accord", "certificate"]


@dataclasses.dataclass(frozen=True, slots=True)
class Expiry:
    """Something that stops being valid at ``at``."""

    kind: Kind
    #: what it is, for people: ``registry v3``, ``RS encryption keys``, ``accord gb-al``,
    #: ``certificate <file> (<subject>)``
    name: str
    at: dt.datetime
    #: without it the daemon cannot work at all (its readiness degrades before ``at``)
    vital: bool
    #: the gauge's labels
    labels: tuple[tuple[str, str], ...] = ()

    def left(self, now: dt.datetime) -> dt.timedelta:
        """How long until it expires (negative once it has)."""
        return self.at - now


def registry_expiries(registry: Registry, *, own: Iterable[KeyId] = ()) -> list[Expiry]:
    """The registry's own expiry, and when each owner's keys of each role run out: the end of
    the latest unrevoked key of that role (an owner whose keys all ended gets its last end).
    The roles holding one of ``own`` (this daemon's key ids) are vital."""
    mine = set(own)
    expiries = [
        Expiry(
            "registry",
            f"registry v{registry.version}",
            registry.expires,
            vital=True,
        )
    ]
    ends: dict[tuple[str, str], tuple[dt.datetime, bool]] = {}
    for record in registry.key_records():
        if record.revoked_at is not None:
            continue
        key = (record.owner, str(record.role))
        end, vital = ends.get(key, (record.not_after, False))
        ends[key] = (max(end, record.not_after), vital or record.key_id in mine)
    for (owner, role), (end, vital) in sorted(ends.items()):
        expiries.append(
            Expiry("key", f"{owner} {role} keys", end, vital, (("owner", owner), ("role", role)))
        )
    return expiries


def accord_expiries(statuses: Iterable[AccordStatus]) -> list[Expiry]:
    """When each accord lapses (a renewal on file pushes it out); never vital."""
    return [
        Expiry(
            "accord",
            f"accord {s.accord}",
            s.lapses_at,
            vital=False,
            labels=(("accord", str(s.accord)),),
        )
        for s in statuses
    ]


def certificate_expiries(files: Iterable[Path]) -> list[Expiry]:
    """When the first certificate of each PEM file ends (a CA bundle is as good as the first
    certificate to lapse in it: that is the one that breaks connections); raises
    :class:`errors.UsageError` for a file that cannot be read or holds no certificate."""
    expiries = []
    for path in files:
        pem = read_bounded(path, limit=_MAX_PEM_BYTES, what="the certificate file")
        certificates = crypto.certificate_validity(pem, source=str(path))
        first = min(certificates, key=lambda c: c.not_after)
        expiries.append(
            Expiry(
                "certificate",
                f"certificate {path} ({first.subject})",
                first.not_after,
                vital=True,
                labels=(("file", str(path)),),
            )
        )
    return expiries


class ExpiryReporter:
    """Gauges, warnings and readiness for what a daemon depends on (the accords' gauges are
    :class:`~broker.runtime.accords.AccordReporter`'s, so accords are not given here)."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        health: Health | None = None,
        readiness_window: dt.timedelta = DEFAULT_READINESS_WINDOW,
    ) -> None:
        self._registry = metrics.gauge(
            "xb_registry_expiry_seconds",
            "Seconds until the partner registry held expires (negative once it has).",
        )
        self._keys = metrics.gauge(
            "xb_key_expiry_seconds",
            "Seconds until the owner's last valid key of the role ends (negative once it has).",
            ("owner", "role"),
        )
        self._certificates = metrics.gauge(
            "xb_certificate_expiry_seconds",
            "Seconds until the first certificate of a Kafka TLS file ends (negative once it has).",
            ("file",),
        )
        self._health = health
        self._window = readiness_window
        self._told: dict[tuple[str, str], dt.datetime] = {}

    def observe(self, expiries: Sequence[Expiry], *, now: dt.datetime) -> None:
        """Set each gauge, warn within the warning period (once a day), and degrade readiness
        while a vital expiry is within the readiness window."""
        close: list[str] = []
        for expiry in expiries:
            left = expiry.left(now)
            labels = dict(expiry.labels)
            if expiry.kind == "registry":
                self._registry.set(left.total_seconds())
            elif expiry.kind == "key":
                self._keys.set(left.total_seconds(), **labels)
            elif expiry.kind == "certificate":
                self._certificates.set(left.total_seconds(), **labels)
            else:
                raise errors.UsageError("accords are reported by the AccordReporter")
            if left <= EXPIRY_WARNING:
                self._warn(expiry, left, now)
            if expiry.vital and left <= self._window:
                close.append(f"{expiry.name} {_when(left)}")
        if self._health is not None:
            self._health.set_degraded("; ".join(close) if close else None)

    def _warn(self, expiry: Expiry, left: dt.timedelta, now: dt.datetime) -> None:
        key = (expiry.kind, expiry.name)
        last = self._told.get(key)
        if last is not None and now - last < _REPEAT:
            return
        self._told[key] = now
        fields = {"kind": expiry.kind, "name": expiry.name, "at": expiry.at.isoformat()}
        if left <= dt.timedelta(0):
            _log.error("expired", **fields)
        else:
            _log.warning("expiring", days_left=round(left.total_seconds() / 86_400, 1), **fields)


def _when(left: dt.timedelta) -> str:
    if left <= dt.timedelta(0):
        return "has expired"
    return f"expires in {left.total_seconds() / 86_400:.1f} days"
