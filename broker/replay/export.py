"""Export the audit topic into a bundle file, streaming, without end offsets.

The records are written to a temporary file while the accord digests they name are noted;
the header (registry, exactly those accord versions, and the newest cosigned checkpoint notes
the witnesses published) is then written in front, and the result renamed into place, so a
bundle is never seen half written.

The witness topic is read by the same consumer. A witness cosigns a checkpoint only after
the checkpoint is on the audit topic, so every cosigned note read here is for a checkpoint
the export also reads; a note for a larger tree than the bundle's newest checkpoint (one
published while the export was finishing) is left out, since it says nothing about this
bundle. Which notes are kept is only a convenience: verification trusts none of them until
their signatures verify, and an auditor brings independent ones with ``--witnessed``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterable

from broker import errors
from broker.audit import read_checkpoint
from broker.cosign import accord_digest
from broker.ledger import RecordSource, is_checkpoint_record, parse_checkpoint_record, read_log
from broker.pipeline.records import parse_audit_record
from broker.policy import Accord
from broker.replay.bundle import BundleHeader, Entry, binary_entry, entry_line, header_bytes

__all__ = ["MAX_WITNESSED_NOTES", "ExportResult", "export_topic"]

#: the newest distinct cosigned notes a bundle carries (a few per witness)
MAX_WITNESSED_NOTES = 64


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What was exported, and the accord versions the records name that were not supplied."""

    path: pathlib.Path
    entries: int
    missing_accords: frozenset[str]
    witnessed: int = 0


async def export_topic(
    source: RecordSource,
    path: pathlib.Path,
    *,
    topic: str,
    exported_at: str,
    registry_bytes: bytes,
    accords: Iterable[Accord],
    witness_topic: str | None = None,
    quiet_s: float = 3.0,
    count: int | None = None,
    binary: bool = False,
) -> ExportResult:
    """Write every record of the audit topic (read from ``source``, which may also follow
    ``witness_topic``) to a bundle at ``path`` (JSON Lines, or with ``binary`` the binary
    form)."""
    available = {accord_digest(a): a for a in accords}
    named: set[str] = set()
    notes: collections.OrderedDict[bytes, int] = collections.OrderedDict()
    newest = -1
    directory = path.parent if str(path.parent) else pathlib.Path(".")
    with tempfile.NamedTemporaryFile("wb", dir=directory, delete=False) as body:
        entries = 0
        try:
            # Any bytes on the topic are exported as they are (a record the Kafka client could
            # not decode whole arrives with what could be read): verification judges them.
            async for record in read_log(source, quiet_s=quiet_s, count=count):
                value = record.value or b""
                if witness_topic is not None and record.topic == witness_topic:
                    _keep_note(notes, value)
                    continue
                entry = Entry(offset=record.offset, value=value)
                body.write(binary_entry(entry) if binary else entry_line(entry) + b"\n")
                entries += 1
                if is_checkpoint_record(value):
                    newest = max(newest, _claimed_size(value))
                else:
                    digest = _accord_digest_of(value)
                    if digest is not None:
                        named.add(digest)
        except BaseException:
            body.close()
            with contextlib.suppress(OSError):
                os.unlink(body.name)  # a bundle half written is no bundle
            raise
    witnessed = [note for note, size in notes.items() if size <= newest]
    header = BundleHeader.build(
        topic=topic,
        exported_at=exported_at,
        registry_bytes=registry_bytes,
        accords=[available[d] for d in sorted(named & set(available))],
        witnessed=witnessed,
    )
    # A large log takes a while to copy: off the event loop.
    start = header_bytes(header, binary=binary)
    await asyncio.to_thread(_finish, pathlib.Path(body.name), path, start)
    return ExportResult(path, entries, frozenset(named - set(available)), len(witnessed))


def _keep_note(notes: collections.OrderedDict[bytes, int], value: bytes) -> None:
    """Remember a published note by the size it claims (nothing is verified here)."""
    try:
        checkpoint, _ = read_checkpoint(value)
    except errors.AuditError:
        return  # not a note: verification would ignore it anyway
    notes.pop(value, None)
    notes[value] = checkpoint.size
    while len(notes) > MAX_WITNESSED_NOTES:
        notes.popitem(last=False)


def _claimed_size(value: bytes) -> int:
    try:
        checkpoint, _ = read_checkpoint(parse_checkpoint_record(value).note)
    except errors.AuditError:
        return -1
    return checkpoint.size


def _accord_digest_of(value: bytes) -> str | None:
    try:
        return parse_audit_record(value).accord_digest
    except Exception:  # noqa: BLE001 - any bytes at all: an unreadable record names no accord
        return None


def _finish(tmp: pathlib.Path, path: pathlib.Path, header: bytes) -> None:
    """Header, then the records, into ``path`` via a rename so it is never half written."""
    final = path.with_name(path.name + ".partial")
    try:
        with final.open("wb") as out, tmp.open("rb") as records:
            out.write(header)
            shutil.copyfileobj(records, out)
            out.flush()
            os.fsync(out.fileno())
        final.replace(path)
    except OSError as exc:
        raise errors.UsageError(f"cannot write bundle {path}: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)
