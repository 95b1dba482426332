"""Each message's fate, as the exchange's own surfaces show it.

One :class:`Row` per view (a message to one recipient). The tracker learns what happened from
what an operator can observe, cheaply enough to poll several times a second:

- the sender's spool: out of ``incoming/`` (sealed; the ``sent/`` copy goes once Kafka
  acknowledged it) or into ``rejected/`` with the adapter's reason (refused);
- the audit topic: the gateway's signed ``disclosure`` decisions (delivered);
- the quarantine topic: what the gateway stopped, with its reason code (quarantined);
- each running partner's delivery directory, written after the adapter stored the message in
  its inbox (stored at R; a ``receipt`` there names the message it acknowledges: receipt back).

Fates only move forward; a final fate (receipt back, refused, quarantined) is never replaced.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from broker import errors
from broker.demo.scenario import Step
from broker.ledger import is_checkpoint_record
from broker.pipeline import parse_audit_record, parse_quarantine_record
from broker.pipeline.receipts import receipt_lines
from broker.schema import DataCategory, Message, categories_present, parse_message
from broker.transport.kafka import Record

__all__ = ["Fate", "Row", "Tracker"]

_SHORT_TAIL: Final = 4


class Fate(enum.IntEnum):
    """How far a view got; the order is the order things happen in."""

    WAITING = 0
    SEALED = 1
    DELIVERED = 2
    STORED = 3
    RECEIPTED = 4
    REFUSED = 5
    QUARANTINED = 6

    @property
    def final(self) -> bool:
        """Nothing more will happen to the view."""
        return self >= Fate.RECEIPTED


@dataclasses.dataclass
class Row:
    """One view: ``sender`` -> ``recipient`` of step ``step``."""

    step: int
    sender: str
    recipient: str
    message_type: str
    message_id: str | None = None
    fate: Fate = Fate.WAITING
    #: why it was refused or quarantined, or which categories the recipient's view lost
    detail: str = ""
    at_s: float | None = None

    @property
    def short_id(self) -> str:
        """The message id's time prefix and random tail (views sealed in the same millisecond
        share the prefix), or ``-`` while it is not known."""
        if not self.message_id:
            return "-"
        return f"{self.message_id[:8]}..{self.message_id[-_SHORT_TAIL:]}"

    @property
    def outcome(self) -> str:
        """The final fate and its reason code: ``receipt back``, ``refused: no_accord``,
        ``quarantined: bad_signature``; ``waiting``, ``sealed``... while not final."""
        name = {Fate.RECEIPTED: "receipt back", Fate.REFUSED: "refused",
                Fate.QUARANTINED: "quarantined"}.get(self.fate, self.fate.name.lower())  # fmt: skip
        if self.fate >= Fate.REFUSED:
            return f"{name}: {self.detail.partition(':')[0]}"
        return name

    def describe(self) -> str:
        """The fate in words, e.g. ``stored at RS`` or ``refused at RS: no_accord``."""
        words = {
            Fate.WAITING: "waiting",
            Fate.SEALED: "sealed",
            Fate.DELIVERED: "delivered by the gateway",
            Fate.STORED: f"stored at {self.recipient}",
            Fate.RECEIPTED: "receipt back",
            Fate.REFUSED: f"refused at {self.sender}'s adapter",
            Fate.QUARANTINED: "quarantined by the gateway",
        }[self.fate]
        return f"{words}: {self.detail}" if self.fate >= Fate.REFUSED else words


class Tracker:
    """The rows of a scenario and the observations that move them on."""

    def __init__(
        self,
        *,
        delivery_dirs: dict[str, Path],
        spool_dirs: dict[str, Path],
        audit_topic: str,
        witness_topic: str | None = None,
    ) -> None:
        self.rows: list[Row] = []
        #: the audit topic's records in offset order, checkpoints included (for the export)
        self.audit_records: list[Record] = []
        #: the witness topic's records (cosigned checkpoints), for the export
        self.witness_records: list[Record] = []
        self._witness_topic = witness_topic
        self._steps: dict[int, Step] = {}
        self._delivery_dirs = delivery_dirs
        self._spool_dirs = spool_dirs
        self._audit_topic = audit_topic
        self._seen_files: set[Path] = set()
        self._pending_receipts: list[tuple[str, str]] = []
        self._spool_files: dict[int, str] = {}
        self._started = time.monotonic()
        self.changes: list[Row] = []

    # what the scenario tells the tracker --------------------------------------------------

    def add_step(self, index: int, step: Step, *, message_id: str | None = None) -> None:
        """Add one waiting row per recipient of ``step``; ``message_id`` when the demo seals
        it itself (else the sender's adapter chooses it and the tracker learns it)."""
        self._steps[index] = step
        for recipient in step.to:
            self.rows.append(Row(index, step.sender, recipient, str(step.message.type), message_id))

    def sealed(self, index: int) -> None:
        """Step ``index`` was sealed and written onto the outbox by the demo itself."""
        for row in self.rows:
            if row.step == index:
                self._move(row, Fate.SEALED)

    def spooled(self, index: int, path: Path | None, views: Iterable[dict[str, str]]) -> None:
        """Step ``index`` went through ``broker send``: queued as spool file ``path`` (none if
        every recipient was refused), each recipient's view queued under its message id or
        refused with its reason."""
        if path is not None:
            self._spool_files[index] = path.name
        for view in views:
            for row in self.rows:
                if row.step != index or row.recipient != view["recipient"]:
                    continue
                if view["state"] == "refused":
                    self._move(row, Fate.REFUSED, f"{view['reason_code']}: {view['reason']}")
                else:
                    row.message_id = view["message_id"]

    # observations --------------------------------------------------------------------------

    def observe_records(self, records: Iterable[Record]) -> None:
        """Records read from the audit, witness and quarantine topics."""
        for record in records:
            value = record.value or b""
            if record.topic == self._witness_topic:
                self.witness_records.append(record)
            elif record.topic == self._audit_topic:
                self.audit_records.append(record)
                if not is_checkpoint_record(value):
                    self._audit(value)
            else:
                self._quarantine(value)

    def poll_files(self) -> None:
        """Look at the spools and the delivery directories once."""
        for index, name in self._spool_files.items():
            self._spool(index, name)
        for partner, directory in self._delivery_dirs.items():
            for path in sorted(directory.glob("*.json")):
                if path not in self._seen_files:
                    self._seen_files.add(path)
                    self._delivered_file(partner, path)
        # Receipts last, and kept until their view is matched: a receipt can be on disk before
        # the poll reaches the view it acknowledges, whose file says what the view lost.
        self._pending_receipts = [r for r in self._pending_receipts if not self._receipted(*r)]

    @property
    def done(self) -> bool:
        """Every row has reached a final fate."""
        return all(row.fate.final for row in self.rows)

    def take_changes(self) -> list[Row]:
        """The rows whose fate changed since the last call, in the order they changed."""
        changed, self.changes = self.changes, []
        return changed

    # internals -----------------------------------------------------------------------------

    def _move(self, row: Row, fate: Fate, detail: str = "") -> None:
        if row.fate.final or fate <= row.fate:
            return
        row.fate, row.at_s = fate, time.monotonic() - self._started
        if detail:
            row.detail = detail
        self.changes.append(dataclasses.replace(row))  # as it is now: it moves on

    def _find(self, message_id: str | None, sender: str | None, recipient: str | None,
              message_type: str | None) -> Row | None:  # fmt: skip
        """The row with ``message_id``; else the one view of that flow whose id is not known
        yet (its sender's adapter chose it), which then takes the id."""
        for row in self.rows:
            if message_id is not None and row.message_id == message_id:
                return row
        for row in self.rows:
            if (row.message_id is None and row.fate < Fate.REFUSED
                    and (row.sender, row.recipient, row.message_type)
                    == (sender, recipient, message_type)):  # fmt: skip
                row.message_id = message_id
                return row
        return None

    def _audit(self, value: bytes) -> None:
        try:
            record = parse_audit_record(value)
        except errors.SchemaError:
            return  # the auditor's verify reports an unreadable record; not a fate
        if record.kind != "disclosure" or record.labels is None:
            return
        row = self._find(record.message_id, record.sender, record.recipient,
                         str(record.labels.message_type))  # fmt: skip
        if row is not None:
            self._move(row, Fate.DELIVERED)

    def _quarantine(self, value: bytes) -> None:
        try:
            record = parse_quarantine_record(value)
        except errors.SchemaError:
            return
        for row in self.rows:
            if record.message_id is not None and row.message_id == record.message_id:
                self._move(row, Fate.QUARANTINED, str(record.reason_code))

    def _spool(self, index: int, name: str) -> None:
        step = self._steps[index]
        spool = self._spool_dirs[step.sender]
        rows = [row for row in self.rows if row.step == index]
        rejected = spool / "rejected" / name
        if rejected.exists():
            reasons = _reasons(spool / "rejected" / f"{name}.reason")
            for row in rows:
                self._move(row, Fate.REFUSED, reasons.get(row.recipient, "refused"))
        elif not (spool / "incoming" / name).exists():
            # handled and not rejected: sealed (its sent/ copy goes once acknowledged)
            reasons = _reasons(spool / "sent" / f"{name}.reason")
            for row in rows:
                if row.recipient in reasons:
                    self._move(row, Fate.REFUSED, reasons[row.recipient])
                else:
                    self._move(row, Fate.SEALED)

    def _delivered_file(self, partner: str, path: Path) -> None:
        delivered = read_delivery(path)
        if delivered is None:
            return  # not one of the adapter's files
        message, sender = delivered
        if message.type == "receipt":
            lines = receipt_lines(message)
            self._pending_receipts += [(str(line.message_id), sender) for line in lines]
            return
        row = self._find(path.stem, sender, partner, str(message.type))
        if row is not None:
            original = categories_present(self._steps[row.step].message)
            lost = original - categories_present(message)
            self._move(row, Fate.STORED, _lost(lost))

    def _receipted(self, acknowledged: str, sender: str) -> bool:
        """Move the acknowledged view to 'receipt back' once it has been seen stored."""
        for row in self.rows:
            if row.message_id == acknowledged and row.recipient == sender:
                if row.fate < Fate.STORED and not row.fate.final:
                    return False  # its stored view has not been read yet
                self._move(row, Fate.RECEIPTED, row.detail)
                return True
        return False


def read_delivery(path: Path) -> tuple[Message, str] | None:
    """The message in one of an adapter's delivery files, and its sender; ``None`` for
    anything else."""
    try:
        document: dict[str, Any] = json.loads(path.read_bytes())
        return parse_message(json.dumps(document["message"]).encode()), str(document["sender"])
    except (OSError, ValueError, KeyError, TypeError, errors.SchemaError):
        return None


def receipt_file(directory: Path, view: str) -> Path | None:
    """The delivery file in ``directory`` holding a receipt (either version) for ``view``."""
    for path in directory.glob("*.json"):
        delivered = read_delivery(path)
        if delivered is not None and any(
            line.message_id == view for line in receipt_lines(delivered[0])
        ):
            return path
    return None


def _lost(categories: frozenset[DataCategory]) -> str:
    return "lost " + ", ".join(sorted(categories)) if categories else "nothing removed"


def _reasons(path: Path) -> dict[str, str]:
    """``RS: no_accord: why`` lines -> ``{"RS": "no_accord: why"}``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        code, _, rest = line.partition(": ")
        found[code] = rest
    return found
