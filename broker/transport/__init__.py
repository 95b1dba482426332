"""The I/O seam to Kafka: the only package that imports aiokafka.

* :mod:`broker.transport.kafka`: typed producer, consumer and topic creation, with every
  client option set explicitly and aiokafka's failures mapped to ``TransportError``;
* :mod:`broker.transport.security`: TLS, mTLS and SASL/SCRAM for those clients
  (:class:`~broker.transport.security.ClientSecurity`; the password never shown);
* :mod:`broker.transport.embedded`: the embedded Kafka-protocol broker (Tansu) as a context
  manager, or detached for ``broker kafka up --detach`` / ``down``;
* :mod:`broker.transport.probe`: whether an address answers the Kafka protocol;
* :mod:`broker.transport.selfcheck`: a produce/consume round trip that proves a broker works.

Submodules are imported explicitly, so that code needing only the embedded broker does not
pay for importing aiokafka.
"""

__all__: list[str] = []
