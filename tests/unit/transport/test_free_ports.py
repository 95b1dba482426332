"""Free ports for local brokers: distinct when asked for several at once."""

from __future__ import annotations

import pytest

from broker.transport._child import _ephemeral_low, free_ports


@pytest.mark.parametrize("outside_ephemeral", [False, True])
def test_ports_chosen_together_are_distinct(outside_ephemeral: bool) -> None:
    # many more than a cluster needs, so a repeat would show if choices were independent
    ports = free_ports(300, outside_ephemeral=outside_ephemeral)
    assert len(set(ports)) == 300


def test_stable_ports_lie_below_the_ephemeral_range() -> None:
    assert all(port < _ephemeral_low() for port in free_ports(20, outside_ephemeral=True))
