"""Local Apache Kafka clusters get ids kafka-storage can always read."""

from __future__ import annotations

import base64

from broker.transport.apache.cluster import new_cluster_id


def test_a_cluster_id_is_16_random_bytes_and_never_reads_as_an_option() -> None:
    """Across 2,000 ids (about 31 would start with "-" if nothing prevented it)."""
    ids = [new_cluster_id() for _ in range(2000)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
