"""Play the scenario through a running federation and follow every view to its fate.

Every step goes through the real system: ``broker send`` into the sender's spool, or a record
written straight onto the sender's outbox with a plain Kafka client (the tampered and the
forbidden records). A tracker consumer reads the audit and quarantine topics as the gateway
writes them; spools and delivery directories are looked at on each poll.

At the end the gateway is stopped first: on SIGTERM it writes a last checkpoint, so the audit
log the demo then exports is covered by signatures to its last record; the demo then waits
for the witness to publish its cosignature of that checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Final

from broker import envelope, errors
from broker.audit import read_checkpoint
from broker.config import audit_topic, outbox_topic, quarantine_topic, witness_topic
from broker.demo.after import AfterDelivery, after_delivery
from broker.demo.federation import GATEWAY, WITNESS, Federation
from broker.demo.scenario import RUNNING, Route, Step
from broker.demo.tracker import Fate, Tracker
from broker.ids import MessageId, PartnerCode, new_message_id
from broker.ledger import CheckpointRecord, is_checkpoint_record, parse_checkpoint_record
from broker.schema import labels_of, message_bytes
from broker.transport.kafka import (
    Consumer,
    Record,
    open_consumer,
    open_producer,
)

__all__ = ["RecordedLog", "play"]

_FETCH_MS: Final = 150
#: after the gateway stopped, the audit topic is complete once nothing arrived for this long
_QUIET_S: Final = 1.0
#: which byte of a sealed envelope the tamperer flips: inside the signed ciphertext
_TAMPER_AT: Final = -40


@dataclasses.dataclass
class RecordedLog:
    """The audit records the tracker read, as a record source for ``export_topic``."""

    records: Sequence[Record]
    _next: int = 0

    async def fetch(self, *, timeout_ms: int, max_records: int | None = None) -> list[Record]:
        """The next records (all of them, or ``max_records``); none once all were handed out."""
        end = len(self.records) if max_records is None else self._next + max_records
        batch = list(self.records[self._next : end])
        self._next += len(batch)
        return batch


@contextlib.asynccontextmanager
async def _watching(
    federation: Federation, tracker: Tracker, on_change: Callable[[], None]
) -> AsyncIterator[Callable[[float, Callable[[], bool], str], asyncio.Future[None]]]:
    """Run the tracker's poll loop beside the block; yields ``until(timeout, test, what)``."""
    settings = federation.observer(f"demo-tracker-{uuid.uuid4().hex[:12]}", client_id="broker-demo")
    topics = [
        audit_topic(federation.prefix),
        quarantine_topic(federation.prefix),
        witness_topic(federation.prefix),
    ]
    async with open_consumer(settings, topics) as consumer:
        stopping = asyncio.Event()
        poller = asyncio.create_task(_poll(consumer, tracker, on_change, stopping))

        def until(timeout_s: float, test: Callable[[], bool], what: str) -> asyncio.Future[None]:
            return asyncio.ensure_future(_until(poller, timeout_s, test, what))

        try:
            yield until
        finally:
            stopping.set()
            await poller


async def _poll(
    consumer: Consumer, tracker: Tracker, on_change: Callable[[], None], stopping: asyncio.Event
) -> None:
    while not stopping.is_set():
        # the fetch's wait is the poll interval: records wake it at once
        records = await consumer.fetch(timeout_ms=_FETCH_MS)
        tracker.poll_files()  # first: a spool move happens before the gateway's decision
        tracker.observe_records(records)
        on_change()


async def _until(
    poller: asyncio.Task[None], timeout_s: float, test: Callable[[], bool], what: str
) -> None:
    deadline = time.monotonic() + timeout_s
    while not test():
        if poller.done():
            poller.result()  # the poll loop failed: raise its error
            raise errors.AvailabilityError("the demo's tracker stopped")
        if time.monotonic() > deadline:
            raise errors.AvailabilityError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(_FETCH_MS / 1000)


async def play(
    federation: Federation,
    steps: Sequence[Step],
    tracker: Tracker,
    *,
    on_change: Callable[[], None],
    timeout_s: float = 40.0,
    after: AfterDelivery | None = None,
) -> dict[str, int]:
    """Play ``steps`` (the gateway, the witness and the adapters of :data:`RUNNING` are
    started here), wait for every view's fate, then (given ``after``) what happens after
    delivery (:mod:`broker.demo.after`, its lines kept in ``after``), stop the gateway, read
    the audit topic to its end and wait for the witness's cosignature of the last checkpoint.

    Returns the gateway's exit status by name. The witness and the adapters are left running.
    """
    ids = {i: new_message_id() for i, step in enumerate(steps) if step.route is not Route.SEND}
    for index, step in enumerate(steps):
        tracker.add_step(index, step, message_id=str(ids[index]) if index in ids else None)
    on_change()
    async with _watching(federation, tracker, on_change) as until:
        await asyncio.to_thread(federation.start_many, [GATEWAY, WITNESS, *RUNNING])
        with tempfile.TemporaryDirectory(prefix="broker-demo-") as scratch:
            for index, step in enumerate(steps):
                await _send(federation, tracker, index, step, Path(scratch), ids.get(index))
                if index + 1 < len(steps) and steps[index + 1].sender in step.to:
                    # the next message answers this one: let it arrive first
                    await until(timeout_s, functools.partial(_arrived, tracker, index), step.title)
        await until(timeout_s, lambda: tracker.done, "every message's fate")
        if after is not None:
            played = await after_delivery(federation, tracker, until, timeout_s=timeout_s)
            after.lines.extend(played.lines)
        # SIGTERM: the gateway drains and signs a last checkpoint over the whole audit log
        status = await asyncio.to_thread(federation.stop, GATEWAY)
        settled = len(tracker.audit_records), time.monotonic()

        def quiet() -> bool:
            nonlocal settled
            if len(tracker.audit_records) != settled[0]:
                settled = len(tracker.audit_records), time.monotonic()
            return time.monotonic() - settled[1] >= _QUIET_S

        await until(timeout_s, quiet, "the audit log's last checkpoint")
        newest = _newest_size(tracker.audit_records)
        witnessed = functools.partial(_witnessed, tracker, newest)
        await until(timeout_s, witnessed, "the witness's cosignature of the last checkpoint")
    return {GATEWAY: status}


