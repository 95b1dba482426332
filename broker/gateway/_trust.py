"""What the gateway trusts: its signing key, and the registry and accords it holds.

The registry and accords are a :class:`broker.trust.HeldTrust`, shared in kind with the
adapters: files re-read on change, a registry that fails to verify or move forward never
replaces the one held, each accord file keeps its last good version, one bad or lapsed accord
never stops the gateway, and what must never go back is remembered across restarts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import structlog

from broker import crypto, errors, keys
from broker.config import GatewayConfig, hold_trust, read_secret
from broker.ids import KeyId, PartnerCode
from broker.keys import Registry
from broker.runtime import AccordReporter
from broker.trust import AccordBook, AccordStatus, Reading
from broker.trust.acts import Act

__all__ = ["TrustState", "load_gateway_key"]

_log = structlog.get_logger(__name__)


def load_gateway_key(config: GatewayConfig) -> crypto.SigningKey:
    """The gateway's signing key, from its encrypted file."""
    return keys.load_signing_key(
        config.keys.signing_key, passphrase=read_secret(config.keys.passphrase)
    )


class TrustState:
    """The gateway's :class:`~broker.trust.HeldTrust`, its reports, and the acts to audit."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        key: crypto.SigningKey,
        now: dt.datetime,
        reporter: AccordReporter,
    ) -> None:
        self.reporter = reporter
        # a signed act is remembered once its audit record is written (confirm_acts_audited)
        self.held = hold_trust(config, key=key, now=now, acts_confirmed_later=True)
        if self.held.start_refusal is not None:
            _log.error("registry_reload_refused", reason=self.held.start_refusal)
        self._key_id = KeyId(key.public_key().key_id)
        # refused unless the registry held lists the key as a gateway key now
        self.registry.gateway_key(self._key_id, at=now)
        #: signed acts applied and not yet audited (the daemon takes them)
        self.applied_acts: list[Act] = []
        self._report(self.held.read_accords(now=now), now, reloaded=False)

    @property
    def registry(self) -> Registry:
        """The registry held."""
        return self.held.registry

    @property
    def watched_paths(self) -> tuple[Path, ...]:
        """The files whose change triggers a reload."""
        return self.held.watched_paths

    def confirm_acts_audited(self) -> None:
        """Called once the audit records of every act applied so far are committed."""
        if not self.applied_acts:
            self.held.confirm_acts()

    def pause(self, now: dt.datetime) -> tuple[str, str] | None:
        """Why the gateway must not decide now (a log event and a reason), or None. Records
        wait in Kafka meanwhile: a frozen registry could hide a revocation, and attestations
        signed by a key the registry no longer lists (revoked, expired) would be refused by
        every recipient after the gateway had committed their offsets."""
        if not self.held.usable(now):
            return "registry_expired_paused", "the partner registry has expired"
        try:
            self.registry.gateway_key(self._key_id, at=now)
        except errors.KeyTrustError as exc:
            return "gateway_key_unusable_paused", f"this gateway's own key is not usable: {exc}"
        return None

    def outbox_partners(self) -> tuple[PartnerCode, ...]:
        """The partners whose outboxes the gateway reads: everyone registered."""
        return tuple(sorted(self.registry.partners))

    def book(self, now: dt.datetime) -> AccordBook:
        """The accord that decides for each pair at ``now``."""
        return self.held.book(now)

    def statuses(self, now: dt.datetime) -> list[AccordStatus]:
        """Where each accord stands at ``now`` (for expiry warnings and gauges)."""
        return self.held.statuses(now)

    def reload(self, changed: Iterable[Path], *, now: dt.datetime) -> None:
        """Re-read what changed; keep the registry held, and each file's last good accord."""
        update, reading = self.held.reload(changed, now=now)
        self.reporter.registry_update(update)
        self._report(reading, now, reloaded=True)

    def _report(self, reading: Reading, now: dt.datetime, *, reloaded: bool) -> None:
        self.reporter.loaded(reading, self.statuses(now), now=now, reloaded=reloaded)
        self.applied_acts.extend(reading.applied)
