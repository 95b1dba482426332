"""The auditor's side of the audit log: portable bundles, verification, replay, proofs,
witnessing and reports. Everything here works offline on a bundle file (docs/AUDIT.md).

- :mod:`.bundle`: the bundle format (JSON Lines: header with registry and accords, then the
  topic's records in order);
- :func:`export_topic`: audit topic -> bundle;
- :func:`verify_entries`: signatures, checkpoints, tampering with first bad index and kind;
- :func:`replay_entries`: re-evaluate each decision under the accord version it names;
- :func:`prove_message` / :func:`verify_proof`: offline inclusion proofs for one message;
- :func:`witness_log`: co-sign the newest checkpoint after checking consistency;
- :func:`summarize`, :func:`render_text`, :func:`render_html`: the report.
"""

from __future__ import annotations

from broker.replay.bundle import BUNDLE_FORMAT, BundleHeader, Entry, iter_entries, read_header
from broker.replay.export import ExportResult, export_topic
from broker.replay.proofs import PROOF_FORMAT, ProvenRecord, prove_message, verify_proof
from broker.replay.reevaluate import Disagreement, ReplayReport, replay_entries
from broker.replay.report import Summary, render_html, render_text, summarize
from broker.replay.verify import Finding, VerifyReport, verify_entries
from broker.replay.witness import WitnessResult, witness_log

__all__ = [
    "BUNDLE_FORMAT",
    "PROOF_FORMAT",
    "BundleHeader",
    "Disagreement",
    "Entry",
    "ExportResult",
    "Finding",
    "ProvenRecord",
    "ReplayReport",
    "Summary",
    "VerifyReport",
    "WitnessResult",
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
    "witness_log",
]
