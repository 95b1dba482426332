"""The one exception tree of the project.

Every error we raise descends from :class:`BrokerError`. Callers choose what to do by the
branch, never by parsing messages::

    BrokerError
    ├── IntegrityError              never retried; audited, refused or quarantined
    │   ├── SchemaError             a message, accord or config failed strict validation
    │   ├── EnvelopeError           malformed, oversized, unknown version or suite
    │   │   ├── VerificationError   a signature or commitment does not verify (deliberately opaque)
    │   │   ├── DecryptionError     the body could not be opened (deliberately opaque)
    │   │   └── ReplayError         stale, future-dated, or a reused message id
    │   ├── KeyTrustError           an unknown, revoked, expired or wrongly-typed key
    │   ├── RegistryError           the partner registry fails thresholds, rolls back or expired
    │   ├── PolicyError             an accord is malformed, unsigned, rolled back or expired
    │   └── AuditError              the audit log does not verify
    ├── AccessError                 an officer is not who they claim, or may not do this
    ├── AvailabilityError           transient; retried with backoff
    │   ├── TransportError          Kafka could not be reached or did not acknowledge
    │   └── EmbeddedBrokerError     the embedded broker could not start or stop
    │       └── LocalClusterError   the local Apache Kafka cluster (java, mvn, nodes)
    └── UsageError                  an impossible request (bad flag, missing file)

Cryptographic failures collapse into the opaque :class:`VerificationError` and
:class:`DecryptionError`: a sender learns nothing from which check failed. The detail goes to
our own logs only, never into the error text a peer might see.

Every error carries ``exit_code`` (the CLI's documented process exit status) and
``diagnostics()`` (the one line the CLI prints).
"""

from __future__ import annotations

__all__ = [
    "AccessError",
    "AuditError",
    "AvailabilityError",
    "BrokerError",
    "DecryptionError",
    "EmbeddedBrokerError",
    "EnvelopeError",
    "IntegrityError",
    "KeyTrustError",
    "LocalClusterError",
    "PolicyError",
    "RegistryError",
    "ReplayError",
    "SchemaError",
    "TransportError",
    "UsageError",
    "VerificationError",
]


class BrokerError(Exception):
    """The root of every error the project raises."""

    #: the process exit status the CLI uses for this error (documented in docs/CLI.md)
    exit_code: int = 1

    def diagnostics(self) -> str:
        """One human-readable line for the command line: the class's meaning and the detail."""
        detail = str(self)
        return detail if detail else self.__class__.__doc__ or self.__class__.__name__


class IntegrityError(BrokerError):
    """Input that must be refused: never retried, always reported."""

    exit_code = 3


class SchemaError(IntegrityError):
    """A message, accord or configuration failed strict validation."""

    exit_code = 4


class EnvelopeError(IntegrityError):
    """An envelope is malformed, oversized, or uses an unknown version or suite."""

    exit_code = 5


class VerificationError(EnvelopeError):
    """A signature or commitment did not verify."""

    exit_code = 6


class DecryptionError(EnvelopeError):
    """An envelope body could not be decrypted."""

    exit_code = 6


class ReplayError(EnvelopeError):
    """An envelope is stale, dated in the future, or reuses a message id."""

    exit_code = 7


class KeyTrustError(IntegrityError):
    """A key is unknown, revoked, expired, or of the wrong kind."""

    exit_code = 8


class RegistryError(IntegrityError):
    """The partner registry fails its threshold, rolls back, or has expired."""

    exit_code = 9


class PolicyError(IntegrityError):
    """An accord is malformed, unsigned, rolled back, or expired."""

    exit_code = 10


class AuditError(IntegrityError):
    """The audit log does not verify."""

    exit_code = 11


class AccessError(BrokerError):
    """An officer could not be authenticated, is disabled, lacks the role, or is outside the
    units a view is restricted to."""

    exit_code = 12


class AvailabilityError(BrokerError):
    """A transient failure: retrying later may succeed."""

    exit_code = 20


class TransportError(AvailabilityError):
    """Kafka could not be reached or did not acknowledge in time."""

    exit_code = 21


class EmbeddedBrokerError(AvailabilityError):
    """The embedded Kafka-protocol broker could not be started or stopped."""

    exit_code = 22


class LocalClusterError(EmbeddedBrokerError):
    """The local Apache Kafka cluster could not be resolved, started or stopped (java or mvn
    missing, Maven Central unreachable, a node that would not start)."""

    exit_code = 23


class UsageError(BrokerError):
    """The operator asked for something that cannot be done (a bad flag, a missing file)."""

    exit_code = 2
