"""A second gateway instance for a federation, from a rewrite of the first one's config.

The federation harness runs one daemon per name; a rebalance storm needs two instances of
the gateway in one consumer group. This writes ``config/<name>.yaml`` from the gateway's,
with its own metrics port and its own de-duplication store (as on another host), and runs
it as a :class:`DaemonProcess` (a harness hook for extra instances would replace this).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from ruamel.yaml import YAML

from broker.demo.federation import Federation
from broker.demo.processes import DaemonProcess
from broker.transport.embedded import free_port

__all__ = ["rewrite_config", "second_gateway"]


def rewrite_config(source: Path, target: Path, changes: dict[str, dict[str, object]]) -> None:
    """Copy a daemon's YAML config, replacing the given keys of the given sections."""
    yaml = YAML(typ="safe")
    document = yaml.load(source.read_text())
    for section, values in changes.items():
        document.setdefault(section, {}).update(values)
    with target.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)


@contextlib.contextmanager
def second_gateway(federation: Federation, data: Path) -> Iterator[DaemonProcess]:
    """A second gateway (not started); stopped on the way out."""
    data.mkdir(parents=True)
    port = free_port()
    config = federation.config_path("gateway-2")
    rewrite_config(
        federation.config_path("gateway"),
        config,
        {"observability": {"port": port}, "store": {"path": str(data / "dedup.sqlite3")}},
    )
    process = DaemonProcess(
        "gateway-2",
        argv=[sys.executable, "-m", "broker", "gateway", "run", "--config", str(config)],
        port=port,
        log=federation.root / "logs" / "gateway-2.log",
        cwd=federation.root,
    )
    try:
        yield process
    finally:
        process.terminate()
        if process.running:
            process.wait(timeout_s=30)
