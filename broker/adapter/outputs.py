"""Onward delivery of verified messages to the agency's systems: a directory and a webhook.

The local inbox store is the system of record; these are notifications. The delivery
directory is written before the Kafka offset is committed, idempotently (one file per message
id, written atomically; an existing file is left alone), so a redelivery after a crash fills
in a file that a crash skipped. The webhook is different: an agency endpoint that is down must
not stop the exchange, so posts are queued in memory (bounded), retried with backoff a few
times, and then given up with an error log line; the message stays in the store and can be
read with ``broker inbox show``. Commits therefore never wait on the webhook.

Both hold plaintext outside the encrypted inbox, so shredding a message removes them too: its
file leaves the delivery directory and a post still queued for it is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import functools
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

import structlog

from broker import errors
from broker.adapter.spool import sync_directory
from broker.ids import MessageId, PartnerCode
from broker.runtime import Metrics, StopSignal, flush_filesystem

__all__ = ["Delivery", "DeliveryDir", "Webhook"]

_log = structlog.get_logger(__name__)


#: a UUID's characters only: a name from the directory is never a path elsewhere
_SAFE_NAME = re.compile(r"[0-9a-f-]{36}")

#: one message for the delivery directory: ``(message_id, sender, message_json)``
Delivery = tuple[MessageId, PartnerCode, bytes]


class DeliveryDir:
    """Writes each verified message to ``<dir>/<message_id>.json`` atomically (mode 0600)."""

    def __init__(self, directory: Path) -> None:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.UsageError(f"cannot create {directory}: {exc.strerror}") from exc
        self.directory = directory

    def write(self, *, message_id: MessageId, sender: PartnerCode, message_json: bytes) -> bool:
        """Write the file unless it exists; True if written now."""
        return self.write_many([(message_id, sender, message_json)])[0]

    def write_many(self, messages: Sequence[Delivery]) -> list[bool]:
        """Write each ``(message_id, sender, message_json)`` as :meth:`write` does; one flag
        each. The batch's files are written, then flushed with one ``syncfs`` of their
        filesystem (where the platform lacks it, each file is flushed, concurrently), then
        renamed into place, then the directory is flushed, so a file never appears under its
        name before its content is durable, and every file is durable when this returns.
        """
        todo: dict[Path, tuple[MessageId, PartnerCode, bytes]] = {}
        for message_id, sender, message_json in messages:
            final = self.directory / f"{message_id}.json"
            if final not in todo and not final.exists():
                todo[final] = (message_id, sender, message_json)
        if not todo:
            return [False] * len(messages)
        for item in todo.values():
            self._write_temporary(item)
        if not self._flush_filesystem():
            list(_flusher().map(self._flush_temporary, todo.values()))
        for final in todo:
            os.replace(self.directory / f".{final.stem}.tmp", final)
        sync_directory(self.directory)
        written = set(todo)
        result = []
        for message_id, _, _ in messages:
            final = self.directory / f"{message_id}.json"
            result.append(final in written)
            written.discard(final)  # a second copy in the same batch was not written
        return result

    def message_ids(self) -> list[MessageId]:
        """The ids of the messages whose files are in the directory now."""
        try:
            with os.scandir(self.directory) as entries:
                stems = [e.name[: -len(".json")] for e in entries if e.name.endswith(".json")]
        except OSError as exc:
            raise errors.UsageError(f"cannot read {self.directory}: {exc.strerror}") from exc
        return [MessageId(stem) for stem in stems if _SAFE_NAME.fullmatch(stem)]

    def remove_many(self, message_ids: Iterable[MessageId]) -> int:
        """Delete the files of ``message_ids`` (and any temporary one a crash left), then
        flush the directory once; returns how many files were there."""
        removed = 0
        for message_id in message_ids:
            for path in (self._final(message_id), self.directory / f".{message_id}.tmp"):
                try:
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise errors.UsageError(f"cannot delete {path}: {exc.strerror}") from exc
        if removed:
            sync_directory(self.directory)
        return removed

    def _final(self, message_id: MessageId) -> Path:
        if not _SAFE_NAME.fullmatch(message_id):
            raise errors.UsageError(f"{message_id!r} is not a message id")
        return self.directory / f"{message_id}.json"

    def _write_temporary(self, item: tuple[MessageId, PartnerCode, bytes]) -> None:
        message_id, sender, message_json = item
        # The message is the verified canonical JSON: spliced in as it is, not parsed and
        # re-encoded (that cost more than opening the envelope).
        document = b'{"message":%b,"message_id":%b,"sender":%b}\n' % (
            message_json,
            json.dumps(str(message_id)).encode("ascii"),
            json.dumps(str(sender)).encode("ascii"),
        )
        temporary = self.directory / f".{message_id}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, document)
        finally:
            os.close(fd)

    def _flush_filesystem(self) -> bool:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            return flush_filesystem(fd)
        finally:
            os.close(fd)

    def _flush_temporary(self, item: tuple[MessageId, PartnerCode, bytes]) -> None:
        fd = os.open(self.directory / f".{item[0]}.tmp", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@functools.cache
def _flusher() -> concurrent.futures.ThreadPoolExecutor:
    # Threads only wait on fsync (the GIL is released); a few suffice to share commits.
    return concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="flush")


@dataclasses.dataclass(slots=True)
class _Post:
    message_id: MessageId
    body: bytes
    attempts: int = 0


class Webhook:
    """POSTs each verified message as JSON; best effort, bounded, never blocking commits."""

    def __init__(
        self,
        url: str,
        *,
        metrics: Metrics,
        timeout_s: float = 5.0,
        max_attempts: int = 5,
        max_queued: int = 1000,
    ) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._queue: collections.deque[_Post] = collections.deque(maxlen=max_queued)
        self._wake = asyncio.Event()
        self._failures = metrics.counter(
            "xb_adapter_webhook_failures_total", "Webhook posts that failed (each attempt)."
        )
        self._dropped = metrics.counter(
            "xb_adapter_webhook_dropped_total", "Webhook posts given up after every retry."
        )

    def enqueue(self, *, message_id: MessageId, sender: PartnerCode, message_json: bytes) -> None:
        """Queue one post; when the queue is full the oldest post is dropped (and counted)."""
        if len(self._queue) == self._queue.maxlen:
            self._dropped.inc()
            _log.error("webhook_queue_full", dropped=self._queue[0].message_id)
        body = json.dumps(
            {"message_id": message_id, "sender": sender, "message": json.loads(message_json)}
        ).encode("utf-8")
        self._queue.append(_Post(message_id, body))
        self._wake.set()

    def queued(self) -> list[MessageId]:
        """The ids of the messages whose posts wait in the queue."""
        return [post.message_id for post in self._queue]

    def forget(self, message_ids: Iterable[MessageId]) -> int:
        """Drop the queued posts of ``message_ids`` (shredded: their plaintext must go from
        memory too); returns how many were dropped."""
        gone = set(message_ids)
        kept = [post for post in self._queue if post.message_id not in gone]
        dropped = len(self._queue) - len(kept)
        self._queue.clear()
        self._queue.extend(kept)
        return dropped

    async def run(self, stop: StopSignal) -> None:
        """Post queued messages until ``stop``; failures back off (1, 2, 4 ... s) and retry."""
        while not stop.is_set():
            if not self._queue:
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait((waiter, stopper), return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                continue
            post = self._queue[0]
            ok = await asyncio.to_thread(self._post, post.body)
            if ok:
                self._queue.popleft()
                continue
            self._failures.inc()
            post.attempts += 1
            if post.attempts >= self._max_attempts:
                self._queue.popleft()
                self._dropped.inc()
                _log.error("webhook_gave_up", message_id=post.message_id, attempts=post.attempts)
                continue
            if await stop.sleep(float(2 ** (post.attempts - 1))):
                return

    def _post(self, body: bytes) -> bool:
        request = urllib.request.Request(  # noqa: S310 - the URL is validated http(s) by config
            self._url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310
                status = int(response.status)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            _log.warning("webhook_failed", error=type(exc).__name__)
            return False
        return 200 <= status < 300
