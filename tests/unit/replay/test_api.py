"""The public surface of broker.replay and broker.ledger is exactly what ``__all__`` names."""

from __future__ import annotations

import inspect
import types

import pytest

import broker.ledger
import broker.replay


@pytest.mark.parametrize("module", [broker.replay, broker.ledger], ids=lambda m: m.__name__)
def test_every_public_name_resolves_and_is_listed(module: types.ModuleType) -> None:
    """Every name in ``__all__`` exists, and nothing public is left out of it."""
    names = set(module.__all__)
    assert all(hasattr(module, name) for name in names)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == names


def test_the_checkpointer_entry_point_takes_its_security_parameters_by_keyword() -> None:
    """run_checkpointer has no positional parameters: the key and topic are always named."""
    parameters = inspect.signature(broker.ledger.run_checkpointer).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
