"""The spool directory: how agency systems hand messages to the adapter through the filesystem.

Layout beneath the configured directory::

    held/       a submission waiting for a second officer's release (``broker release``); the
                adapter never reads it
    incoming/   a submission appears here by an atomic rename; the adapter picks it up
    sent/       processed: at least one recipient's envelope is journalled for sending; the
                file is deleted once Kafka has acknowledged every view sealed from it
    rejected/   nothing was sent; ``<name>.reason`` beside it says why

A submission is one JSON object ``{"to": ["RS", "MK"], "message": {...}}``, optionally with
``"ids": {"RS": "<UUIDv7>", "MK": "<UUIDv7>"}``, the message id each recipient's view will be
sealed under (``broker send`` chooses them, so it can print them before the adapter has run;
the adapter chooses any not given), and optionally with ``"officer": "<id>"``, the officer of
this adapter who submitted it (``broker send --officer``): the adapter names that officer, with
their agency and unit from its directory, in each view's signed header, and rejects the
submission if the officer is unknown, disabled or does not hold the ``submit`` role; and
``"approver": "<id>"``, the other officer who released it (``broker release``), which the
views of a four-eyes flow need. Writers must
create the file elsewhere in the same filesystem and rename it into ``incoming/`` (what
:func:`write_submission` and ``broker send`` do): a file is never read half-written, and names
starting with a dot are ignored. Refusals for some recipients, when others were sent, are
written to ``sent/<name>.reason`` (it names recipients and rules, never content, and stays).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from broker import crypto, errors, strictjson
from broker.bounded import read_bounded
from broker.ids import OFFICER_ID, MessageId, PartnerCode, parse_message_id, partner_code
from broker.schema import MAX_DEPTH, Message, message_bytes
from broker.schema.labels import MessageType
from broker.schema.wire import parse_canonical_message

__all__ = [
    "MAX_SUBMISSION_BYTES",
    "Spool",
    "Submission",
    "needs_release",
    "parse_submission",
    "release_submission",
    "submission_bytes",
    "sync_directory",
    "write_submission",
    "write_submissions",
]

MAX_SUBMISSION_BYTES = 1_048_576 + 4096
_MAX_RECIPIENTS = 32
_FIELDS = frozenset({"to", "message", "ids", "officer", "approver"})


@dataclasses.dataclass(frozen=True, slots=True)
class Submission:
    """A validated submission: the message and the partners it is for."""

    to: tuple[PartnerCode, ...]
    message: Message
    #: the message id chosen for each recipient's view, when the writer chose them
    ids: Mapping[PartnerCode, MessageId] = dataclasses.field(default_factory=dict)
    #: the id of the officer who submitted it, when one did
    officer: str | None = None
    #: the id of the second officer who released it, when one did
    approver: str | None = None


def needs_release(flow: str | None, message_type: MessageType, four_eyes: Iterable[str]) -> bool:
    """Whether a view of ``message_type`` crossing ``flow`` waits for a second officer's
    release, under ``spool.four_eyes_flows``: every type but a withdrawal (it takes back, and
    must not wait; the adapter still holds one that does not take back a view it sent to
    that recipient, see :meth:`broker.adapter.Adapter.process_spool`)."""
    return flow is not None and flow in set(four_eyes) and message_type != MessageType.WITHDRAWAL


def parse_submission(data: bytes) -> Submission:
    """Parse and validate submission bytes; raise :class:`errors.SchemaError` naming the field."""
    if len(data) > MAX_SUBMISSION_BYTES:
        raise errors.SchemaError(f"submission is larger than {MAX_SUBMISSION_BYTES} bytes")
    try:
        # one level more than a message may nest: the submission wraps it
        document = strictjson.loads(data, max_depth=MAX_DEPTH + 1, allow_floats=True)
    except strictjson.StrictJSONError as exc:
        raise errors.SchemaError(f"submission is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not {"to", "message"} <= set(document) <= _FIELDS:
        raise errors.SchemaError(
            'a submission is an object with exactly "to", "message" and optionally "ids", '
            '"officer" and "approver"'
        )
    to, message = document["to"], document["message"]
    if not isinstance(to, list) or not 1 <= len(to) <= _MAX_RECIPIENTS:
        raise errors.SchemaError(f'submission: "to" lists 1 to {_MAX_RECIPIENTS} partner codes')
    try:
        recipients = tuple(partner_code(code) for code in to)
    except (TypeError, ValueError) as exc:
        raise errors.SchemaError(f'submission: "to": {exc}') from None
    if len(set(recipients)) != len(recipients):
        raise errors.SchemaError('submission: "to" names a partner twice')
    if not isinstance(message, dict):
        raise errors.SchemaError('submission: "message" must be an object')
    ids = _ids(document.get("ids", {}), recipients)
    officer, approver = (_officer(document, name) for name in ("officer", "approver"))
    if approver is not None and approver == officer:
        raise errors.SchemaError('submission: "approver" is another officer than "officer"')
    # Re-encode the already strictly parsed object (no duplicate key, no non-finite number):
    # the canonical-input parser applies the schema's remaining rules without parsing again.
    encoded = strictjson.encode(message)
    return Submission(recipients, parse_canonical_message(encoded, message), ids, officer, approver)


def _officer(document: Mapping[str, object], name: str) -> str | None:
    value = document.get(name)
    if value is None or (isinstance(value, str) and OFFICER_ID.fullmatch(value)):
        return value
    raise errors.SchemaError(f'submission: "{name}" is an officer id of this adapter')


def _ids(given: object, recipients: tuple[PartnerCode, ...]) -> dict[PartnerCode, MessageId]:
    """The chosen message ids: one per recipient named, each a UUIDv7, no two the same (two
    views under one id would be a replay conflict at the gateway)."""
    if not isinstance(given, dict) or not set(given) <= set(recipients):
        raise errors.SchemaError('submission: "ids" maps recipients named in "to" to message ids')
    try:
        ids = {PartnerCode(code): parse_message_id(value) for code, value in given.items()}
    except (TypeError, ValueError) as exc:
        raise errors.SchemaError(f'submission: "ids": {exc}') from None
    if len(set(ids.values())) != len(ids):
        raise errors.SchemaError('submission: "ids" gives two recipients the same message id')
    return ids


def submission_bytes(
    message: Message,
    to: Sequence[PartnerCode],
    *,
    ids: Mapping[PartnerCode, MessageId] | None = None,
    officer: str | None = None,
    approver: str | None = None,
) -> bytes:
    """The canonical bytes of a submission of ``message`` to ``to`` (with the view ids
    ``ids``, when chosen, the submitting ``officer`` and the releasing ``approver``, when
    there are)."""
    document: dict[str, object] = {"to": list(to), "message": json.loads(message_bytes(message))}
    if ids:
        document["ids"] = dict(ids)
    if officer is not None:
        document["officer"] = officer
    if approver is not None:
        document["approver"] = approver
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def write_submission(
    spool_dir: Path,
    message: Message,
    to: Sequence[PartnerCode],
    *,
    ids: Mapping[PartnerCode, MessageId] | None = None,
    officer: str | None = None,
    approver: str | None = None,
    held: bool = False,
) -> Path:
    """Place a submission into ``spool_dir/incoming`` (``held/`` if ``held``: it waits for a
    second officer's release) atomically; return its final path.

    The bytes go to a temporary file in ``spool_dir`` (same filesystem), are flushed to disk,
    and the file is renamed into ``incoming/``, so the adapter never sees a partial file.
    """
    data = submission_bytes(message, to, ids=ids, officer=officer, approver=approver)
    return _write_all(spool_dir, [data], into="held" if held else "incoming")[0]


def write_submissions(
    spool_dir: Path, submissions: Sequence[tuple[Message, Sequence[PartnerCode]]]
) -> list[Path]:
    """:func:`write_submission` for each of ``submissions``, in order, with one flush of
    ``incoming/`` for the whole batch (a bulk feed pays one directory flush per batch, not one
    per file); returns the final paths. Files already renamed stay if a later one fails."""
    return _write_all(spool_dir, [submission_bytes(message, to) for message, to in submissions])


def release_submission(held: Path, *, approver: str) -> Path:
    """Move the held submission ``held`` into ``incoming/``, naming the officer who released
    it. The released file keeps the held one's name, so a release repeated after a crash
    writes the same file again (the adapter takes a name and its bytes once)."""
    data = read_bounded(held, limit=MAX_SUBMISSION_BYTES, what="the held submission")
    submission = parse_submission(data)
    released = submission_bytes(
        submission.message,
        submission.to,
        ids=submission.ids,
        officer=submission.officer,
        approver=approver,
    )
    spool_dir = held.parent.parent
    final = _place(spool_dir, spool_dir / "incoming", released, name=held.name)
    sync_directory(spool_dir / "incoming")
    held.unlink(missing_ok=True)  # another officer released it at the same moment
    sync_directory(held.parent)
    return final


def _write_all(
    spool_dir: Path, documents: Sequence[bytes], *, into: str = "incoming"
) -> list[Path]:
    incoming = spool_dir / into
    if into == "held":
        incoming.mkdir(mode=0o700, exist_ok=True)
    if not incoming.is_dir():
        raise errors.UsageError(f"{incoming} does not exist: is the spool directory right?")
    finals: list[Path] = []
    try:
        for data in documents:
            finals.append(_place(spool_dir, incoming, data))
    finally:
        if finals:
            sync_directory(incoming)
    return finals


def _place(spool_dir: Path, incoming: Path, data: bytes, *, name: str | None = None) -> Path:
    name = name or f"{uuid.uuid4().hex}.json"
    temporary = spool_dir / f".{name}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        final = incoming / name
        os.rename(temporary, final)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise errors.UsageError(f"cannot write into the spool {spool_dir}: {exc.strerror}") from exc
    return final


class Spool:
    """The adapter's view of the spool directory; creates its subdirectories (mode 0700)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming, self.sent, self.rejected, self.held = (
            root / n for n in ("incoming", "sent", "rejected", "held")
        )
        try:
            for directory in (root, self.incoming, self.sent, self.rejected, self.held):
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.UsageError(f"cannot create the spool in {root}: {exc.strerror}") from exc
        self._queue: collections.deque[Path] = collections.deque()

    def waiting(self, *, limit: int | None = None) -> list[Path]:
        """Files waiting in ``incoming/``, oldest first (at most ``limit``); dotfiles and
        directories ignored.

        The directory is scanned only when every file of the previous scan has been handed
        out, so draining a backlog of N files costs one listing and N ``stat`` calls in all,
        not per call. A handed-out file the caller leaves in ``incoming/`` is found again by
        the next scan.
        """
        if not self._queue:
            self._queue.extend(self._scan())
        count = len(self._queue) if limit is None else min(max(limit, 0), len(self._queue))
        return [self._queue.popleft() for _ in range(count)]

    def _scan(self) -> list[Path]:
        found: list[tuple[int, str]] = []
        try:
            with os.scandir(self.incoming) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_file():
                            found.append((entry.stat().st_mtime_ns, entry.name))
                    except FileNotFoundError:
                        continue  # handled and moved away since the listing
        except OSError as exc:
            raise errors.UsageError(f"cannot read {self.incoming}: {exc.strerror}") from exc
        return [self.incoming / name for _, name in sorted(found)]

    @staticmethod
    def source_key(path: Path, data: bytes) -> str:
        """The journal's name for one spool file: its name and the digest of its bytes."""
        return f"spool:{path.name}:{crypto.sha256(data).hex()}"

    def mark_sent(self, path: Path, *, refusals: Sequence[str] = ()) -> Path:
        """Move ``path`` to ``sent/``; note any per-recipient refusals beside it."""
        return self.mark_sent_many([(path, refusals)])[0]

    def mark_sent_many(self, files: Sequence[tuple[Path, Sequence[str]]]) -> list[Path]:
        """As :meth:`mark_sent` for each ``(path, refusals)``, with one directory sync."""
        moved = []
        for path, refusals in files:
            if refusals:
                _write_text(self.sent / f"{path.name}.reason", "\n".join(refusals) + "\n")
            moved.append(self._move(path, self.sent, sync=False))
        if moved:
            sync_directory(self.sent)
        return moved

    def remove_settled(
        self, settled: Callable[[str], bool], *, names: Iterable[str] | None = None
    ) -> int:
        """Delete the plaintext copies in ``sent/`` whose source (:meth:`source_key`) is
        ``settled``: every view sealed from it acknowledged, so nothing needs the copy. Looks at
        ``names`` only (default: every file there); returns how many files were deleted.

        A file is read before it goes, and goes only under the source its bytes give: a
        name reused by a later submission is never taken for the earlier one.
        """
        candidates = self._sent_files() if names is None else [self.sent / n for n in names]
        removed = 0
        for path in candidates:
            try:
                data = read_bounded(path, limit=MAX_SUBMISSION_BYTES, what="a sent submission")
            except errors.UsageError:
                continue  # gone already, or not a file we wrote
            if settled(self.source_key(path, data)):
                path.unlink(missing_ok=True)
                removed += 1
        if removed:
            sync_directory(self.sent)
        return removed

    @staticmethod
    def sent_name(source: str) -> str | None:
        """The file name in ``sent/`` of a spool source, or None for any other source."""
        kind, _, rest = source.partition(":")
        name = rest.rpartition(":")[0]
        return name if kind == "spool" and name else None

    def _sent_files(self) -> list[Path]:
        try:
            with os.scandir(self.sent) as entries:
                return [
                    Path(entry.path)
                    for entry in entries
                    if not entry.name.startswith(".") and not entry.name.endswith(".reason")
                ]
        except OSError as exc:
            raise errors.UsageError(f"cannot read {self.sent}: {exc.strerror}") from exc

    def mark_rejected(self, path: Path, reason: str) -> Path:
        """Move ``path`` to ``rejected/`` with ``<name>.reason`` holding ``reason``."""
        _write_text(self.rejected / f"{path.name}.reason", reason.rstrip("\n") + "\n")
        return self._move(path, self.rejected)

    def _move(self, path: Path, directory: Path, *, sync: bool = True) -> Path:
        target = directory / path.name
        try:
            os.replace(path, target)
        except OSError as exc:
            raise errors.UsageError(f"cannot move {path} to {directory}: {exc.strerror}") from exc
        if sync:
            sync_directory(directory)
        return target


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def sync_directory(directory: Path) -> None:
    """Flush ``directory`` itself, so the renames and deletions in it survive a power loss."""
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise errors.UsageError(f"cannot sync {directory}: {exc.strerror}") from exc
