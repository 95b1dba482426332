"""A witness's saved state round-trips, and any edit to it is refused, never trusted."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from broker import errors
from broker.audit import Checkpoint, LogView, MerkleLog, leaf_hash, sign_checkpoint
from broker.witness import WitnessState
from tests.unit.replay.audit_log import NOW, AuditLog

ORIGIN = "broker/xb.audit"
LEAVES = [leaf_hash(b"record %d" % i) for i in range(10)]


def _state(log: AuditLog, size: int) -> WitnessState:
    tree = MerkleLog()
    tree.extend(LEAVES[:size])
    checkpoint = Checkpoint(ORIGIN, size, tree.root(), NOW)
    view = LogView(ORIGIN)
    view.observe(checkpoint, first=0, leaves=LEAVES[:size])
    note = sign_checkpoint(checkpoint, key=log.gateway_key)
    return WitnessState(view, note, offset=17, cosigned=note, published=False)


def test_a_saved_state_loads_as_it_was(tmp_path: pathlib.Path) -> None:
    """View, note, offset, last cosigned note and its publication flag survive a restart."""
    log = AuditLog.create()
    _state(log, 7).save(tmp_path)
    loaded = WitnessState.load(tmp_path, origin=ORIGIN, registry=log.fixture.registry)
    assert (loaded.view.size, loaded.offset, loaded.published) == (7, 17, False)
    assert loaded.view.latest is not None
    assert loaded.view.right_edge == _state(log, 7).view.right_edge


def test_no_state_is_a_fresh_view(tmp_path: pathlib.Path) -> None:
    """A witness that never ran starts from the empty tree at offset 0."""
    fresh = WitnessState.load(tmp_path, origin=ORIGIN, registry=AuditLog.create().fixture.registry)
    assert (fresh.view.size, fresh.note, fresh.offset) == (0, None, 0)


Edit = Callable[[dict[str, Any], dict[str, Any]], object]
EDITS: dict[str, Edit] = {
    "another note, same edge": lambda doc, other: {**doc, "note": other["note"]},
    "garbage": lambda doc, other: "{not json",
    "negative offset": lambda doc, other: {**doc, "offset": -1},
    "an unregistered signer": lambda doc, other: {**doc, "note": doc["note"][:-5] + "AAAA\n"},
    "another version": lambda doc, other: {**doc, "v": 2},
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_an_edited_state_is_refused(tmp_path: pathlib.Path, edit: Edit) -> None:
    """Whatever was changed, loading fails with AuditError: the daemon stops."""
    log = AuditLog.create()
    _state(log, 5).save(tmp_path / "other")
    other = json.loads(next((tmp_path / "other").glob("*.json")).read_text())
    _state(log, 7).save(tmp_path)
    path = next(tmp_path.glob("*.json"))
    edited = edit(json.loads(path.read_text()), other)
    path.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    with pytest.raises(errors.AuditError, match="does not verify"):
        WitnessState.load(tmp_path, origin=ORIGIN, registry=log.fixture.registry)