def _newest_size(records: Sequence[Record]) -> int:
    """The largest tree a checkpoint on the audit topic claims (verified later, by export)."""
    sizes = [
        _claimed_size(parse_checkpoint_record, record.value)
        for record in records
        if is_checkpoint_record(record.value)
    ]
    return max(sizes, default=0)


def _witnessed(tracker: Tracker, size: int) -> bool:
    return any(_claimed_size(None, record.value) == size for record in tracker.witness_records)


def _claimed_size(unwrap: Callable[[bytes], CheckpointRecord] | None, value: bytes | None) -> int:
    """The size a checkpoint (or a checkpoint record's note) claims; -1 if it is not one."""
    try:
        note = value or b""
        if unwrap is not None:
            note = unwrap(note).note
        return read_checkpoint(note)[0].size
    except errors.AuditError:
        return -1


def _arrived(tracker: Tracker, index: int) -> bool:
    """Every view of step ``index`` is stored, or will never be (refused or quarantined)."""
    rows = [row for row in tracker.rows if row.step == index]
    return all(row.fate >= Fate.STORED for row in rows)


async def _send(
    federation: Federation,
    tracker: Tracker,
    index: int,
    step: Step,
    scratch: Path,
    message_id: MessageId | None,
) -> None:
    if message_id is None:
        path, views = await _broker_send(federation, step, scratch / f"{index}.json")
        tracker.spooled(index, path, views)
        return
    [recipient] = step.to
    sealed = _seal(federation, step, recipient, message_id=message_id)
    if step.route is Route.TAMPERED:
        sealed = sealed[:_TAMPER_AT] + bytes([sealed[_TAMPER_AT] ^ 0x01]) + sealed[_TAMPER_AT + 1 :]
    # written with the sender's own credentials: what a compromised adapter could do
    settings = federation.producer_as(step.sender, client_id="broker-demo")
    async with open_producer(settings) as producer:
        await producer.send(
            outbox_topic(federation.prefix, step.sender),
            sealed,
            key=str(message_id).encode(),
            headers=[("xb-recipient", recipient.encode())],
        )
    tracker.sealed(index)


async def _broker_send(
    federation: Federation, step: Step, source: Path
) -> tuple[Path | None, list[dict[str, str]]]:
    """``broker send --json --config <sender> --to <...> FILE``: the spool file it queued (none
    when it refused every recipient, exit status 10) and its view of each recipient."""
    await asyncio.to_thread(source.write_bytes, message_bytes(step.message))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "broker", "send", "--json",
        "--config", str(federation.config_path(step.sender)),
        "--to", ",".join(step.to), str(source),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    if process.returncode not in (0, errors.PolicyError.exit_code):
        raise errors.UsageError(f"broker send failed: {err.decode(errors='replace').strip()}")
    document = json.loads(out)
    spool_file = document["spool_file"]
    return (None if spool_file is None else Path(spool_file)), list(document["views"])


def _seal(federation: Federation, step: Step, recipient: str, *, message_id: MessageId) -> bytes:
    """Seal ``step.message`` with the sender's key and no policy check, under the accord that
    decides for the pair now (which may have lapsed: the gateway then says so)."""
    now = dt.datetime.now(dt.UTC)
    held = (
        federation.accords(now=now)
        .book(now)
        .held_for_pair(PartnerCode(step.sender), PartnerCode(recipient))
    )
    if held is None:
        raise errors.UsageError(f"the demo has no accord between {step.sender} and {recipient}")
    accord = held.accord
    key_id, key = federation.registry(now=now).current_encryption_key(
        PartnerCode(recipient), at=now, suite=accord.suite
    )
    return envelope.seal(
        step.message,
        labels=labels_of(step.message),
        sender=PartnerCode(step.sender),
        sender_key=federation.signing_key(step.sender, suite=accord.suite),
        recipient=PartnerCode(recipient),
        recipient_key_id=key_id,
        recipient_key=key,
        accord_id=accord.accord_id,
        accord_digest=held.digest,
        now=now,
        ttl=dt.timedelta(days=1),
        message_id=message_id,
    )
