"""From the ``kafka.security`` section to the transport's :class:`ClientSecurity`.

Secrets are read here, once, at start-up: the SCRAM password comes from the file or
environment variable the configuration names (never from the file itself), and the CA bundle,
client certificate and key are loaded into a strict TLS context. Any bad file or missing
secret is a one-line :class:`~broker.errors.UsageError` naming the place, never the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from broker import errors
from broker.config._kafka import KafkaSettings, PlaintextSecurity, SaslSslSecurity, SslSecurity
from broker.config._loader import read_secret
from broker.transport.security import PLAINTEXT, ClientSecurity

__all__ = ["kafka_client_security"]


def kafka_client_security(
    kafka: KafkaSettings, *, env: Mapping[str, str] = os.environ
) -> ClientSecurity:
    """The client security ``kafka.security`` asks for, with its password read from ``env``
    or its file. PLAINTEXT needs nothing read; SSL and SASL_SSL load the CA bundle and, for
    mTLS, the client certificate and key."""
    security = kafka.security
    if isinstance(security, PlaintextSecurity):
        return PLAINTEXT
    if isinstance(security, SslSecurity):
        return ClientSecurity.tls(
            ca_file=security.ca_file, cert_file=security.cert_file, key_file=security.key_file
        )
    if isinstance(security, SaslSslSecurity):
        raw = read_secret(security.password, env=env)
        try:
            password = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.UsageError("kafka.security.password: the secret is not UTF-8") from exc
        return ClientSecurity.sasl_ssl(
            ca_file=security.ca_file,
            mechanism=security.mechanism,
            username=security.username,
            password=password,
            cert_file=security.cert_file,
            key_file=security.key_file,
        )
    # unreachable while the model's union has these three members; a new one must be mapped
    raise errors.UsageError(f"kafka.security.protocol {security.protocol} has no client mapping")
