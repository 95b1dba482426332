"""The auditor's side of the audit log: portable bundles, verification, replay, proofs and
reports. Everything here works offline on a bundle file (docs/AUDIT.md).

- :mod:`.bundle`: the bundle format (JSON Lines: header with registry, accords and witnessed
  checkpoints, then the topic's records in order);
- :func:`export_topic`: audit topic (and witness topic) -> bundle;
- :func:`verify_entries`: checkpoints, refused and unjudged records, tampering with the first
  bad index and kind, witnessed checkpoints;
- :func:`replay_entries`: re-evaluate each authenticated decision under the accord version
  it names;
- :func:`prove_message` / :func:`verify_proof`: offline inclusion proofs for one message;
- :func:`summarize`, :func:`render_text`, :func:`render_html`: the report.

Witnessing is not here: a witness is a daemon (:mod:`broker.witness`).
"""

from __future__ import annotations

from broker.replay.acts import ActEvidence
from broker.replay.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    BundleHeader,
    Entry,
    iter_entries,
    read_header,
)
from broker.replay.export import ExportResult, export_topic
from broker.replay.proofs import PROOF_FORMAT, ProvenRecord, prove_message, verify_proof
from broker.replay.reevaluate import Disagreement, ReplayReport, replay_entries
from broker.replay.report import (
    Provenance,
    Summary,
    Verdict,
    render_html,
    render_text,
    summarize,
    write_csv,
)
from broker.replay.scan import Finding
from broker.replay.verify import VerifyReport, verify_entries

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "PROOF_FORMAT",
    "ActEvidence",
    "BundleHeader",
    "Disagreement",
    "Entry",
    "ExportResult",
    "Finding",
    "ProvenRecord",
    "Provenance",
    "ReplayReport",
    "Summary",
    "Verdict",
    "VerifyReport",
    "export_topic",
    "iter_entries",
    "prove_message",
    "read_header",
    "render_html",
    "render_text",
    "replay_entries",
    "summarize",
    "verify_entries",
    "verify_proof",
    "write_csv",
]
