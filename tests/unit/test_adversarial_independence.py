"""The adversarial suite's client stays independent of the code it attacks.

tests/adversarial builds envelopes, frames and records from the documents, with its own raw
Kafka client; were it to borrow ``broker.envelope``, ``broker.pipeline`` or ``broker.crypto``,
a mistake in those would be shared by attacker and defender and go unseen. It may run the
daemons and the CLI (the system under test) and provision a federation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[1] / "adversarial"
FORBIDDEN = ("broker.envelope", "broker.pipeline", "broker.crypto")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("path", sorted(SUITE.glob("*.py")), ids=lambda p: p.name)
def test_no_module_of_the_suite_imports_the_code_it_attacks(path: Path) -> None:
    """Neither ``import broker.envelope`` nor ``from broker import pipeline`` and the like."""
    borrowed = {
        name
        for name in _imports(path)
        for forbidden in FORBIDDEN
        if name == forbidden or name.startswith(f"{forbidden}.")
    }
    assert not borrowed, f"{path.name} imports {sorted(borrowed)}"


def test_the_suite_has_its_own_client_and_builders() -> None:
    """The pieces others extend: the raw client, the wire builders, the federation."""
    assert {"rawkafka.py", "wire.py", "conftest.py"} <= {p.name for p in SUITE.glob("*.py")}
    assert "aiokafka" in {name.split(".")[0] for name in _imports(SUITE / "rawkafka.py")}
    assert "cryptography" in {name.split(".")[0] for name in _imports(SUITE / "wire.py")}
