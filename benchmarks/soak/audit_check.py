"""The audit half of §A9.6 at the end of a soak or a fault test: the chain verifies and every
decision replays.

The history checker (``broker.checker``) counts audit records per decision; it cannot verify
the log, because ``broker.replay`` sits beside it in the same layer. This module, above both,
does what an auditor would with ``broker audit export``, ``verify --thorough`` and ``replay``,
through the same library functions:

1. :func:`broker.replay.export_topic` copies the federation's audit topic (``<prefix>audit``)
   into a bundle with the federation's registry and every accord version in its accords
   directory (plus any given), read through a fresh ``auditor-`` group until quiet;
2. :func:`broker.replay.verify_entries` with ``thorough=True``: every checkpoint's signature
   (a gateway key valid at its time), its listed leaves against its signed root, so every
   signed checkpoint is reproduced from the records and consecutive ones are consistent,
   forks, every record against the signed leaves, and every record's own signature and
   strict form;
3. :func:`broker.replay.replay_entries`: each policy decision re-evaluated under the accord
   version whose digest it names, with its own ``decided_at`` as the time.

Records after the newest checkpoint (the unsigned tail: a gateway checkpoints every minute or
1,000 records) are reported, and are covered by their own signatures. A log with no
checkpoint at all still passes on those signatures; :attr:`AuditCheck.checkpoints` says so.
Cost: the bundle is a second copy of the topic on disk, and verifying and replaying it read it
twice; a long run prints its progress to stderr.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

from broker.clock import SystemClock
from broker.config import audit_topic
from broker.cosign import accord_digest
from broker.demo.federation import Federation
from broker.keys import Registry
from broker.ledger import RecordSource
from broker.pipeline.records import format_time
from broker.policy import Accord, load_accord
from broker.replay import Entry, iter_entries, read_header, replay_entries, verify_entries
from broker.replay import export_topic as _export_topic
from broker.transport.kafka import ConsumerSettings, Record, open_consumer

__all__ = ["AuditCheck", "check_audit", "check_bundle"]

#: problems listed in a result; the counts always cover all of them
_MAX_PROBLEMS = 20
#: a check shorter than this prints nothing; past it, a line at most this often
_PROGRESS_S = 5.0


@dataclasses.dataclass(frozen=True)
class AuditCheck:
    """What verifying and replaying one audit log found. ``passed`` is the gate; the object
    itself has no truth value."""

    #: audit records (the Merkle leaves), checkpoints with a valid signature, and the
    #: records those checkpoints sign; the rest is the unsigned tail
    records: int
    checkpoints: int
    signed: int
    unsigned_tail: int
    #: policy decisions re-evaluated, and how many came out differently from the record
    reevaluated: int
    replay_mismatches: int
    #: one line per finding (verification first, then replay); at most 20 of each are kept
    problems: tuple[str, ...]
    #: seconds spent exporting (0 for a bundle given), verifying and replaying
    timings_s: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """The log verifies (every signature, every checkpoint, nothing out of place) and
        every decision replays as recorded."""
        return not self.problems

    def __bool__(self) -> NoReturn:
        raise TypeError("an AuditCheck has no truth value: use .passed")

    def summary(self) -> str:
        """One line: the outcome, the counts, the time taken and the first problem."""
        spent = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings_s.items())
        line = (
            f"audit {'PASS' if self.passed else 'FAIL'}: {self.records} records, "
            f"{self.checkpoints} checkpoints signing {self.signed} (unsigned tail "
            f"{self.unsigned_tail}), {self.reevaluated} decisions replayed, "
            f"{self.replay_mismatches} mismatches"
        )
        if spent:
            line += f"; {spent}"
        if self.problems:
            line += f"; {len(self.problems)} problems, first: {self.problems[0]}"
        return line

    def to_json(self) -> dict[str, Any]:
        """The counts, the problems and the timings, for reports."""
        return {
            "passed": self.passed,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "signed": self.signed,
            "unsigned_tail": self.unsigned_tail,
            "reevaluated": self.reevaluated,
            "replay_mismatches": self.replay_mismatches,
            "problems": list(self.problems),
            "timings_s": {k: round(v, 2) for k, v in self.timings_s.items()},
        }


def check_audit(
    federation: Federation,
    *,
    bundle: pathlib.Path | None = None,
    accords: Sequence[pathlib.Path] = (),
    quiet_s: float = 3.0,
    progress: Callable[[str], None] | None = None,
) -> AuditCheck:
    """Export ``federation``'s audit topic, verify it thoroughly and replay every decision.

    The bundle is written to ``bundle`` when given (kept, for ``broker audit`` to re-check),
    else to a temporary file. ``accords`` are accord files beyond the federation's accords
    directory (versions it no longer holds). ``progress`` receives a line now and then on a
    check that takes more than a few seconds (default: stderr).
    """
    if bundle is not None:
        return _check_exported(federation, bundle, accords, quiet_s, progress)
    with tempfile.TemporaryDirectory(prefix="audit-check-") as scratch:
        path = pathlib.Path(scratch) / "audit.bundle"
        return _check_exported(federation, path, accords, quiet_s, progress)


def check_bundle(
    path: pathlib.Path,
    *,
    registry: Registry | None = None,
    accords: Iterable[Accord] = (),
    total: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> AuditCheck:
    """Verify (thorough) and replay the bundle at ``path``, offline.

    ``registry`` pins the registry to trust (default: the bundle's own, which must pass its
    root threshold); ``accords`` add accord versions to the bundle's; ``total`` (the number of
    entries, when known) only makes the progress lines say how far along they are.
    """
    header = read_header(path)
    trusted = registry if registry is not None else header.registry()
    known = header.accords()
    known.update({accord_digest(a): a for a in accords})
    report = _Progress(progress)
    started = time.monotonic()
    verified = verify_entries(
        report.counting(iter_entries(path), total), registry=trusted, thorough=True
    )
    verified_s = time.monotonic() - started
    started = time.monotonic()
    replayed = replay_entries(
        iter_entries(path),
        accords=known,
        progress=lambda done: report.line("replayed", done, verified.records, "records"),
    )
    replayed_s = time.monotonic() - started
    problems = [f"verify: {finding.describe()}" for finding in verified.findings[:_MAX_PROBLEMS]]
    if len(verified.findings) > _MAX_PROBLEMS:
        problems.append(f"verify: {len(verified.findings) - _MAX_PROBLEMS} more findings")
    problems += [
        f"replay: index {item.index} message {item.message_id}: {item.detail}"
        for item in replayed.disagreements[:_MAX_PROBLEMS]
    ]
    if len(replayed.disagreements) > _MAX_PROBLEMS:
        problems.append(f"replay: {len(replayed.disagreements) - _MAX_PROBLEMS} more mismatches")
    return AuditCheck(
        records=verified.records,
        checkpoints=verified.checkpoints,
        signed=verified.signed_size,
        unsigned_tail=verified.unsigned_tail,
        reevaluated=replayed.reevaluated,
        replay_mismatches=len(replayed.disagreements),
        problems=tuple(problems),
        timings_s={"verify": verified_s, "replay": replayed_s},
    )


def _check_exported(
    federation: Federation,
    path: pathlib.Path,
    extra: Sequence[pathlib.Path],
    quiet_s: float,
    progress: Callable[[str], None] | None,
) -> AuditCheck:
    files = [*sorted(federation.accords_dir.glob("*.yaml")), *extra]
    accords = [load_accord(f) for f in files]
    started = time.monotonic()
    entries = asyncio.run(_export(federation, path, accords, quiet_s, _Progress(progress)))
    exported_s = time.monotonic() - started
    checked = check_bundle(path, total=entries, progress=progress)
    timings = {"export": exported_s, **checked.timings_s}
    return dataclasses.replace(checked, timings_s=timings)


async def _export(
    federation: Federation,
    path: pathlib.Path,
    accords: Sequence[Accord],
    quiet_s: float,
    report: _Progress,
) -> int:
    """What ``broker audit export`` does: a fresh ``auditor-`` group, read until quiet."""
    topic = audit_topic(federation.prefix)
    settings = ConsumerSettings(
        bootstrap=federation.bootstrap,
        group_id=f"auditor-{uuid.uuid4().hex[:12]}",
        client_id="broker-audit-check",
        session_timeout_ms=6000,
        security=federation.access.security(),
    )
    async with open_consumer(settings, [topic]) as consumer:
        result = await _export_topic(
            _Counted(consumer, report),
            path,
            topic=topic,
            exported_at=format_time(SystemClock().now()),
            registry_bytes=federation.registry_path.read_bytes(),
            accords=accords,
            quiet_s=quiet_s,
        )
    return result.entries


class _Progress:
    """Progress lines for a long check: nothing in the first few seconds, then one line at
    most every few seconds."""

    def __init__(self, sink: Callable[[str], None] | None) -> None:
        self.sink = sink if sink is not None else _stderr
        self.started = self.last = time.monotonic()

    def line(self, what: str, done: int, total: int | None, unit: str) -> None:
        now = time.monotonic()
        if now - self.started < _PROGRESS_S or now - self.last < _PROGRESS_S:
            return
        self.last = now
        of = "" if total is None else f" of {total}"
        self.sink(f"audit check: {what} {done}{of} {unit} ({now - self.started:.0f} s)")

    def counting(self, entries: Iterable[Entry], total: int | None) -> Iterator[Entry]:
        """``entries`` unchanged, reporting verification progress every thousand."""
        for done, entry in enumerate(entries, start=1):
            if done % 1000 == 0:
                self.line("verified", done, total, "entries")
            yield entry


class _Counted:
    """A record source that reports how many records have been read through it."""

    def __init__(self, source: RecordSource, report: _Progress) -> None:
        self.source, self.report, self.done = source, report, 0

    async def fetch(self, *, timeout_ms: int, max_records: int | None = None) -> list[Record]:
        batch = await self.source.fetch(timeout_ms=timeout_ms, max_records=max_records)
        self.done += len(batch)
        self.report.line("exported", self.done, None, "entries")
        return batch


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
