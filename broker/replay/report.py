"""The auditor's report: who disclosed which data categories to whom, what was refused and why,
and when, as a terminal summary and as one self-contained HTML page.

Only authenticated records are counted: whatever verification found not to be a valid
gateway record in its place (``exclude``) is left out of every count and counted apart. The
page has no external assets (inline CSS, inline script, inline SVG) so it opens offline and
leaks nothing when opened; every value from the log is HTML-escaped. The verification result
is ``#verification``, coloured by outcome, with ``data-verified`` and, on failure,
``data-first-bad-index``; the sharing matrix is a table ``#sharing-matrix`` whose cells carry
``data-sender``, ``data-recipient`` and ``data-category`` attributes, so the page can be
checked mechanically.
"""

from __future__ import annotations

import collections
import dataclasses
import html
from collections.abc import Container, Iterable

from broker import errors
from broker.ledger import is_checkpoint_record
from broker.pipeline import refusal_counts
from broker.pipeline.records import AuditKind, parse_audit_record
from broker.replay.bundle import Entry
from broker.replay.verify import VerifyReport

__all__ = ["Summary", "Verdict", "render_html", "render_text", "summarize"]


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


def summarize(entries: Iterable[Entry], *, exclude: Container[int] = frozenset()) -> Summary:
    """Count every audit record but those whose index is in ``exclude`` (checkpoints are
    skipped), streaming."""
    summary = Summary()
    index = -1
    for entry in entries:
        if not entry.damaged and is_checkpoint_record(entry.value):
            continue
        index += 1
        if index in exclude:
            summary.excluded += 1
            continue
        summary.records += 1
        try:
            record = parse_audit_record(entry.value)
        except errors.SchemaError:
            summary.unreadable += 1
            continue
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
        elif record.kind is AuditKind.DISCLOSURE and record.labels is not None:
            sender, recipient = record.sender or "?", record.recipient or "?"
            for category in record.labels.data_categories:
                summary.matrix[sender, recipient, str(category)] += 1
    return summary


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


def render_html(summary: Summary, *, title: str, verdict: Verdict) -> str:
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
        head=head,
        rows="".join(rows) or "<tr><td>no disclosures</td></tr>",
        refusals=refusals or "<tr><td colspan='2'>no refusals</td></tr>",
        timeline=_timeline_svg(summary),
    )


def _kinds(summary: Summary) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(summary.by_kind.items())) or "none"


_COLOURS = {
    "disclosure": "#2b6cb0",
    "refusal": "#c53030",
    "receipt": "#718096",
    "accord_act": "#975a16",
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
th, td {{ border: 1px solid #cbd5e0; padding: 4px 8px; text-align: right; }}
th[scope=row] {{ text-align: left; }}
td.hot {{ background: #ebf8ff; }}
.verification {{ padding: 6px 10px; border-left: 6px solid; }}
.verification.ok {{ background: #f0fff4; border-color: #2f855a; color: #22543d; }}
.verification.failed {{ background: #fff5f5; border-color: #c53030; color: #9b2c2c;
  font-weight: bold; font-size: 1.2em; }}
</style></head>
<body>
<h1>{title}</h1>
<p id="verification" class="verification {outcome}" data-verified="{verified}"
 data-first-bad-index="{first_bad}">{verification}</p>
<p>{overview}</p>
<h2>Sharing matrix: disclosures by partner pair and data category</h2>
<table id="sharing-matrix"><thead><tr><th>sender &rarr; recipient</th>{head}</tr></thead>
<tbody>{rows}</tbody></table>
<h2>Refusals by reason</h2>
<table id="refusals"><thead><tr><th>reason</th><th>records</th></tr></thead>
<tbody>{refusals}</tbody></table>
<h2>Timeline</h2>
{timeline}
<script>
"use strict";
// Shade non-zero matrix cells; record the colour the verification result is shown in, so a
// check of the page can see it; a marker on <body> shows the script ran.
for (const cell of document.querySelectorAll("#sharing-matrix td[data-category]")) {{
  if (cell.textContent !== "0") cell.classList.add("hot");
}}
const verification = document.getElementById("verification");
verification.dataset.colour = getComputedStyle(verification).backgroundColor;
document.body.dataset.ready = "1";
</script>
</body></html>
"""
