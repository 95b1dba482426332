"""The spool: submissions arrive by atomic rename, leave to sent/ or rejected/ (with a reason),
and a crash between journalling and moving never seals a submission twice."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from broker import errors
from broker.adapter import (
    Adapter,
    Spool,
    parse_submission,
    write_submission,
    write_submissions,
)
from broker.adapter.daemon import spool_chunk
from broker.adapter.spool import MAX_SUBMISSION_BYTES, release_submission, submission_bytes
from broker.schema import Classification, Purpose, message_bytes

from .world import GB, MK, RS, report


def _spool(adapter: Adapter) -> Spool:
    assert adapter.spool is not None
    return adapter.spool


def test_a_written_submission_is_sent_and_moved(uk: Adapter) -> None:
    """write_submission leaves exactly one file in incoming/ and no temporary file; the
    adapter journals one envelope per recipient and moves the file to sent/."""
    spool = _spool(uk)
    path = write_submission(spool.root, report(), [RS, MK])
    assert path.parent == spool.incoming
    assert [p.name for p in spool.root.iterdir() if p.is_file()] == []
    assert uk.process_spool() == 1
    assert (spool.sent / path.name).exists()
    assert list(spool.incoming.iterdir()) == []
    assert {e.recipient for e in uk.journal.pending()} == {RS, MK}


def _drop(spool: Spool, name: str, data: bytes) -> pathlib.Path:
    temporary = spool.root / f".{name}"
    temporary.write_bytes(data)
    return temporary.rename(spool.incoming / name)


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("not JSON", b"{", "not valid JSON"),
        ("duplicate key", b'{"to":["RS"],"to":["MK"],"message":{}}', "duplicate key"),
        ("NaN", b'{"to":["RS"],"message":{"x":NaN}}', "NaN"),
        ("extra field", b'{"to":["RS"],"message":{},"cc":["MK"]}', "exactly"),
        ("bad partner", b'{"to":["rs"],"message":{}}', "to"),
        ("partner twice", b'{"to":["RS","RS"],"message":{}}', "twice"),
        ("invalid message", b'{"to":["RS"],"message":{"type":"network.report"}}', ""),
    ],
)
def test_an_invalid_submission_is_rejected_with_a_reason(
    uk: Adapter, name: str, data: bytes, says: str
) -> None:
    """Nothing is sealed; the file moves to rejected/ with a .reason file saying why."""
    spool = _spool(uk)
    path = _drop(spool, "bad.json", data)
    uk.process_spool()
    assert (spool.rejected / path.name).exists(), name
    reason = (spool.rejected / f"{path.name}.reason").read_text()
    assert says in reason
    assert len(uk.journal) == 0


def test_an_oversized_submission_is_rejected_unread(uk: Adapter) -> None:
    """A file past the submission limit is refused after reading one byte past the limit,
    never loaded whole."""
    spool = _spool(uk)
    path = _drop(spool, "huge.json", b" " * (MAX_SUBMISSION_BYTES + 1))
    assert uk.process_spool() == 0
    assert "larger than" in (spool.rejected / f"{path.name}.reason").read_text()
    assert len(uk.journal) == 0


def test_a_fifo_in_place_of_a_submission_never_blocks_the_adapter(uk: Adapter) -> None:
    """A file that a FIFO replaces between the scan and the read is skipped with a warning:
    opening a FIFO nobody writes to would block the adapter for ever."""
    spool = _spool(uk)
    path = write_submission(spool.root, report(), [RS])
    waiting = spool.waiting()
    assert waiting == [path]
    path.unlink()
    os.mkfifo(path)
    spool._queue.extend(waiting)  # as if scanned before the swap
    assert uk.process_spool() == 0
    assert len(uk.journal) == 0


def test_a_submission_every_recipient_refuses_is_rejected(uk: Adapter) -> None:
    """SECRET to North Macedonia: refused by the accord, so rejected/, the rule in the reason."""
    spool = _spool(uk)
    secret = report().model_copy(update={"classification": Classification.SECRET})
    path = write_submission(spool.root, secret, [MK])
    uk.process_spool()
    reason = (spool.rejected / f"{path.name}.reason").read_text()
    assert reason.startswith("MK: policy_denied")
    assert "SECRET" in reason
    assert len(uk.journal) == 0


def test_partial_refusals_are_noted_beside_the_sent_file(uk: Adapter) -> None:
    """Sent to Serbia; a purpose the MK accord refuses is noted in sent/<name>.reason."""
    spool = _spool(uk)
    message = report().model_copy(update={"purposes": frozenset({Purpose.DOCUMENT_FRAUD})})
    path = write_submission(spool.root, message, [RS, MK])
    uk.process_spool()
    assert (spool.sent / path.name).exists()
    assert (spool.sent / f"{path.name}.reason").read_text().startswith("MK: policy_denied")
    assert [e.recipient for e in uk.journal.pending()] == [RS]


def test_a_journalled_file_is_not_sealed_again_after_a_crash(uk: Adapter) -> None:
    """If the adapter died after journalling but before moving the file, the restart moves it
    without sealing new envelopes (which would carry new ids: a duplicate nobody could drop)."""
    spool = _spool(uk)
    path = write_submission(spool.root, report(), [RS])
    data = path.read_bytes()
    uk.submit(report(), to=[RS])  # stands in for the envelopes journalled before the crash
    uk.journal.record([], source=Spool.source_key(path, data), now=uk.clock.now())
    before = len(uk.journal)
    uk.process_spool()
    assert len(uk.journal) == before
    assert (spool.sent / path.name).exists()


def test_dotfiles_are_ignored(uk: Adapter) -> None:
    """A writer's temporary file in incoming/ is never read."""
    spool = _spool(uk)
    (spool.incoming / ".half-written.json").write_bytes(b"{")
    assert uk.process_spool() == 0


