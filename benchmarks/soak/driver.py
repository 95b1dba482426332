"""Drive a federation for fault tests and soaks: send through a partner's spool while writing
the client history, inject duplicate records, and run the history checker at the end.

The driver only uses what an agency has: the spool directory (``incoming/`` -> ``sent/`` or
``rejected/`` with ``.reason`` files), the daemons' ``/metrics``, and Kafka topics. A file that
left ``incoming/`` for anywhere but ``rejected/`` means the adapter journalled its sealed views
durably (its ``sent/`` copy is deleted once Kafka acknowledged them): the driver logs ``ok``
then, and before the final check waits for the adapter's journal to be empty (every view acked
by Kafka), so the acked set is at least as large as the Kafka-acknowledged one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from broker.adapter import SendJournal, Spool, journal_beside, write_submissions
from broker.checker import (
    Event,
    EventType,
    HistoryWriter,
    Verdict,
    check,
    observe,
    read_history,
)
from broker.demo.federation import Federation, current_accords
from broker.demo.scenario import network_report
from broker.ids import PartnerCode
from broker.schema import TLP, Message
from broker.transport.kafka import (
    ConsumerSettings,
    ProducerSettings,
    Record,
    open_consumer,
    open_producer,
)
from broker.transport.security import PLAINTEXT, ClientSecurity

__all__ = [
    "SpoolDriver",
    "copy_records",
    "read_topic",
    "report",
    "unlimited_accords",
    "verdict_of",
    "wait_until",
]

_POLL_S = 0.25


def unlimited_accords(directory: Path) -> list[Path]:
    """The accords re-dated around now and without their rate limits (a soak sends more than
    a day's quota), written into ``directory``."""
    return current_accords(directory, now=dt.datetime.now(dt.UTC), rate_limits=False)


def report(key: str, *, forbidden: bool = False) -> Message:
    """The example network report under case id ``key``; ``forbidden`` marks it TLP:AMBER,
    which no accord lets the UK send onward (the sender itself refuses it)."""
    message = network_report(key)
    return message.model_copy(update={"tlp": TLP.AMBER}) if forbidden else message


def receipted_views(federation: Federation, sender: str = "GB") -> int:
    """How many of ``sender``'s views its send journal has a receipt for: a batch receipt
    acknowledges many views, so the receipts in its inbox no longer count them."""
    path = journal_beside(federation.inbox_path(sender))
    if not path.exists():
        return 0
    with SendJournal.open(path, create=False) as journal:
        return journal.receipted()


def wait_until(probe: object, *, timeout_s: float, interval_s: float = _POLL_S) -> bool:
    """Poll ``probe()`` until truthy or ``timeout_s``; returns whether it became true.

    The daemons are other processes: there is no event to await, so this polls.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if probe():  # type: ignore[operator]
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)


class SpoolDriver:
    """Submits reports through one partner's spool and keeps its client history."""

    def __init__(self, federation: Federation, history: Path, *, sender: str = "GB") -> None:
        self.federation, self.sender, self.history = federation, sender, history
        self.spool = Spool(federation.spool_dir(sender))
        self._writer = HistoryWriter(history)
        self._waiting: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.submitted = 0
        #: views the client's model expects to be stored (allowed recipients, summed)
        self.expected_views = 0

    def submit(self, key: str, to: Sequence[str], *, allowed: Sequence[str] | None = None) -> None:
        """Log ``invoke`` and place one submission of report ``key`` to ``to`` in the spool."""
        self.submit_many([(key, to, allowed)])

    def submit_many(
        self, reports: Sequence[tuple[str, Sequence[str], Sequence[str] | None]]
    ) -> None:
        """:meth:`submit` for each ``(key, to, allowed)``, placed with one directory flush
        (``allowed`` empty: forbidden, the sender must refuse it; ``None``: all allowed)."""
        batch = []
        for key, to, allowed in reports:
            recipients = tuple(to)
            forbidden = allowed is not None and not allowed
            self._writer.write(
                Event(
                    EventType.INVOKE,
                    self.sender,
                    key,
                    time.time(),
                    recipients=recipients,
                    allowed=None if allowed is None else tuple(allowed),
                )
            )
            batch.append((report(key, forbidden=forbidden), [PartnerCode(c) for c in recipients]))
            self.expected_views += len(recipients if allowed is None else allowed)
        paths = write_submissions(self.spool.root, batch)
        for path, (key, to, _) in zip(paths, reports, strict=True):
            self._waiting[path.name] = (key, tuple(to))
        self.submitted += len(paths)

    def poll(self) -> int:
        """Log ``ok`` / ``fail`` for submissions the adapter has handled; returns how many
        are still waiting."""
        if not self._waiting:
            return 0
        # One existence check per waiting file: listing a directory instead would cost as much
        # as everything ever sent, on every poll. A file the adapter handled has left
        # incoming/ (renamed, its .reason files written first); the one in sent/ is deleted
        # once Kafka acknowledged its views, so leaving incoming/ for anywhere but rejected/
        # is what says it was sealed.
        now = time.time()
        handled = {n for n in self._waiting if not os.path.exists(self.spool.incoming / n)}
        rejected = {n for n in handled if os.path.exists(self.spool.rejected / n)}
        sent = handled - rejected
        for name in [n for n in self._waiting if n in sent or n in rejected]:
            key, recipients = self._waiting.pop(name)
            if name in sent:
                refused = _refused(self.spool.sent / f"{name}.reason")
                event = Event(
                    EventType.OK, self.sender, key, now, recipients=recipients, refused=refused
                )
            else:
                detail = (self.spool.rejected / f"{name}.reason").read_text()[:500]
                event = Event(
                    EventType.FAIL, self.sender, key, now, recipients=recipients, detail=detail
                )
            self._writer.write(event)
        return len(self._waiting)

    def settle(self, *, timeout_s: float) -> bool:
        """Wait until every submission is handled and the adapter's journal is empty (every
        view acked by Kafka). What is still waiting at the timeout is logged ``info``."""
        settled = wait_until(
            lambda: self.poll() == 0 and self._journal_empty(), timeout_s=timeout_s
        )
        now = time.time()
        for key, recipients in self._waiting.values():
            self._writer.write(
                Event(
                    EventType.INFO, self.sender, key, now, recipients=recipients, detail="timeout"
                )
            )
        self._waiting.clear()
        return settled

    def close(self) -> None:
        """Close the history file."""
        self._writer.close()

    def _journal_empty(self) -> bool:
        if not self.federation.is_running(self.sender):
            return False
        return self.federation.metrics(self.sender).get("xb_adapter_journal_pending") == 0


def _refused(reason_file: Path) -> tuple[str, ...]:
    """The recipients named in a ``sent/<name>.reason`` file (``CODE: reason_code: ...``)."""
    if not reason_file.exists():
        return ()
    return tuple(
        line.split(":", 1)[0].strip()
        for line in reason_file.read_text().splitlines()
        if ":" in line
    )


def verdict_of(
    federation: Federation, histories: Iterable[Path], *, quiet_s: float = 3.0
) -> Verdict:
    """Read every inbox, the quarantine and the audit topic, and check the histories."""
    inboxes = {str(code): federation.inbox_path(code) for code in federation.partners}
    observed = asyncio.run(
        observe(
            bootstrap=federation.bootstrap,
            prefix=federation.prefix,
            inboxes=inboxes,
            quiet_s=quiet_s,
            security=federation.access.security(),
        )
    )
    return check(read_history(list(histories)), observed)


async def read_topic(
    bootstrap: str, topic: str, *, quiet_s: float = 2.0, security: ClientSecurity = PLAINTEXT
) -> list[Record]:
    """Every record of ``topic`` from the start (a fresh group; until quiet for ``quiet_s``)."""
    settings = ConsumerSettings(
        bootstrap=bootstrap,
        group_id=f"driver-{uuid.uuid4().hex[:12]}",
        client_id="broker-driver",
        session_timeout_ms=3_000,
        security=security,
    )
    seen: dict[tuple[int, int], Record] = {}
    async with open_consumer(settings, [topic]) as consumer:
        last = time.monotonic()
        while time.monotonic() - last < (quiet_s if seen else 10.0):
            for record in await consumer.fetch(timeout_ms=500):
                seen.setdefault((record.partition, record.offset), record)
                last = time.monotonic()
    return [seen[k] for k in sorted(seen)]


async def copy_records(
    bootstrap: str, topic: str, *, fraction: float, rng: random.Random, minimum: int = 1
) -> int:
    """Re-produce byte-identical copies (key, value, headers) of a seeded ``fraction`` of the
    records on ``topic``; returns how many copies were written."""
    records = [r for r in await read_topic(bootstrap, topic) if r.value is not None]
    if not records:
        return 0
    chosen = rng.sample(records, min(len(records), max(minimum, round(fraction * len(records)))))
    async with open_producer(
        ProducerSettings(bootstrap=bootstrap, client_id="broker-driver")
    ) as producer:
        for record in chosen:
            await producer.send(topic, record.value, key=record.key, headers=record.headers)
    return len(chosen)
