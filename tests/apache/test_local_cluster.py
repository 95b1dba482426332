"""The local cluster itself: a node that cannot start says why, and leaves nothing behind."""

from __future__ import annotations

import gc
import socket
import warnings
from pathlib import Path

import pytest

from broker.errors import LocalClusterError
from broker.transport._state import HOST
from broker.transport.apache.cluster import ApacheCluster

pytestmark = [pytest.mark.kafka]


def test_a_cluster_of_three_nodes_listens_on_nine_distinct_ports(
    cluster: ApacheCluster, tmp_path: Path
) -> None:
    del cluster  # only runs where the release is resolved
    made = ApacheCluster.create(tmp_path / "cluster", nodes=3, security="plaintext")
    ports = [
        port
        for node in made.record.nodes
        for port in (node.client_port, node.internal_port, node.controller_port)
    ]
    assert len(set(ports)) == 9


def test_a_node_whose_port_is_taken_fails_with_its_reason_and_leaves_no_process(
    cluster: ApacheCluster, tmp_path: Path
) -> None:
    del cluster
    made = ApacheCluster.create(tmp_path / "cluster", nodes=1, security="plaintext")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((HOST, made.record.node(1).client_port))
        squatter.listen()
        with pytest.raises(LocalClusterError) as raised:
            made.start(ready_timeout_s=90.0)
    message = str(raised.value)
    assert "node 1 exited with status" in message
    assert "Address already in use" in message, message
    assert not made.is_running(1)
    assert made.record.node(1).pid is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del raised, made
        gc.collect()  # an unreaped child warns here, and pytest fails the test for it