def test_files_are_handed_out_oldest_first_across_limited_calls(tmp_path: pathlib.Path) -> None:
    """waiting(limit=...) hands out each file once, oldest first; a file that arrives while
    an earlier scan is being drained comes after it; a handed-out file still in incoming/
    (the caller did not handle it) is found again by the next scan."""
    spool = Spool(tmp_path / "spool")
    first = [write_submission(spool.root, report(), [RS]) for _ in range(3)]
    for age, path in enumerate(reversed(first)):  # make the order by time unambiguous
        os.utime(path, ns=(10**18 - age * 10**9, 10**18 - age * 10**9))
    assert spool.waiting(limit=2) == first[:2]
    late = write_submission(spool.root, report(), [RS])
    assert spool.waiting(limit=2) == first[2:]
    for path in first:
        path.unlink()
    assert spool.waiting(limit=2) == [late]
    assert spool.waiting() == [late]  # not moved away: found again
    assert spool.waiting(limit=0) == []


def test_a_batch_of_submissions_is_placed_and_handled(uk: Adapter) -> None:
    """write_submissions places every submission in incoming/ (no temporary file left), the
    adapter handles them all, and a missing spool is a usage error."""
    spool = _spool(uk)
    paths = write_submissions(spool.root, [(report(), [RS]), (report(), [MK]), (report(), [RS])])
    assert sorted(p.name for p in spool.incoming.iterdir()) == sorted(p.name for p in paths)
    assert [p.name for p in spool.root.iterdir() if p.is_file()] == []
    assert uk.process_spool() == 3
    assert sorted(p.name for p in spool.sent.iterdir()) == sorted(p.name for p in paths)
    with pytest.raises(errors.UsageError):
        write_submissions(spool.root / "nowhere", [(report(), [RS])])


def test_the_submission_format_round_trips() -> None:
    """What write_submission writes, parse_submission reads back to the same message."""
    message = report()
    data = json.dumps({"to": ["RS"], "message": json.loads(message_bytes(message))}).encode()
    submission = parse_submission(data)
    assert submission.to == (RS,)
    assert submission.message == message


def test_writing_needs_a_spool(tmp_path: pathlib.Path) -> None:
    """A missing spool is a usage error, not a traceback."""
    with pytest.raises(errors.UsageError):
        write_submission(tmp_path / "nowhere", report(), [RS])


@pytest.mark.parametrize(
    ("data", "says"),
    [
        pytest.param(b'{"to": ["RS"], "to": ["MK"], "message": {}}', "duplicate key", id="dup"),
        pytest.param(b'{"to": ["RS"], "message": {"x": NaN}}', "NaN", id="nan"),
        pytest.param(
            b'{"to": ["RS"], "message": ' + b"[" * 50 + b"]" * 50 + b"}", "deeper", id="deep"
        ),
        pytest.param(b"\xff", "UTF-8", id="not utf-8"),
    ],
)
def test_ambiguous_or_hostile_submission_bytes_are_refused(data: bytes, says: str) -> None:
    """A submission is parsed as strictly as every other input: one clear SchemaError."""
    with pytest.raises(errors.SchemaError, match=says):
        parse_submission(data)


@pytest.mark.parametrize(
    ("previous", "elapsed_s", "expected"),
    [
        (8, 0.010, 16),  # fast: grows, but at most doubles at once
        (64, 0.010, 128),
        (128, 0.001, 128),  # never past the ceiling
        (64, 0.050, 64),  # on budget: stays
        (64, 0.200, 16),  # slow (a loaded machine): shrinks to fit the budget
        (8, 1.000, 8),  # never below the floor
        (8, 0.0, 16),  # a clock that did not move
    ],
)
def test_spool_chunks_grow_under_a_backlog_and_fit_a_time_budget(
    previous: int, elapsed_s: float, expected: int
) -> None:
    """A backlog is taken in larger chunks (each costs a journal transaction and a flush of
    the spool however large), but no chunk holds the event loop much past its budget."""
    assert spool_chunk(previous, elapsed_s) == expected


def test_a_release_moves_a_held_submission_once_under_its_own_name(tmp_path: pathlib.Path) -> None:
    """``broker release``: the held file goes to incoming/ naming the releasing officer; a
    release repeated after a crash between the two steps writes the very same file again
    (same name, same bytes: the adapter takes a name and its bytes once)."""
    spool = Spool(tmp_path / "spool")
    held = write_submission(spool.root, report(), [GB], officer="a.clerk", held=True)
    assert held.parent == spool.held
    assert spool.waiting() == []
    kept = held.read_bytes()
    released = release_submission(held, approver="b.lead")
    assert (released.parent, released.name) == (spool.incoming, held.name)
    assert not held.exists()
    submission = parse_submission(released.read_bytes())
    assert (submission.officer, submission.approver) == ("a.clerk", "b.lead")
    first = released.read_bytes()
    held.write_bytes(kept)  # as if the process died before the held file was removed
    assert release_submission(held, approver="b.lead").read_bytes() == first
    assert spool.waiting() == [released]


def test_the_submitter_is_not_their_own_approver() -> None:
    data = submission_bytes(report(), [GB], officer="a.clerk", approver="a.clerk")
    with pytest.raises(errors.SchemaError, match="another officer"):
        parse_submission(data)
