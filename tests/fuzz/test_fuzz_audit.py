"""Hostile audit material: checkpoint notes, checkpoint records and audit bundles are verified
or refused with our error, never a crash.

Seeds are a real checkpoint note signed by the gateway key over real audit records, its
checkpoint record as the checkpointer writes it, and a bundle of those records as the
exporter writes it. An auditor runs these on files handed over by someone else, so every
byte is untrusted.
"""

from __future__ import annotations

import pathlib
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.audit import CosignatureKey, checkpoint_cosigners, open_checkpoint
from broker.ledger import judge_record, registered_cosigners
from broker.ledger.entries import parse_checkpoint_record
from broker.replay import iter_entries, read_header, verify_entries
from tests.fuzz.mutations import (
    CAMPAIGN,
    byte_mutants,
    hostile,
    json_mutants,
    refused_or_accepted,
)
from tests.fuzz.seeds import world

# A failing example can be megabytes of nesting; its repr must not hide the real failure.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@CAMPAIGN
@given(note=hostile([world().checkpoint_note]))
def test_checkpoint_notes_never_crash(note: bytes) -> None:
    """A mangled checkpoint note verifies or raises our error, for the log and its witnesses."""
    gateway = [world().gateway_key.public_key()]
    witness = [CosignatureKey("witness-1", world().witness_key.public_key())]
    refused_or_accepted(lambda: open_checkpoint(note, log_keys=gateway))
    refused_or_accepted(lambda: checkpoint_cosigners(note, witnesses=witness))
    refused_or_accepted(lambda: registered_cosigners(note, world().registry))


@CAMPAIGN
@given(
    value=json_mutants([world().checkpoint_record], styles=("canonical",))
    | hostile([world().checkpoint_record])
)
def test_checkpoint_records_never_crash(value: bytes) -> None:
    """A mangled checkpoint record parses or raises our error; judged, it is never a crash."""
    refused_or_accepted(lambda: parse_checkpoint_record(value))
    judge_record(value, registry=world().registry)


def _lines() -> tuple[bytes, ...]:
    return tuple(world().bundle.splitlines(keepends=True))


@st.composite
def bundles(draw: st.DrawFn) -> bytes:
    """A real bundle with some lines mangled, dropped, repeated or swapped, or mangled bytes."""
    lines = list(_lines())
    if draw(st.booleans()):
        return draw(byte_mutants([world().bundle]))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(("mutate", "drop", "repeat", "swap", "json")))
        if how == "mutate":
            lines[at] = draw(byte_mutants([lines[at]]))
        elif how == "drop":
            del lines[at]
        elif how == "repeat":
            lines.insert(at, lines[at])
        elif how == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        else:
            lines[at] = draw(json_mutants(_lines(), styles=("canonical",))) + b"\n"
        if not lines:
            break
    return b"".join(lines)


@CAMPAIGN
@given(data=bundles())
def test_bundles_never_crash(data: bytes) -> None:
    """A mangled bundle file is read and verified into a report, or refused with our error."""
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "audit.jsonl"
        path.write_bytes(data)
        refused_or_accepted(lambda: read_header(path))
        refused_or_accepted(
            lambda: verify_entries(list(iter_entries(path)), registry=world().registry)
        )
