"""How the demo shows the fates: a rich table redrawn live on a terminal, plain lines elsewhere."""

from __future__ import annotations

from typing import Final

from rich.table import Table

from broker.demo.scenario import Step
from broker.demo.tracker import Fate, Row, Tracker

__all__ = ["fates_table", "plain_line"]

_STYLE: Final = {
    Fate.WAITING: "dim",
    Fate.SEALED: "cyan",
    Fate.DELIVERED: "blue",
    Fate.STORED: "green",
    Fate.RECEIPTED: "bold green",
    Fate.REFUSED: "bold yellow",
    Fate.QUARANTINED: "bold red",
}


def fates_table(tracker: Tracker, steps: tuple[Step, ...], *, elapsed_s: float) -> Table:
    """One row per view: id, from -> to, type, fate, and what it lost or why it was stopped."""
    table = Table(title=f"the exchange, {elapsed_s:4.1f} s", title_justify="left")
    for column in ("step", "message id", "from -> to", "type", "fate", "detail"):
        table.add_column(column, overflow="fold")
    for row in tracker.rows:
        fate = row.describe() if row.fate < Fate.REFUSED else row.outcome
        table.add_row(
            steps[row.step].title,
            row.short_id,
            f"{row.sender} -> {row.recipient}",
            row.message_type,
            f"[{_STYLE[row.fate]}]{fate}[/]",
            _detail(row),
        )
    return table


def plain_line(row: Row, steps: tuple[Step, ...]) -> str:
    """One line for a fate change, e.g. ``  3.2 s  01a2...  GB -> RS  network.report: ...``."""
    at = f"{row.at_s:5.1f} s" if row.at_s is not None else "      "
    detail = _detail(row)
    return (
        f"{at}  {row.short_id:<13}  {row.sender} -> {row.recipient}  {row.message_type:<17} "
        f"{row.describe()}{f' ({detail})' if detail and row.fate < Fate.REFUSED else ''}"
        f"  [{steps[row.step].title}]"
    )


def _detail(row: Row) -> str:
    if row.fate >= Fate.REFUSED:
        return row.detail.partition(": ")[2] or row.detail
    return row.detail
