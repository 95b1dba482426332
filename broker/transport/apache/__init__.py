"""Apache Kafka, the tested engine: the pinned release from Maven Central, its broker
settings (the one table deploy/ is made from too) and a local KRaft cluster on 127.0.0.1.

* :mod:`.distribution`: ``KAFKA_VERSION`` and :func:`~.distribution.resolve`, which copies the
  release's jars into a cache outside the work tree with Maven;
* :mod:`.settings`: the broker settings of every cluster, of secured ones, and of the local one;
* :mod:`.cluster`: :class:`~.cluster.ApacheCluster`, nodes started, stopped, killed and
  restarted from their disks, plaintext or SASL_SSL with mutual TLS between nodes.

Submodules are imported explicitly, like the rest of :mod:`broker.transport`.
"""

__all__: list[str] = []
