"""Proving the signed acts the audit log records: an ``accord_act`` record names the act by
its digest (``envelope_sha256``); the act itself, with its parties' signatures, is in the
accord's acts file (docs/ACCORDS.md). Given those files, every act the log records must be
found there, be the act the record says (accord, kind), and carry the signatures it needs
(its signer's, every party's for a resumption) by policy keys valid at the act's own time,
so an auditor need not take the gateway's word that a party suspended or resumed sharing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from broker.ids import PartnerCode
from broker.keys import Registry
from broker.pipeline.records import AuditRecord, ReasonCode
from broker.policy import Accord
from broker.trust.acts import ActsFile, SignedAct, act_digest, act_signers

__all__ = ["ActEvidence"]

_CODE_OF_KIND = {
    "suspend": ReasonCode.ACCORD_SUSPENDED,
    "terminate": ReasonCode.ACCORD_TERMINATED,
    "resume": None,
}


class ActEvidence:
    """The signed acts an auditor was given, to prove the log's ``accord_act`` records."""

    def __init__(
        self, chains: Iterable[ActsFile], *, accords: Iterable[Accord], registry: Registry
    ) -> None:
        self._acts: dict[str, SignedAct] = {
            act_digest(signed.act): signed for chain in chains for signed in chain.acts
        }
        self._parties: Mapping[str, frozenset[PartnerCode]] = {
            accord.accord: accord.party_codes for accord in accords
        }
        self._registry = registry

    def problem(self, record: AuditRecord) -> str | None:
        """Why ``record`` (an ``accord_act`` record) is not proven, or None."""
        signed = self._acts.get(record.envelope_sha256 or "")
        if signed is None:
            return f"records an act {record.envelope_sha256} found in no acts file given"
        act = signed.act
        if act.accord != record.accord_id or _CODE_OF_KIND[act.kind] != record.reason_code:
            recorded = f"{record.accord_id} {record.reason_code or 'resume'}"
            return f"records {recorded}, but the act is {act.accord} {act.kind}"
        parties = self._parties.get(act.accord)
        if parties is None:
            return f"the act is on {act.accord}, which is not in the bundle"
        needed = parties if act.kind == "resume" else frozenset({PartnerCode(act.by)})
        missing = needed - act_signers(signed, parties=parties, registry=self._registry)
        if missing:
            return (
                f"the {act.kind} of {act.accord} lacks a valid signature by "
                f"{', '.join(sorted(missing))} at {act.at}"
            )
        return None
