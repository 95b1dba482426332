"""The auditor's report: who disclosed which data categories to whom, what was refused and why,
and when, as a terminal summary and as one self-contained HTML page.

Only authenticated records are counted: whatever verification found not to be a valid
gateway record in its place (``exclude``) is left out of every count and counted apart. The
page has no external assets (inline CSS, inline script, inline SVG) so it opens offline and
leaks nothing when opened; every value from the log is HTML-escaped. The verification result
is ``#verification``, coloured by outcome, with ``data-verified`` and, on failure,
``data-first-bad-index``; the sharing matrix is a table ``#sharing-matrix`` whose cells carry
``data-sender``, ``data-recipient`` and ``data-category`` attributes, so the page can be
checked mechanically. Beside them: the provenance of what was verified (``#provenance``: the
registry's digest and version, the newest signed checkpoint's size and root, its witnesses),
totals by kind (``#totals``), a legend for the timeline, and the decisions themselves
(``#decisions``, the first :data:`DECISIONS_SHOWN`; ``--csv`` writes them all), each with a
drill-down to its message id, rule ids, accord version and reasons, filtered by partner,
accord and reason with the controls above it or with the page address's fragment
(``report.html#partner=RS&reason=policy_denied``), so a filtered view can be linked to.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
import html
from collections.abc import Container, Iterable, Iterator
from typing import TextIO, TypeGuard

from broker import errors
from broker.ledger import is_checkpoint_record
from broker.pipeline import refusal_counts
from broker.pipeline.records import AuditKind, AuditRecord, parse_audit_record
from broker.replay.bundle import BundleHeader, Entry
from broker.replay.verify import VerifyReport
from broker.schema.labels import PROTOCOL_TYPES, Labels, MessageType

__all__ = [
    "DECISIONS_SHOWN",
    "Decision",
    "Provenance",
    "Summary",
    "Verdict",
    "inert_cell",
    "render_html",
    "render_text",
    "summarize",
    "write_csv",
]

#: the decisions a page lists (the CSV has every one): a page stays quick to open
DECISIONS_SHOWN = 2000


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What verification concluded, as a report shows it: one line, and where it failed."""

    verified: bool
    text: str
    first_bad_index: int | None = None

    @classmethod
    def of(cls, report: VerifyReport) -> Verdict:
        """The verdict of a verification report."""
        problem = report.first_problem
        if problem is None:
            witnesses = ", ".join(report.witnesses) or "none"
            text = (
                f"verified: {report.records} records, {report.signed_size} under signed "
                f"checkpoints; the newest cosigned by {len(report.witnesses)} witnesses "
                f"({witnesses})"
            )
            return cls(True, text)
        left_out = len(report.unauthenticated)
        text = (
            f"DOES NOT VERIFY: {problem.describe()}; {left_out} records not authenticated, "
            "left out of every count"
        )
        return cls(False, text, problem.index)


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """One authenticated record as the report lists it."""

    index: int
    decided_at: str
    kind: str
    decision: str
    sender: str
    recipient: str
    accord: str
    reason: str
    message_id: str
    rule_ids: tuple[str, ...]
    categories: tuple[str, ...]
    reasons: tuple[str, ...]

    @classmethod
    def of(cls, index: int, record: AuditRecord) -> Decision:
        """The row of ``record``, the ``index``-th record of the log."""
        accord = ""
        if record.accord_id is not None:
            version = "" if record.accord_version is None else f" v{record.accord_version}"
            accord = f"{record.accord_id}{version}"
        categories = () if record.labels is None else record.labels.data_categories
        return cls(
            index=index,
            decided_at=record.decided_at,
            kind=str(record.kind),
            decision=record.decision,
            sender=record.sender or "",
            recipient=record.recipient or "",
            accord=accord,
            reason=str(record.reason_code or ""),
            message_id=record.message_id or "",
            rule_ids=record.rule_ids,
            categories=tuple(sorted(str(c) for c in categories)),
            reasons=record.reasons,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Provenance:
    """What the report's figures rest on: the registry and the newest signed checkpoint."""

    registry_sha256: str
    registry_version: int
    checkpoint: str
    witnesses: tuple[str, ...]

    @classmethod
    def of(cls, report: VerifyReport, header: BundleHeader) -> Provenance:
        """The provenance of a verified bundle."""
        latest = report.latest
        checkpoint = (
            "none"
            if latest is None
            else f"{latest.origin} size {latest.size} root {latest.root.hex()} "
            f"at {latest.timestamp.isoformat()}"
        )
        return cls(
            registry_sha256=hashlib.sha256(header.registry_bytes).hexdigest(),
            registry_version=header.registry().version,
            checkpoint=checkpoint,
            witnesses=report.witnesses,
        )


@dataclasses.dataclass
class Summary:
    """Counts over a log; built by :func:`summarize`."""

    records: int = 0
    unreadable: int = 0
    #: records left out because verification did not authenticate them
    excluded: int = 0
    by_kind: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: (sender, recipient, data category) -> disclosures carrying that category
    matrix: collections.Counter[tuple[str, str, str]] = dataclasses.field(
        default_factory=collections.Counter
    )
    refusals: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: (day, kind) -> records
    timeline: collections.Counter[tuple[str, str]] = dataclasses.field(
        default_factory=collections.Counter
    )
    first: str | None = None
    last: str | None = None
    #: the first :data:`DECISIONS_SHOWN` authenticated records, in log order
    decisions: list[Decision] = dataclasses.field(default_factory=list)


def _records(
    entries: Iterable[Entry], exclude: Container[int]
) -> Iterator[tuple[int, AuditRecord | None, bool]]:
    """``(index, record, left_out)`` for each audit record: ``left_out`` when its index is in
    ``exclude``, ``record`` None when it is unreadable. Checkpoints are skipped."""
    index = -1
    for entry in entries:
        if not entry.damaged and is_checkpoint_record(entry.value):
            continue
        index += 1
        if index in exclude:
            yield index, None, True
            continue
        try:
            yield index, parse_audit_record(entry.value), False
        except errors.SchemaError:
            yield index, None, False


def summarize(entries: Iterable[Entry], *, exclude: Container[int] = frozenset()) -> Summary:
    """Count every audit record but those whose index is in ``exclude`` (checkpoints are
    skipped), streaming."""
    summary = Summary()
    for index, record, left_out in _records(entries, exclude):
        if left_out:
            summary.excluded += 1
            continue
        summary.records += 1
        if record is None:
            summary.unreadable += 1
            continue
        if len(summary.decisions) < DECISIONS_SHOWN:
            summary.decisions.append(Decision.of(index, record))
        kind = str(record.kind)
        summary.by_kind[kind] += 1
        summary.timeline[record.decided_at[:10], kind] += 1
        summary.first = min(summary.first or record.decided_at, record.decided_at)
        summary.last = max(summary.last or record.decided_at, record.decided_at)
        if record.kind is AuditKind.REFUSAL:
            summary.refusals[str(record.reason_code or "unknown")] += 1
        elif record.kind is AuditKind.REFUSAL_SUMMARY:
            # refusals past the gateway's hourly number, counted in one signed record
            summary.refusals.update(refusal_counts(record))
        elif record.kind is AuditKind.DISCLOSURE and _shares(labels := record.labels):
            sender, recipient = record.sender or "?", record.recipient or "?"
            for category in labels.data_categories:
                summary.matrix[sender, recipient, str(category)] += 1
    return summary


def _shares(labels: Labels | None) -> TypeGuard[Labels]:
    """Whether a disclosure shared intelligence: not a message about other messages (a
    withdrawal, an onward request or grant); an onward forward does share."""
    if labels is None:
        return False
    kind = labels.message_type
    return kind not in PROTOCOL_TYPES or kind is MessageType.ONWARD_FORWARD


_CSV_COLUMNS = (
    "index",
    "decided_at",
    "kind",
    "decision",
    "sender",
    "recipient",
    "accord",
    "reason_code",
    "message_id",
    "rule_ids",
    "data_categories",
    "reasons",
)


def write_csv(
    entries: Iterable[Entry], out: TextIO, *, exclude: Container[int] = frozenset()
) -> int:
    """Every authenticated, readable record as one CSV row (streaming); returns the rows.

    A cell that a spreadsheet would run as a formula (one starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return) is written with a leading apostrophe: reasons carry
    text a partner chose.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    rows = 0
    for index, record, left_out in _records(entries, exclude):
        if left_out or record is None:
            continue
        row = Decision.of(index, record)
        writer.writerow(
            inert_cell(str(cell))
            for cell in (
                row.index,
                row.decided_at,
                row.kind,
                row.decision,
                row.sender,
                row.recipient,
                row.accord,
                row.reason,
                row.message_id,
                ";".join(row.rule_ids),
                ";".join(row.categories),
                " | ".join(row.reasons),
            )
        )
        rows += 1
    return rows


def inert_cell(cell: str) -> str:
    """``cell`` as a spreadsheet shows it but never runs it: a leading apostrophe before
    what would start a formula (``=``, ``+``, ``-``, ``@``, a tab or a carriage return)."""
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def render_text(summary: Summary) -> str:
    """A plain-text summary for the terminal."""
    lines = [
        f"records: {summary.records} ({_kinds(summary)}), from {summary.first or '-'} "
        f"to {summary.last or '-'}"
    ]
    if summary.excluded:
        lines.append(f"left out, not authenticated: {summary.excluded}")
    if summary.unreadable:
        lines.append(f"unreadable records: {summary.unreadable}")
    lines.append("sharing matrix (disclosures by sender -> recipient and data category):")
    for (sender, recipient, category), count in sorted(summary.matrix.items()):
        lines.append(f"  {sender} -> {recipient}  {category:<20} {count}")
    lines.append("refusals by reason:")
    for reason, count in summary.refusals.most_common():
        lines.append(f"  {reason:<24} {count}")
    return "\n".join(lines) + "\n"


def render_html(
    summary: Summary, *, title: str, verdict: Verdict, provenance: Provenance | None = None
) -> str:
    """The self-contained HTML page."""
    e = html.escape
    categories = sorted({c for _, _, c in summary.matrix})
    pairs = sorted({(s, r) for s, r, _ in summary.matrix})
    head = "".join(f"<th scope='col'>{e(c)}</th>" for c in categories)
    rows = []
    for sender, recipient in pairs:
        cells = "".join(
            f"<td data-sender='{e(sender)}' data-recipient='{e(recipient)}' "
            f"data-category='{e(c)}'>{summary.matrix.get((sender, recipient, c), 0)}</td>"
            for c in categories
        )
        rows.append(f"<tr><th scope='row'>{e(sender)} &rarr; {e(recipient)}</th>{cells}</tr>")
    refusals = "".join(
        f"<tr><td>{e(reason)}</td><td>{count}</td></tr>"
        for reason, count in summary.refusals.most_common()
    )
    bad = "" if verdict.first_bad_index is None else str(verdict.first_bad_index)
    excluded = (
        f"; {summary.excluded} records left out of every count: not authenticated"
        if summary.excluded
        else ""
    )
    return _PAGE.format(
        title=e(title),
        outcome="ok" if verdict.verified else "failed",
        verified="true" if verdict.verified else "false",
        first_bad=e(bad),
        verification=e(verdict.text),
        overview=e(
            f"{summary.records} records ({_kinds(summary)}), "
            f"{summary.first or '-'} to {summary.last or '-'}{excluded}"
        ),
        provenance=_provenance(provenance),
        totals=_totals(summary),
        head=head,
        rows="".join(rows) or "<tr><td>no disclosures</td></tr>",
        refusals=refusals or "<tr><td colspan='2'>no refusals</td></tr>",
        timeline=_timeline_svg(summary),
        legend=_legend(),
        filters=_filters(summary.decisions),
        decisions=_decisions(summary),
    )


def _provenance(provenance: Provenance | None) -> str:
    if provenance is None:
        return ""
    e = html.escape
    witnesses = ", ".join(provenance.witnesses) or "none"
    rows = (
        (
            "registry",
            f"version {provenance.registry_version}, SHA-256 {provenance.registry_sha256}",
            "registry",
        ),
        ("newest signed checkpoint", provenance.checkpoint, "checkpoint"),
        ("its witnesses", witnesses, "witnesses"),
    )
    cells = "".join(
        f"<tr><th scope='row'>{e(name)}</th><td data-field='{field}'>{e(value)}</td></tr>"
        for name, value, field in rows
    )
    return f"<h2>What was verified</h2><table id='provenance'><tbody>{cells}</tbody></table>"


def _totals(summary: Summary) -> str:
    kinds = ("disclosure", "refusal", "refusal_summary", "receipt", "accord_act")
    figures = [(k, summary.by_kind.get(k, 0)) for k in kinds]
    figures += [("refusals in all", sum(summary.refusals.values()))]
    figures += [("left out, not authenticated", summary.excluded)]
    figures += [("unreadable", summary.unreadable)]
    cells = "".join(
        f"<tr><th scope='row'>{html.escape(name)}</th>"
        f"<td data-total='{html.escape(name)}'>{count}</td></tr>"
        for name, count in figures
    )
    return f"<table id='totals'><tbody>{cells}</tbody></table>"


def _legend() -> str:
    items = "".join(
        f"<li><svg width='12' height='12' aria-hidden='true'><rect width='12' height='12' "
        f"fill='{colour}'/></svg> {html.escape(kind)}</li>"
        for kind, colour in _COLOURS.items()
    )
    return f"<ul id='legend'>{items}</ul>"


def _filters(decisions: list[Decision]) -> str:
    e = html.escape
    partners = sorted(({d.sender for d in decisions} | {d.recipient for d in decisions}) - {""})
    accords = sorted({d.accord.split(" ")[0] for d in decisions if d.accord})
    reasons = sorted({d.reason for d in decisions if d.reason})

    def select(name: str, values: list[str]) -> str:
        options = "".join(f"<option value='{e(v)}'>{e(v)}</option>" for v in values)
        return (
            f"<label>{name} <select id='filter-{name}' data-filter='{name}'>"
            f"<option value=''>all</option>{options}</select></label> "
        )

    return (
        "<p id='filters'>"
        + select("partner", partners)
        + select("accord", accords)
        + select("reason", reasons)
        + "</p>"
    )


def _decisions(summary: Summary) -> str:
    e = html.escape
    rows = []
    for d in summary.decisions:
        detail = (
            f"<details><summary>{e(d.message_id or d.kind)}</summary><dl>"
            f"<dt>message id</dt><dd>{e(d.message_id or '-')}</dd>"
            f"<dt>rule ids</dt><dd>{e(', '.join(d.rule_ids) or '-')}</dd>"
            f"<dt>accord version</dt><dd>{e(d.accord or '-')}</dd>"
            f"<dt>data categories</dt><dd>{e(', '.join(d.categories) or '-')}</dd>"
            f"<dt>reasons</dt><dd>{e('; '.join(d.reasons) or '-')}</dd></dl></details>"
        )
        rows.append(
            f"<tr data-index='{d.index}' data-sender='{e(d.sender)}' "
            f"data-recipient='{e(d.recipient)}' data-accord='{e(d.accord.split(' ')[0])}' "
            f"data-reason='{e(d.reason)}'><td>{d.index}</td><td>{e(d.decided_at)}</td>"
            f"<td>{e(d.kind)}</td><td class='{e(d.decision)}'>{e(d.decision)}</td>"
            f"<td>{e(d.sender)}</td><td>{e(d.recipient)}</td><td>{e(d.accord)}</td>"
            f"<td>{e(d.reason)}</td><td class='detail'>{detail}</td></tr>"
        )
    shown = len(summary.decisions)
    total = summary.records - summary.unreadable
    note = (
        f"<p>The first {shown} of {total} records; <code>broker audit report --csv</code> "
        "writes all.</p>"
        if shown < total
        else ""
    )
    body = "".join(rows) or "<tr><td colspan='9'>no records</td></tr>"
    return (
        f"{note}<table id='decisions'><thead><tr><th>index</th><th>decided at</th>"
        "<th>kind</th><th>decision</th><th>sender</th><th>recipient</th><th>accord</th>"
        f"<th>reason</th><th>detail</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _kinds(summary: Summary) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(summary.by_kind.items())) or "none"


_COLOURS = {
    "disclosure": "#2b6cb0",
    "refusal": "#c53030",
    "receipt": "#718096",
    "accord_act": "#975a16",
    "refusal_summary": "#dd6b20",
}


def _timeline_svg(summary: Summary) -> str:
    days = sorted({day for day, _ in summary.timeline})
    if not days:
        return "<p>no records</p>"
    peak = max(sum(summary.timeline.get((d, k), 0) for k in _COLOURS) for d in days) or 1
    width, height, bar = max(320, 28 * len(days)), 160, 20
    parts = [
        f"<svg id='timeline' xmlns='http://www.w3.org/2000/svg' width='{width}' "
        f"height='{height + 20}' role='img' aria-label='records per day'>"
    ]
    for i, day in enumerate(days):
        y = height
        for kind, colour in _COLOURS.items():
            count = summary.timeline.get((day, kind), 0)
            h = round(count * (height - 10) / peak)
            y -= h
            parts.append(
                f"<rect x='{i * 28 + 4}' y='{y}' width='{bar}' height='{h}' fill='{colour}'>"
                f"<title>{html.escape(day)}: {count} {kind}</title></rect>"
            )
        parts.append(
            f"<text x='{i * 28 + 4}' y='{height + 14}' font-size='8'>{html.escape(day[5:])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1a202c; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #cbd5e0; padding: 4px 8px; text-align: right; vertical-align: top; }}
th[scope=row], #decisions td, #provenance td {{ text-align: left; }}
td.hot {{ background: #ebf8ff; }}
td.deny {{ color: #9b2c2c; font-weight: bold; }}
#provenance td {{ font-family: ui-monospace, monospace; word-break: break-all; }}
#legend {{ list-style: none; padding: 0; display: flex; gap: 1.5em; }}
dl {{ margin: 0; display: grid; grid-template-columns: max-content auto; gap: 0 1em; }}
dt {{ font-weight: bold; }} dd {{ margin: 0; }}
.verification {{ padding: 6px 10px; border-left: 6px solid; }}
.verification.ok {{ background: #f0fff4; border-color: #2f855a; color: #22543d; }}
.verification.failed {{ background: #fff5f5; border-color: #c53030; color: #9b2c2c;
  font-weight: bold; font-size: 1.2em; }}
@media print {{
  body {{ margin: 0; font-size: 10pt; }}
  #filters {{ display: none; }}
  details > *:not(summary) {{ display: block; }}
  tr {{ break-inside: avoid; }}
  .verification {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
}}
</style></head>
<body>
<h1>{title}</h1>
<p id="verification" class="verification {outcome}" data-verified="{verified}"
 data-first-bad-index="{first_bad}">{verification}</p>
<p>{overview}</p>
{provenance}
<h2>Totals</h2>
{totals}
<h2>Sharing matrix: disclosures by partner pair and data category</h2>
<table id="sharing-matrix"><thead><tr><th>sender &rarr; recipient</th>{head}</tr></thead>
<tbody>{rows}</tbody></table>
<h2>Refusals by reason</h2>
<table id="refusals"><thead><tr><th>reason</th><th>records</th></tr></thead>
<tbody>{refusals}</tbody></table>
<h2>Timeline</h2>
{legend}
{timeline}
<h2>Decisions</h2>
{filters}
{decisions}
<script>
"use strict";
// Shade non-zero matrix cells; record the colour the verification result is shown in, so a
// check of the page can see it; a marker on <body> shows the script ran.
for (const cell of document.querySelectorAll("#sharing-matrix td[data-category]")) {{
  if (cell.textContent !== "0") cell.classList.add("hot");
}}
const verification = document.getElementById("verification");
verification.dataset.colour = getComputedStyle(verification).backgroundColor;
// Filters: the controls, or the address's fragment (#partner=RS&reason=policy_denied) so a
// filtered view can be linked to. A row stays when it matches every filter set.
const selects = [...document.querySelectorAll("select[data-filter]")];
function applyFilters() {{
  const wanted = Object.fromEntries(selects.map((s) => [s.dataset.filter, s.value]));
  let shown = 0;
  for (const row of document.querySelectorAll("#decisions tbody tr[data-index]")) {{
    const d = row.dataset;
    const keep = (!wanted.partner || d.sender === wanted.partner || d.recipient === wanted.partner)
      && (!wanted.accord || d.accord === wanted.accord)
      && (!wanted.reason || d.reason === wanted.reason);
    row.hidden = !keep;
    if (keep) shown += 1;
  }}
  document.body.dataset.shown = String(shown);
}}
const fragment = new URLSearchParams(location.hash.slice(1));
for (const s of selects) {{
  const value = fragment.get(s.dataset.filter);
  if (value !== null && [...s.options].some((o) => o.value === value)) s.value = value;
  s.addEventListener("change", applyFilters);
}}
applyFilters();
document.body.dataset.ready = "1";
</script>
</body></html>
"""
